"""Stock levels and their ledger: find or create, lock, change, record.

Concurrency: a level changes only through one conditional UPDATE (``… WHERE available >= the
units the change takes RETURNING …``), so PostgreSQL re-checks the condition after waiting on
the row lock and no update is lost. Lock order everywhere: a purchase order or transfer row
first (``FOR UPDATE``, before any stock), then reservations, then levels by ascending id (so
opposite transfers queue instead of deadlocking). On SQLite every write transaction begins
IMMEDIATE, which serialises writers. CHECK constraints refuse anything that slips past.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import events
from db.dialects import insert_ignoring_conflicts
from db.errors import ErrorCode, ServiceError
from db.events import LowStock, ReservationExpired, StockChanged
from db.models import (
    Item,
    MovementKind,
    Reservation,
    ReservationStatus,
    StockLevel,
    StockMovement,
    StockState,
    Warehouse,
    utcnow,
)
from db.stock.expressions import crossed_low


async def get_item(session: AsyncSession, item_id: int, field: str = "item_id") -> Item:
    item = await session.get(Item, item_id)
    if item is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such item", [field])
    return item


async def get_warehouse(
    session: AsyncSession, warehouse_id: int, field: str = "warehouse_id"
) -> Warehouse:
    warehouse = await session.get(Warehouse, warehouse_id)
    if warehouse is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such warehouse", [field])
    return warehouse


async def level_id(session: AsyncSession, item_id: int, warehouse_id: int) -> int:
    """The level's id, creating an empty level on first use (race-free on both backends)."""
    find = select(StockLevel.id).where(
        StockLevel.item_id == item_id, StockLevel.warehouse_id == warehouse_id
    )
    found = await session.scalar(find)
    if found is not None:
        return found
    values = {
        "item_id": item_id,
        "warehouse_id": warehouse_id,
        "on_hand": 0,
        "reserved": 0,
        "damaged": 0,
        "quality_control": 0,
        "safety_stock": 0,
        "updated_at": utcnow(),
    }
    await session.execute(
        insert_ignoring_conflicts(session, StockLevel, values, ["item_id", "warehouse_id"])
    )
    created = await session.scalar(find)
    assert created is not None
    return created


async def change_level(
    session: AsyncSession,
    level: int,
    *,
    on_hand: int = 0,
    reserved: int = 0,
    damaged: int = 0,
    quality_control: int = 0,
    safety_stock: int = 0,
    enforce_available: bool = True,
) -> StockLevel | None:
    """Apply deltas atomically; None when the result would break a stock rule.

    A change that takes available units (ships, reserves, marks damaged) needs that many
    available. ``enforce_available=False`` is for facts and settings that may leave nothing
    available (a count, a safety stock, damaged units arriving): they only keep every
    quantity within on hand.
    """
    takes = reserved + damaged + quality_control + safety_stock - on_hand
    allocated = reserved + damaged + quality_control - on_hand  # units leaving the free part
    conditions = [StockLevel.id == level]
    if enforce_available and takes > 0:
        conditions.append(StockLevel.available >= takes)
    elif allocated > 0:
        free = StockLevel.on_hand - StockLevel.reserved - StockLevel.damaged
        conditions.append(free - StockLevel.quality_control >= allocated)
    deltas = (
        (StockLevel.on_hand, on_hand),
        (StockLevel.reserved, reserved),
        (StockLevel.damaged, damaged),
        (StockLevel.quality_control, quality_control),
        (StockLevel.safety_stock, safety_stock),
    )
    # On hand never drops below the units held in other states (the guards above).
    conditions.extend(column >= -delta for column, delta in deltas[1:] if delta < 0)
    # Only the columns that change: the usual statement stays the one it always was.
    values: dict[Any, Any] = {column.key: column + delta for column, delta in deltas if delta}
    stmt = (
        update(StockLevel)
        .where(*conditions)
        .values(**values, updated_at=utcnow())
        .returning(StockLevel)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return (await session.scalars(stmt)).first()


async def locked_level(session: AsyncSession, level: int) -> StockLevel:
    stmt = (
        select(StockLevel)
        .where(StockLevel.id == level)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(stmt)).one()


async def current_level(session: AsyncSession, level: int) -> StockLevel:
    """The level as committed now (after a refused change, to say what is available)."""
    return await session.get_one(StockLevel, level, populate_existing=True)


async def write_ledger(
    session: AsyncSession,
    level: StockLevel,
    kind: MovementKind,
    delta: int,
    *,
    actor_id: int | None,
    available_before: int,
    reorder_point: int,
    reason: str | None = None,
    reference: str | None = None,
    reservation_id: int | None = None,
    from_state: StockState | None = None,
    to_state: StockState | None = None,
) -> StockMovement:
    """The ledger row for a change just applied to ``level``, and its events."""
    movement = StockMovement(
        item_id=level.item_id,
        warehouse_id=level.warehouse_id,
        kind=kind,
        delta=delta,
        on_hand_after=level.on_hand,
        reserved_after=level.reserved,
        damaged_after=level.damaged,
        quality_control_after=level.quality_control,
        safety_stock_after=level.safety_stock,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        reference=reference,
        actor_id=actor_id,
        reservation_id=reservation_id,
        created_at=utcnow(),
    )
    session.add(movement)
    await session.flush()
    available = level.available
    events.record(
        session,
        StockChanged(
            item_id=level.item_id,
            warehouse_id=level.warehouse_id,
            stock_level_id=level.id,
            movement_id=movement.id,
            kind=kind,
            delta=delta,
            on_hand=level.on_hand,
            reserved=level.reserved,
            available=available,
        ),
    )
    if crossed_low(available_before, available, reorder_point):
        events.record(
            session,
            LowStock(
                item_id=level.item_id,
                warehouse_id=level.warehouse_id,
                available=available,
                reorder_point=reorder_point,
            ),
        )
    return movement


async def expire_for_level(
    session: AsyncSession, item_id: int, warehouse_id: int, reorder_point: int
) -> None:
    """Release this level's ACTIVE reservations whose time is up (lazily, on touch)."""
    now = utcnow()
    due = (
        await session.execute(
            update(Reservation)
            .where(
                Reservation.item_id == item_id,
                Reservation.warehouse_id == warehouse_id,
                Reservation.status == ReservationStatus.ACTIVE,
                Reservation.expires_at.is_not(None),
                Reservation.expires_at <= now,
            )
            .values(status=ReservationStatus.EXPIRED, updated_at=now)
            .returning(Reservation.id, Reservation.quantity)
            .execution_options(synchronize_session=False)
        )
    ).all()
    if not due:
        return
    level = await level_id(session, item_id, warehouse_id)
    for reservation_id, quantity in sorted(due):
        before = await locked_level(session, level)
        available_before = before.available
        changed = await change_level(session, level, reserved=-quantity)
        assert changed is not None, "reserved never exceeds on_hand"
        await write_ledger(
            session,
            changed,
            MovementKind.RELEASE,
            -quantity,
            actor_id=None,
            reason="Reservation expired",
            reservation_id=reservation_id,
            available_before=available_before,
            reorder_point=reorder_point,
        )
        events.record(
            session,
            ReservationExpired(reservation_id, item_id, warehouse_id, quantity),
        )


@dataclass(frozen=True, slots=True)
class OpenLevel:
    """The level an operation is about to change, with its item and warehouse."""

    item: Item
    warehouse: Warehouse
    level_id: int


async def open_level(
    session: AsyncSession,
    item_id: int,
    warehouse_id: int,
    warehouse_field: str = "warehouse_id",
) -> OpenLevel:
    """Check the item and warehouse exist, release what is due there, find the level.

    One statement on the hot path: the item, the warehouse, the level's id and whether any
    reservation there is due come back together, and the expiry UPDATE runs only when one is.
    """
    due = (
        select(Reservation.id)
        .where(
            Reservation.item_id == Item.id,
            Reservation.warehouse_id == Warehouse.id,
            Reservation.status == ReservationStatus.ACTIVE,
            Reservation.expires_at.is_not(None),
            Reservation.expires_at <= utcnow(),
        )
        .exists()
    )
    found = (
        await session.execute(
            select(Item, Warehouse, StockLevel.id, due)
            .select_from(Item)
            .join(Warehouse, Warehouse.id == warehouse_id)
            .outerjoin(
                StockLevel,
                and_(StockLevel.item_id == Item.id, StockLevel.warehouse_id == Warehouse.id),
            )
            .where(Item.id == item_id)
        )
    ).first()
    if found is None:  # one of the two does not exist: the same errors as looking each up
        await get_item(session, item_id)
        await get_warehouse(session, warehouse_id, warehouse_field)
        raise AssertionError("the item and the warehouse exist, so the join had a row")
    item, warehouse, level, is_due = found
    if is_due:
        await expire_for_level(session, item.id, warehouse.id, item.reorder_point)
    if level is None:
        level = await level_id(session, item.id, warehouse.id)
    return OpenLevel(item, warehouse, level)
