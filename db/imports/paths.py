"""Category paths (``Hardware/Fasteners``) in both directions, for imports and exports.

A ``/`` or ``\\`` inside a category's name is written with a backslash before it, so every
name survives an export and re-import. Names are not unique under a parent in the model:
a path means the oldest (lowest id) category of that name at each step.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Category

MAX_DEPTH = 20
MAX_NAME = 200

Path = tuple[str, ...]


def _split(text: str) -> list[str]:
    if "\\" not in text:
        return text.split("/")
    names: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            current.append(next(chars, "\\"))
        elif char == "/":
            names.append("".join(current))
            current = []
        else:
            current.append(char)
    names.append("".join(current))
    return names


def parse_path(text: str) -> Path:
    """The names along a path; ValueError for an empty step or one too long."""
    names = _split(text)
    cleaned = tuple(name.strip() for name in names)
    if any(not name for name in cleaned):
        raise ValueError("A category path has an empty step (two slashes, or one at an end)")
    if any(len(name) > MAX_NAME for name in cleaned):
        raise ValueError(f"A category name must be at most {MAX_NAME} characters")
    if len(cleaned) > MAX_DEPTH:
        raise ValueError(f"A category path has at most {MAX_DEPTH} steps")
    return cleaned


def format_path(names: Sequence[str]) -> str:
    return "/".join(name.replace("\\", "\\\\").replace("/", "\\/") for name in names)


class CategoryTree:
    """All categories, loaded once; finds, names and (when writing) creates paths."""

    def __init__(self, rows: Sequence[tuple[int, str, int | None]]) -> None:
        self._parent: dict[int, int | None] = {}
        self._name: dict[int, str] = {}
        self._child: dict[tuple[int | None, str], int] = {}
        self._paths: dict[int, str] = {}
        for pk, name, parent in sorted(rows):
            self._add(pk, name, parent)

    def _add(self, pk: int, name: str, parent: int | None) -> None:
        self._parent[pk], self._name[pk] = parent, name
        self._child.setdefault((parent, name), pk)  # sorted by id: the oldest wins

    @classmethod
    async def load(cls, session: AsyncSession) -> CategoryTree:
        rows = await session.execute(select(Category.id, Category.name, Category.parent_id))
        return cls([(pk, name, parent) for pk, name, parent in rows])

    def find(self, path: Path) -> int | None:
        parent: int | None = None
        for name in path:
            found = self._child.get((parent, name))
            if found is None:
                return None
            parent = found
        return parent

    def path_of(self, pk: int) -> str:
        known = self._paths.get(pk)
        if known is not None:
            return known
        names: list[str] = []
        current: int | None = pk
        while current is not None and len(names) <= MAX_DEPTH:
            names.append(self._name[current])
            current = self._parent[current]
        path = self._paths[pk] = format_path(names[::-1])
        return path

    async def create(self, session: AsyncSession, path: Path) -> int:
        """The category at ``path``, creating each missing step."""
        parent: int | None = None
        for name in path:
            found = self._child.get((parent, name))
            if found is None:
                category = Category(name=name, parent_id=parent)
                session.add(category)
                await session.flush()
                self._add(category.id, name, parent)
                found = category.id
            parent = found
        assert parent is not None
        return parent
