"""Item imports: a row is an upsert by SKU that bumps ``version`` on a real change only.

A column the file does not have leaves that field as it is (and takes its default on a
new item). Checking (``write=False``) reads what each row would do without writing; the
same code with ``write=True`` locks the batch's existing items (by id, so two imports of
overlapping files queue rather than deadlock), creates missing categories, inserts and
updates in bulk, and records one ``ItemChanged`` per created or changed item.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import events
from db.errors import ErrorCode
from db.events import ItemChange, ItemChanged
from db.imports.paths import CategoryTree, parse_path
from db.imports.reading import Shape
from db.imports.rows import (
    Applied,
    CellError,
    Origin,
    Outcome,
    Record,
    RowError,
    blank,
    boolean,
    integer,
    money,
    optional_text,
    required_text,
)
from db.models import Item, utcnow

DEFAULTS: dict[str, Any] = {
    "description": None,
    "category_id": None,
    "unit_cost": None,
    "reorder_point": 0,
    "archived": False,
}
_COLUMNS = (
    Item.id,
    Item.sku,
    Item.name,
    Item.description,
    Item.category_id,
    Item.unit_price,
    Item.unit_cost,
    Item.reorder_point,
    Item.archived,
    Item.version,
)


class _NewCategory:
    """A category path that does not exist yet (checking only: writing creates it)."""


NEW_CATEGORY = _NewCategory()


@dataclass(frozen=True, slots=True)
class ItemRow:
    line: int
    sku: str
    # The file's values by field (``category`` as a path or None), only for its columns.
    values: dict[str, Any]


# Files name a few categories many times: each text is parsed once (bounded).
_PATHS: dict[str, tuple[str, ...]] = {}


def _category(value: Any) -> tuple[str, ...] | None:
    if blank(value):
        return None
    if not isinstance(value, str):
        raise CellError("category", ErrorCode.INVALID, "Category must be a path like A/B")
    path = _PATHS.get(value)
    if path is None:
        try:
            path = parse_path(value)
        except ValueError as error:
            raise CellError("category", ErrorCode.INVALID, str(error)) from None
        if len(_PATHS) > 10_000:
            _PATHS.clear()
        _PATHS[value] = path
    return path


def _reorder_point(value: Any, comma: bool) -> int:
    return 0 if blank(value) else integer(value, "reorder_point")


_READERS: dict[str, Callable[[Any, bool], Any]] = {
    "name": lambda v, _: required_text(v, "name", 200),
    "description": lambda v, _: optional_text(v, "description", 10_000),
    "category": lambda v, _: _category(v),
    "unit_price": lambda v, comma: money(v, "unit_price", decimal_comma=comma),
    "unit_cost": lambda v, comma: money(v, "unit_cost", decimal_comma=comma),
    "reorder_point": _reorder_point,
    "archived": lambda v, _: boolean(v, "archived"),
}
_REQUIRED = ("name", "unit_price")


def parse_item(record: Record, shape: Shape) -> ItemRow | list[RowError]:
    """The row's values, or every problem its cells have."""
    cells = record.cells
    comma = shape.delimiter == ";"  # such files may write 12,50 for 12.50
    errors: list[RowError] = []
    sku = ""
    try:
        sku = required_text(cells.get("sku"), "sku", 64)
    except CellError as error:
        errors.append(error.at(record.line))
    values: dict[str, Any] = {}
    for name, value in cells.items():
        read = _READERS.get(name)
        if read is None:
            continue
        try:
            values[name] = read(value, comma)
        except CellError as error:
            errors.append(error.at(record.line))
    for name in _REQUIRED:
        if name not in cells:  # only JSON Lines rows can leave a column out
            errors.append(
                RowError(
                    record.line,
                    name,
                    ErrorCode.INVALID,
                    f"{name.replace('_', ' ').capitalize()} is required",
                )
            )
    if values.get("unit_price", 0) is None:
        errors.append(
            RowError(record.line, "unit_price", ErrorCode.INVALID, "Unit price is required")
        )
    return errors if errors else ItemRow(record.line, sku, values)


def item_key(row: ItemRow) -> str:
    return row.sku


def item_repeated(row: ItemRow, first: int) -> RowError:
    return RowError(
        row.line, "sku", ErrorCode.DUPLICATE, f"SKU {row.sku} appears again: first on line {first}"
    )


def _same(field: str, current: Any, wanted: Any) -> bool:
    if wanted is NEW_CATEGORY:
        return False
    if field == "description":  # a CSV cell cannot tell "" from none
        return (current or None) == (wanted or None)
    if isinstance(current, Decimal) or isinstance(wanted, Decimal):
        return current is not None and wanted is not None and Decimal(current) == wanted
    return bool(current == wanted)


async def _categories(
    session: AsyncSession, rows: list[ItemRow], *, write: bool
) -> dict[tuple[str, ...] | None, int | _NewCategory | None]:
    """The id of each category path the batch names (created when writing)."""
    paths = {row.values["category"] for row in rows if row.values.get("category") is not None}
    found: dict[tuple[str, ...] | None, int | _NewCategory | None] = {None: None}
    if not paths:
        return found
    tree = await CategoryTree.load(session)
    for path in paths:
        pk = await tree.create(session, path) if write else tree.find(path)
        found[path] = NEW_CATEGORY if pk is None else pk
    return found


def _by_keys(updates: list[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """Updates grouped by the columns they set (one executemany per group)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for values in updates:
        groups.setdefault(tuple(sorted(values)), []).append(values)
    return groups


async def apply_items(
    session: AsyncSession, rows: list[ItemRow], origin: Origin, *, write: bool, reject: bool
) -> Applied:
    """Upsert the batch's rows (``write``), or say what each would do."""
    del origin, reject  # every row that parsed can be written: nothing fails here
    applied = Applied()
    # Core statements on the session's connection: the ORM's per-row bookkeeping cost more
    # than the SQL itself for batches of a thousand plain rows.
    connection = await session.connection()
    stmt = select(*_COLUMNS).where(Item.sku.in_([row.sku for row in rows]))
    if write:
        stmt = stmt.order_by(Item.id).with_for_update()
    existing = {found.sku: found for found in (await connection.execute(stmt)).all()}
    categories = await _categories(session, rows, write=write)
    now = utcnow()
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    changed: list[tuple[int, ItemChange]] = []
    for row in rows:
        values = dict(row.values)
        if "category" in values:
            values["category_id"] = categories[values.pop("category")]
        current = existing.get(row.sku)
        if current is None:
            applied.count(Outcome.CREATED)
            inserts.append(
                {
                    **DEFAULTS,
                    **values,
                    "sku": row.sku,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            continue
        changes = [f for f, v in values.items() if not _same(f, getattr(current, f), v)]
        if not changes:
            applied.count(Outcome.UNCHANGED)
            continue
        applied.count(Outcome.UPDATED)
        # Every column of the file, not only the changed ones: the rows of one file then
        # share one statement shape and go out as a single executemany.
        updates.append(
            {**values, "id": current.id, "version": current.version + 1, "updated_at": now}
        )
        archiving = "archived" in changes and values["archived"]
        changed.append((current.id, ItemChange.ARCHIVED if archiving else ItemChange.UPDATED))
    if write:
        table = cast(Table, Item.__table__)
        if inserts:
            result = await connection.execute(insert(table).returning(table.c.id), inserts)
            changed = [(pk, ItemChange.CREATED) for pk in result.scalars()] + changed
        if updates:
            for shape, group in _by_keys(updates).items():
                change = (
                    update(table)
                    .where(table.c.id == bindparam("_id"))
                    .values({key: bindparam(f"_{key}") for key in shape if key != "id"})
                )
                await connection.execute(
                    change, [{f"_{k}": v for k, v in u.items()} for u in group]
                )
        for pk, kind in changed:
            events.record(session, ItemChanged(kind=kind, item_id=pk))
    return applied
