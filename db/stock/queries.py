"""Read side of stock: levels, the ledger, reservations and the inventory summary.

Stock as of an instant is rebuilt in ``db.stock.history``; the summary and a warehouse's
levels take an optional ``at`` and read through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db import batch
from db.models import (
    Item,
    MovementKind,
    Reservation,
    ReservationStatus,
    StockLevel,
    StockMovement,
    Warehouse,
)
from db.pagination import Page, PageArgs, SortKey, count, paginate
from db.stock.expressions import is_low, item_totals, totals_of
from db.stock.history import Snapshot, item_totals_at, snapshots


@dataclass(frozen=True, slots=True)
class MovementFilterSpec:
    item_id: int | None = None
    warehouse_id: int | None = None
    kinds: tuple[MovementKind, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class InventorySummaryRow:
    item_count: int
    total_on_hand: int
    total_value: Decimal
    low_stock_count: int


def _movements(spec: MovementFilterSpec) -> Any:
    stmt = select(StockMovement)
    if spec.item_id is not None:
        stmt = stmt.where(StockMovement.item_id == spec.item_id)
    if spec.warehouse_id is not None:
        stmt = stmt.where(StockMovement.warehouse_id == spec.warehouse_id)
    if spec.kinds:
        stmt = stmt.where(StockMovement.kind.in_(spec.kinds))
    if spec.since is not None:
        stmt = stmt.where(StockMovement.created_at >= spec.since)
    if spec.until is not None:
        stmt = stmt.where(StockMovement.created_at < spec.until)
    return stmt


# Newest first: the ledger is read like a bank statement.
MOVEMENT_ORDER = [SortKey(StockMovement.id, descending=True)]


async def list_movements(
    session: AsyncSession, spec: MovementFilterSpec, args: PageArgs
) -> Page[StockMovement]:
    return await paginate(session, _movements(spec), MOVEMENT_ORDER, args)


async def count_movements(session: AsyncSession, spec: MovementFilterSpec) -> int:
    return await count(session, _movements(spec))


def _reservations(status: ReservationStatus | None) -> Any:
    stmt = select(Reservation)
    return stmt if status is None else stmt.where(Reservation.status == status)


async def list_reservations(
    session: AsyncSession, status: ReservationStatus | None, args: PageArgs
) -> Page[Reservation]:
    keys = [SortKey(Reservation.id, descending=True)]
    return await paginate(session, _reservations(status), keys, args)


async def count_reservations(session: AsyncSession, status: ReservationStatus | None) -> int:
    return await count(session, _reservations(status))


WAREHOUSE_LEVEL_ORDER = [SortKey(StockLevel.item_id)]


def _warehouse_levels(warehouse_id: int, low_stock_only: bool) -> Any:
    stmt = select(StockLevel).where(StockLevel.warehouse_id == warehouse_id)
    if low_stock_only:
        stmt = stmt.join(Item, Item.id == StockLevel.item_id).where(
            is_low(StockLevel.available, Item.reorder_point)
        )
    return stmt


async def list_warehouse_levels(
    session: AsyncSession, warehouse_id: int, low_stock_only: bool, args: PageArgs
) -> Page[StockLevel]:
    stmt = _warehouse_levels(warehouse_id, low_stock_only)
    return await paginate(session, stmt, WAREHOUSE_LEVEL_ORDER, args)


async def count_warehouse_levels(
    session: AsyncSession, warehouse_id: int, low_stock_only: bool
) -> int:
    return await count(session, _warehouse_levels(warehouse_id, low_stock_only))


async def warehouse_snapshots(
    session: AsyncSession, warehouse_id: int, at: datetime, args: PageArgs
) -> Page[Snapshot]:
    """A page of one warehouse's levels as of ``at``, in the order of its stock levels."""
    page = await list_warehouse_levels(session, warehouse_id, False, args)
    ids = [level.id for level in page.nodes]
    found = await snapshots(session, at, StockLevel.id.in_(ids)) if ids else []
    by_level = {snap.level_id: snap for snap in found}
    nodes = [by_level[level_id] for level_id in ids]
    return Page(nodes, page.positions, page.has_next_page, page.has_previous_page)


async def levels_by_item_id(
    session: AsyncSession, item_ids: Sequence[int]
) -> list[list[StockLevel]]:
    return await batch.grouped_by(
        session, StockLevel, StockLevel.item_id, item_ids, StockLevel.warehouse_id
    )


async def levels_with_warehouses_by_item_id(
    session: AsyncSession, item_ids: Sequence[int]
) -> tuple[list[list[StockLevel]], list[Warehouse]]:
    """Many items' levels and their warehouses in one statement, as list views need both."""
    stmt = (
        select(StockLevel, Warehouse)
        .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
        .where(StockLevel.item_id.in_(set(item_ids)))
        .order_by(StockLevel.warehouse_id)
    )
    groups: dict[int, list[StockLevel]] = {item_id: [] for item_id in item_ids}
    warehouses: dict[int, Warehouse] = {}
    for level, warehouse in await session.execute(stmt):
        groups[level.item_id].append(level)
        warehouses[warehouse.id] = warehouse
    return [groups[item_id] for item_id in item_ids], list(warehouses.values())


async def levels_by_id(session: AsyncSession, ids: Sequence[int]) -> list[StockLevel | None]:
    return await batch.by_ids(session, StockLevel, ids)


async def movements_by_id(session: AsyncSession, ids: Sequence[int]) -> list[StockMovement | None]:
    return await batch.by_ids(session, StockMovement, ids)


async def reservations_by_id(session: AsyncSession, ids: Sequence[int]) -> list[Reservation | None]:
    return await batch.by_ids(session, Reservation, ids)


async def inventory_summary(
    session: AsyncSession, warehouse_id: int | None, at: datetime | None = None
) -> InventorySummaryRow:
    """Counts and value over live (non-archived) items, now or as of ``at``, in one statement.

    As of an instant, units are those the ledger held then, valued at today's unit cost.
    """
    totals = item_totals(warehouse_id) if at is None else item_totals_at(at, warehouse_id)
    on_hand, available = totals_of(totals)
    stmt = (
        select(
            func.count(Item.id),
            func.coalesce(func.sum(on_hand), 0),
            func.coalesce(func.sum(on_hand * func.coalesce(Item.unit_cost, 0)), 0),
            func.coalesce(func.sum(case((is_low(available, Item.reorder_point), 1), else_=0)), 0),
        )
        .select_from(Item)
        .outerjoin(totals, totals.c.item_id == Item.id)
        .where(Item.archived.is_(False))
    )
    if warehouse_id is not None:
        stocked = select(StockLevel.item_id).where(StockLevel.warehouse_id == warehouse_id)
        stmt = stmt.where(Item.id.in_(stocked))
    row = (await session.execute(stmt)).one()
    value = Decimal(str(row[2])).quantize(Decimal("0.01"))
    return InventorySummaryRow(int(row[0]), int(row[1]), value, int(row[3]))
