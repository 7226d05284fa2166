"""Reservations: units held back for an order, released, fulfilled or expired.

A reservation's units stay on hand but stop being available. An ACTIVE reservation past its
``expires_at`` is released by the sweeper, and lazily by any operation on its level first.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.errors import ErrorCode, ServiceError
from db.models import Item, MovementKind, Reservation, ReservationStatus, utcnow
from db.stock.idempotency import run_keyed
from db.stock.levels import (
    change_level,
    current_level,
    expire_for_level,
    level_id,
    locked_level,
    open_level,
    write_ledger,
)
from db.stock.requests import ReserveRequest
from db.stock.results import ReservationResult


async def reserve_stock(
    session: AsyncSession, request: ReserveRequest, *, actor_id: int
) -> ReservationResult:
    """Hold units back: they stay on hand but are no longer available."""

    async def perform() -> ReservationResult:
        target = await open_level(session, request.item_id, request.warehouse_id)
        if target.item.archived:
            raise ServiceError(ErrorCode.INVALID, "Archived items cannot be reserved", ["item_id"])
        level = await change_level(session, target.level_id, reserved=request.quantity)
        if level is None:
            current = await current_level(session, target.level_id)
            raise ServiceError(
                ErrorCode.INSUFFICIENT_STOCK,
                f"Only {current.available} units available to reserve",
                ["quantity"],
            )
        reservation = Reservation(
            item_id=target.item.id,
            warehouse_id=target.warehouse.id,
            quantity=request.quantity,
            reference=request.reference,
            expires_at=request.expires_at,
            created_by=actor_id,
            status=ReservationStatus.ACTIVE,
        )
        session.add(reservation)
        await session.flush()
        movement = await write_ledger(
            session,
            level,
            MovementKind.RESERVATION,
            request.quantity,
            actor_id=actor_id,
            reference=request.reference,
            reservation_id=reservation.id,
            available_before=level.available + request.quantity,
            reorder_point=target.item.reorder_point,
        )
        return ReservationResult(reservation, level, movement)

    return await run_keyed(
        session, request, actor_id=actor_id, result_type=ReservationResult, perform=perform
    )


async def _close(
    session: AsyncSession, reservation_id: int, *, fulfil: bool, actor_id: int
) -> ReservationResult:
    reservation = (
        await session.scalars(
            select(Reservation)
            .where(Reservation.id == reservation_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()
    if reservation is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such reservation", ["id"])
    item = await session.get_one(Item, reservation.item_id)
    now = utcnow()
    if (
        reservation.status is ReservationStatus.ACTIVE
        and reservation.expires_at is not None
        and reservation.expires_at <= now
    ):
        await expire_for_level(session, item.id, reservation.warehouse_id, item.reorder_point)
        await session.refresh(reservation)
    if reservation.status is not ReservationStatus.ACTIVE:
        raise ServiceError(
            ErrorCode.INVALID,
            f"The reservation is {reservation.status.value}: it cannot change again",
            ["id"],
        )
    level = await level_id(session, reservation.item_id, reservation.warehouse_id)
    available_before = (await locked_level(session, level)).available
    quantity = reservation.quantity
    changed = await change_level(
        session, level, on_hand=-quantity if fulfil else 0, reserved=-quantity
    )
    assert changed is not None, "an active reservation's units are on hand and reserved"
    reservation.status = ReservationStatus.FULFILLED if fulfil else ReservationStatus.RELEASED
    reservation.updated_at = now
    await session.flush()
    movement = await write_ledger(
        session,
        changed,
        MovementKind.FULFILLMENT if fulfil else MovementKind.RELEASE,
        -quantity,
        actor_id=actor_id,
        reference=reservation.reference,
        reservation_id=reservation.id,
        available_before=available_before,
        reorder_point=item.reorder_point,
    )
    return ReservationResult(reservation, changed, movement)


async def release_reservation(
    session: AsyncSession, reservation_id: int, *, actor_id: int
) -> ReservationResult:
    """Give reserved units back to available."""
    return await _close(session, reservation_id, fulfil=False, actor_id=actor_id)


async def fulfill_reservation(
    session: AsyncSession, reservation_id: int, *, actor_id: int
) -> ReservationResult:
    """Ship reserved units: they leave on-hand and reserved together."""
    return await _close(session, reservation_id, fulfil=True, actor_id=actor_id)


async def expire_due_reservations(session: AsyncSession, limit: int = 500) -> int:
    """The sweeper's pass: release every due reservation, level by level."""
    now = utcnow()
    pairs = (
        await session.execute(
            select(Reservation.item_id, Reservation.warehouse_id)
            .where(
                Reservation.status == ReservationStatus.ACTIVE,
                Reservation.expires_at.is_not(None),
                Reservation.expires_at <= now,
            )
            .distinct()
            .limit(limit)
        )
    ).all()
    for item_id, warehouse_id in pairs:
        item = await session.get(Item, item_id)
        await expire_for_level(session, item_id, warehouse_id, item.reorder_point if item else 0)
    return len(pairs)
