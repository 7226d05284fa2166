"""What stock operations return, and how a replayed idempotency key rebuilds it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db.errors import ServiceError
from db.models import Reservation, StockLevel, StockMovement

# What an idempotency record keeps of a result: the ids of the rows it consists of.
Recorded = dict[str, Any]


async def _rows(
    session: AsyncSession, recorded: Recorded
) -> tuple[list[StockLevel], list[StockMovement]]:
    levels = [await session.get_one(StockLevel, i) for i in recorded["levels"]]
    movements = [await session.get_one(StockMovement, i) for i in recorded["movements"]]
    return levels, movements


@dataclass(frozen=True, slots=True)
class StockResult:
    level: StockLevel
    movement: StockMovement

    def recorded(self) -> Recorded:
        return {"levels": [self.level.id], "movements": [self.movement.id]}

    @classmethod
    async def replay(cls, session: AsyncSession, recorded: Recorded) -> StockResult:
        levels, movements = await _rows(session, recorded)
        return cls(levels[0], movements[0])


@dataclass(frozen=True, slots=True)
class TransferResult:
    source: StockLevel
    target: StockLevel
    movements: list[StockMovement]

    def recorded(self) -> Recorded:
        return {
            "levels": [self.source.id, self.target.id],
            "movements": [m.id for m in self.movements],
        }

    @classmethod
    async def replay(cls, session: AsyncSession, recorded: Recorded) -> TransferResult:
        levels, movements = await _rows(session, recorded)
        return cls(levels[0], levels[1], movements)


@dataclass(frozen=True, slots=True)
class ReservationResult:
    reservation: Reservation
    level: StockLevel
    movement: StockMovement | None

    def recorded(self) -> Recorded:
        movements = [] if self.movement is None else [self.movement.id]
        return {
            "reservation": self.reservation.id,
            "levels": [self.level.id],
            "movements": movements,
        }

    @classmethod
    async def replay(cls, session: AsyncSession, recorded: Recorded) -> ReservationResult:
        reservation = await session.get_one(Reservation, recorded["reservation"])
        levels, movements = await _rows(session, recorded)
        return cls(reservation, levels[0], movements[0] if movements else None)


@dataclass(slots=True)
class BulkRow:
    """One row of a bulk adjustment: its result, or why it failed."""

    index: int
    result: StockResult | None
    errors: list[ServiceError]


class BulkRejected(Exception):
    """REJECT_EVERYTHING with a failed row: the whole batch rolls back."""

    def __init__(self, rows: list[BulkRow]) -> None:
        super().__init__("; ".join(e.message for row in rows for e in row.errors))
        self.rows = rows
