"""Reading stock back in tests of the services: levels, their ledger, the ledger replayed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.events import Event
from db.models import MovementKind, Reservation, ReservationStatus, StockLevel, StockMovement

E = TypeVar("E", bound=Event)

# What each kind of ledger row changes: reservations move only reserved units, a fulfilment
# both (it ships what was held back), every other kind only the units on hand.
_RESERVED_ONLY = {MovementKind.RESERVATION, MovementKind.RELEASE}
_BOTH = {MovementKind.FULFILLMENT}


async def level_of(session: AsyncSession, item_id: int, warehouse_id: int) -> StockLevel | None:
    stmt = select(StockLevel).where(
        StockLevel.item_id == item_id, StockLevel.warehouse_id == warehouse_id
    )
    return (await session.scalars(stmt)).one_or_none()


async def ledger(session: AsyncSession, item_id: int, warehouse_id: int) -> list[StockMovement]:
    """The level's ledger rows, oldest first."""
    stmt = (
        select(StockMovement)
        .where(StockMovement.item_id == item_id, StockMovement.warehouse_id == warehouse_id)
        .order_by(StockMovement.id)
    )
    return list((await session.scalars(stmt)).all())


def replayed(rows: Sequence[StockMovement]) -> list[tuple[int, int]]:
    """(on_hand, reserved) after each row, computed from the kinds and deltas alone."""
    on_hand = reserved = 0
    states = []
    for row in rows:
        if row.kind not in _RESERVED_ONLY:
            on_hand += row.delta
        if row.kind in _RESERVED_ONLY or row.kind in _BOTH:
            reserved += row.delta
        states.append((on_hand, reserved))
    return states


def recorded(rows: Sequence[StockMovement]) -> list[tuple[int, int]]:
    """(on_hand_after, reserved_after) as each row states them."""
    return [(row.on_hand_after, row.reserved_after) for row in rows]


@dataclass(frozen=True)
class StockState:
    """Everything stock operations write, to show that a refused one wrote nothing."""

    levels: dict[int, tuple[int, int]]
    movements: int
    reservations: dict[int, ReservationStatus]


async def stock_state(session: AsyncSession) -> StockState:
    levels = {
        level.id: (level.on_hand, level.reserved)
        for level in (await session.scalars(select(StockLevel))).all()
    }
    movements = await session.scalar(select(func.count()).select_from(StockMovement))
    reservations = {
        row.id: row.status for row in (await session.scalars(select(Reservation))).all()
    }
    return StockState(levels, int(movements or 0), reservations)


def of_type(events: Iterable[Event], cls: type[E]) -> list[E]:
    return [event for event in events if isinstance(event, cls)]
