"""Stock-count imports: each row is a ``set_stock_count`` with reference ``import:<id>``.

Writing goes through the stock service itself, so a row gets exactly the mutation's
guarantees: the level is locked, the count applied with one conditional UPDATE, one
ledger row and its events written, and a concurrent ``adjustStock`` queues behind it (or
it behind that) without losing an update. Each row runs in a savepoint: a count equal to
what is on hand changes nothing and writes no ledger row (its savepoint is rolled back),
and under REJECT_FAILED_ROWS a failed row leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db import events, stock
from db.errors import ErrorCode, ServiceError
from db.imports.reading import Shape
from db.imports.rows import (
    Applied,
    CellError,
    Origin,
    Outcome,
    Record,
    Rejected,
    RowError,
    integer,
    optional_text,
    required_text,
)
from db.models import Item, StockLevel, Warehouse

# The stock service names its request's fields; the file names columns.
_COLUMN_OF = {
    "counted": "counted",
    "reason": "reason",
    "item_id": "sku",
    "warehouse_id": "warehouse",
}


@dataclass(frozen=True, slots=True)
class CountRow:
    line: int
    sku: str
    warehouse: str
    counted: int
    reason: str | None


def parse_count(record: Record, shape: Shape) -> CountRow | list[RowError]:
    del shape  # every column reads the same in CSV and JSON Lines
    cells = record.cells
    readers: dict[str, Any] = {
        "sku": lambda v: required_text(v, "sku", 64),
        "warehouse": lambda v: required_text(v, "warehouse", 32),
        "counted": lambda v: integer(v, "counted", maximum=stock.MAX_QUANTITY),
        "reason": lambda v: optional_text(v, "reason", 2_000),
    }
    values: dict[str, Any] = {"reason": None}
    errors: list[RowError] = []
    for name, read in readers.items():
        if name not in cells:
            if name != "reason":  # only JSON Lines rows can leave a column out
                errors.append(
                    RowError(
                        record.line, name, ErrorCode.INVALID, f"{name.capitalize()} is required"
                    )
                )
            continue
        try:
            values[name] = read(cells[name])
        except CellError as error:
            errors.append(error.at(record.line))
    if errors:
        return errors
    return CountRow(
        record.line, values["sku"], values["warehouse"], values["counted"], values["reason"]
    )


def count_key(row: CountRow) -> str:
    return f"{row.sku}\x1f{row.warehouse}"


def count_repeated(row: CountRow, first: int) -> RowError:
    return RowError(
        row.line,
        "sku",
        ErrorCode.DUPLICATE,
        f"SKU {row.sku} in {row.warehouse} is counted again: first on line {first}",
    )


class _Unchanged(Exception):
    """The count matched on hand: roll its savepoint back, nothing to record."""


def _predict(row: CountRow, level: tuple[int, int] | None) -> Outcome | RowError:
    if level is None:
        return Outcome.UNCHANGED if row.counted == 0 else Outcome.CREATED
    on_hand, reserved = level
    if row.counted < reserved:
        return RowError(
            row.line,
            "counted",
            ErrorCode.INSUFFICIENT_STOCK,
            f"{reserved} units are reserved: release reservations before counting lower",
        )
    return Outcome.UNCHANGED if row.counted == on_hand else Outcome.UPDATED


async def _write(
    session: AsyncSession,
    row: CountRow,
    item_id: int,
    warehouse_id: int,
    origin: Origin,
    existed: bool,
) -> Outcome | RowError:
    pending = events.pending(session)
    mark = len(pending)
    request = stock.CountRequest(
        item_id, warehouse_id, row.counted, reason=row.reason, reference=origin.reference
    )
    try:
        async with session.begin_nested():
            result = await stock.set_stock_count(session, request, actor_id=origin.user_id)
            if result.movement.delta == 0:
                raise _Unchanged
    except _Unchanged:
        del pending[mark:]  # rolled back with the savepoint: announce nothing of it
        return Outcome.UNCHANGED
    except ServiceError as error:
        del pending[mark:]
        column = _COLUMN_OF.get(error.field[0]) if error.field else None
        return RowError(row.line, column, error.code, error.message)
    return Outcome.UPDATED if existed else Outcome.CREATED


async def apply_counts(
    session: AsyncSession, rows: list[CountRow], origin: Origin, *, write: bool, reject: bool
) -> Applied:
    """Count the batch's levels (``write``), or say what each row would do."""
    applied = Applied()
    skus = {row.sku for row in rows}
    items = dict((await session.execute(select(Item.sku, Item.id).where(Item.sku.in_(skus)))).all())
    warehouses = dict((await session.execute(select(Warehouse.code, Warehouse.id))).all())
    found = await session.execute(
        select(
            StockLevel.item_id, StockLevel.warehouse_id, StockLevel.on_hand, StockLevel.reserved
        ).where(StockLevel.item_id.in_(set(items.values())))
    )
    levels = {(i, w): (on_hand, reserved) for i, w, on_hand, reserved in found}
    for row in rows:
        item_id, warehouse_id = items.get(row.sku), warehouses.get(row.warehouse)
        outcome: Outcome | RowError
        if item_id is None:
            outcome = RowError(row.line, "sku", ErrorCode.NOT_FOUND, f"No item with SKU {row.sku}")
        elif warehouse_id is None:
            outcome = RowError(
                row.line,
                "warehouse",
                ErrorCode.NOT_FOUND,
                f"No warehouse with code {row.warehouse}",
            )
        elif write:
            existed = (item_id, warehouse_id) in levels
            outcome = await _write(session, row, item_id, warehouse_id, origin, existed)
        else:
            outcome = _predict(row, levels.get((item_id, warehouse_id)))
        if isinstance(outcome, RowError):
            if write and reject:
                raise Rejected([outcome])
            applied.fail([outcome])
        else:
            applied.count(outcome)
    return applied
