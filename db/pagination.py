"""Keyset (cursor) pagination for any select, forward and backward, with exact page info."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

T = TypeVar("T")

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


class PaginationError(ValueError):
    """A client-side mistake in first/last/after/before."""


@dataclass(frozen=True, slots=True)
class SortKey:
    expression: ColumnElement[Any] | QueryableAttribute[Any]
    descending: bool = False


@dataclass(frozen=True, slots=True)
class PageArgs:
    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    def validated(self) -> PageArgs:
        for name, value in (("first", self.first), ("last", self.last)):
            if value is not None and not 0 <= value <= MAX_PAGE_SIZE:
                raise PaginationError(f"`{name}` must be between 0 and {MAX_PAGE_SIZE}")
        if self.first is not None and self.last is not None:
            raise PaginationError("pass `first` or `last`, not both")
        return self

    @property
    def backward(self) -> bool:
        return self.last is not None or (self.before is not None and self.first is None)

    @property
    def size(self) -> int:
        size = self.last if self.backward else self.first
        return DEFAULT_PAGE_SIZE if size is None else size


@dataclass(slots=True)
class Page(Generic[T]):
    nodes: list[T]
    # Each node's sort-key values; encoded as a cursor only when a client asks for it.
    positions: list[list[Any]]
    has_next_page: bool
    has_previous_page: bool

    def cursor(self, index: int) -> str:
        return encode_cursor(self.positions[index])


def _encode_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"d": str(value)}
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    raise TypeError(type(value).__name__)


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "d" in value:
            return Decimal(value["d"])
        if "t" in value:
            return datetime.fromisoformat(value["t"])
        raise PaginationError("invalid cursor")
    return value


def encode_cursor(values: list[Any]) -> str:
    raw = orjson.dumps(values, default=_encode_value, option=orjson.OPT_PASSTHROUGH_DATETIME)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = orjson.loads(raw)
    except (binascii.Error, orjson.JSONDecodeError, ValueError) as exc:
        raise PaginationError("invalid cursor") from exc
    if not isinstance(values, list) or len(values) != arity:
        raise PaginationError("invalid cursor")
    return [_decode_value(v) for v in values]


def _beyond(keys: list[SortKey], values: list[Any], *, forward: bool) -> ColumnElement[bool]:
    """Rows strictly after (forward) or before the cursor in the key order."""
    clauses = []
    for i, key in enumerate(keys):
        ascending_next = forward != key.descending
        compare = key.expression > values[i] if ascending_next else key.expression < values[i]
        equal = [keys[j].expression == values[j] for j in range(i)]
        clauses.append(and_(*equal, compare))
    return or_(*clauses)


def keyset_after(keys: list[SortKey], cursor: str) -> ColumnElement[bool]:
    """Rows strictly after ``cursor`` in the key order; PaginationError for a bad cursor."""
    return _beyond(keys, decode_cursor(cursor, len(keys)), forward=True)


async def paginate(
    session: AsyncSession, stmt: Select[Any], keys: list[SortKey], args: PageArgs
) -> Page[Any]:
    """Fetch one page of ``stmt`` (which selects the entity first) ordered by ``keys``.

    The last key must be unique (the primary key) so the order is total.
    """
    args = args.validated()
    backward = args.backward
    size = args.size
    labelled = [key.expression.label(f"_sort{i}") for i, key in enumerate(keys)]
    query = stmt.add_columns(*labelled)
    if args.after is not None:
        query = query.where(_beyond(keys, decode_cursor(args.after, len(keys)), forward=True))
    if args.before is not None:
        query = query.where(_beyond(keys, decode_cursor(args.before, len(keys)), forward=False))
    order = [
        key.expression.desc() if key.descending != backward else key.expression.asc()
        for key in keys
    ]
    rows = list((await session.execute(query.order_by(*order).limit(size + 1))).all())
    more = len(rows) > size
    rows = rows[:size]
    if backward:
        rows.reverse()
    arity = len(keys)
    nodes = [row[0] for row in rows]
    positions = [list(row[-arity:]) for row in rows]
    if backward:
        return Page(nodes, positions, has_next_page=args.before is not None, has_previous_page=more)
    return Page(nodes, positions, has_next_page=more, has_previous_page=args.after is not None)


async def count(session: AsyncSession, stmt: Select[Any]) -> int:
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    return int(total or 0)
