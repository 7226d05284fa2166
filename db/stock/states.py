"""Quantity states of on-hand units: moves between available, damaged and quality control,
and the safety stock kept back from being promised.

Damaged and quality-control units stay on hand but are not available; safety stock is a
floor under available. A move writes one STATE_CHANGE ledger row, a new safety stock one
SAFETY_STOCK row; neither changes on hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncSession

from db.errors import ErrorCode, ServiceError
from db.models import MovementKind, StockLevel, StockMovement, StockState
from db.stock.idempotency import run_keyed
from db.stock.levels import change_level, current_level, locked_level, open_level, write_ledger
from db.stock.requests import KeyedRequest, check_key, check_quantity, check_text
from db.stock.results import Recorded, StockResult

# Which level column holds each state; available units are what no column holds.
_COLUMN = {StockState.DAMAGED: "damaged", StockState.QUALITY_CONTROL: "quality_control"}


@dataclass(frozen=True, slots=True)
class MoveStateRequest(KeyedRequest):
    """Move on-hand units of one level from one state to another."""

    operation: ClassVar[str] = "moveStockState"

    item_id: int
    warehouse_id: int
    from_state: StockState
    to_state: StockState
    quantity: int
    reason: str | None = None
    idempotency_key: str | None = None

    def check(self) -> None:
        if self.from_state is self.to_state:
            raise ServiceError(ErrorCode.INVALID, "Move units to a different state", ["to_state"])
        check_quantity(self.quantity, "quantity")
        check_text(self.reason, "reason")
        check_key(self.idempotency_key)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "item": self.item_id,
            "warehouse": self.warehouse_id,
            "from": self.from_state.value,
            "to": self.to_state.value,
            "quantity": self.quantity,
            "reason": self.reason,
        }

    def delta(self, state: StockState) -> int:
        """How this move changes the units in ``state``."""
        if state is self.from_state:
            return -self.quantity
        return self.quantity if state is self.to_state else 0


def units_in(level: StockLevel, state: StockState) -> int:
    """How many of the level's units are in ``state``."""
    if state is StockState.AVAILABLE:
        return level.available
    units: int = getattr(level, _COLUMN[state])
    return units


async def move_stock_state(
    session: AsyncSession, request: MoveStateRequest, *, actor_id: int
) -> StockResult:
    """Move units between AVAILABLE, DAMAGED and QUALITY_CONTROL; on hand is unchanged."""

    async def perform() -> StockResult:
        target = await open_level(session, request.item_id, request.warehouse_id)
        level = await change_level(
            session,
            target.level_id,
            damaged=request.delta(StockState.DAMAGED),
            quality_control=request.delta(StockState.QUALITY_CONTROL),
        )
        if level is None:
            current = await current_level(session, target.level_id)
            held = units_in(current, request.from_state)
            raise ServiceError(
                ErrorCode.INSUFFICIENT_STOCK,
                f"Only {held} units are {request.from_state.value}",
                ["quantity"],
            )
        quantity = request.quantity
        # Taking from AVAILABLE needed that many available, so before is exact; a move into
        # AVAILABLE only raises it, which can never cross down.
        available_before = level.available
        if request.from_state is StockState.AVAILABLE:
            available_before += quantity
        movement = await write_ledger(
            session,
            level,
            MovementKind.STATE_CHANGE,
            quantity,
            actor_id=actor_id,
            reason=request.reason,
            from_state=request.from_state,
            to_state=request.to_state,
            available_before=available_before,
            reorder_point=target.item.reorder_point,
        )
        return StockResult(level, movement)

    return await run_keyed(
        session, request, actor_id=actor_id, result_type=StockResult, perform=perform
    )


@dataclass(frozen=True, slots=True)
class SafetyStockRequest(KeyedRequest):
    """Set how many units of one level are kept back from being promised."""

    operation: ClassVar[str] = "setSafetyStock"

    item_id: int
    warehouse_id: int
    quantity: int
    idempotency_key: str | None = None

    def check(self) -> None:
        check_quantity(self.quantity, "quantity", allow_zero=True)

    def fingerprint(self) -> dict[str, Any]:
        return {"item": self.item_id, "warehouse": self.warehouse_id, "quantity": self.quantity}


@dataclass(frozen=True, slots=True)
class SafetyStockResult:
    """The level with its new safety stock, and the ledger row (None when unchanged)."""

    level: StockLevel
    movement: StockMovement | None

    def recorded(self) -> Recorded:
        movements = [] if self.movement is None else [self.movement.id]
        return {"levels": [self.level.id], "movements": movements}

    @classmethod
    async def replay(cls, session: AsyncSession, recorded: Recorded) -> SafetyStockResult:
        level = await session.get_one(StockLevel, recorded["levels"][0])
        moved = recorded["movements"]
        return cls(level, await session.get_one(StockMovement, moved[0]) if moved else None)


async def set_safety_stock(
    session: AsyncSession, request: SafetyStockRequest, *, actor_id: int
) -> SafetyStockResult:
    """Set a level's safety stock; it may exceed what is available (available is then 0)."""

    async def perform() -> SafetyStockResult:
        target = await open_level(session, request.item_id, request.warehouse_id)
        current = await locked_level(session, target.level_id)
        delta = request.quantity - current.safety_stock
        if delta == 0:
            return SafetyStockResult(current, None)
        available_before = current.available
        level = await change_level(
            session, target.level_id, safety_stock=delta, enforce_available=False
        )
        assert level is not None, "the row is locked and safety stock is never negative"
        movement = await write_ledger(
            session,
            level,
            MovementKind.SAFETY_STOCK,
            delta,
            actor_id=actor_id,
            reason=f"Safety stock set to {request.quantity}",
            available_before=available_before,
            reorder_point=target.item.reorder_point,
        )
        return SafetyStockResult(level, movement)

    return await run_keyed(
        session, request, actor_id=actor_id, result_type=SafetyStockResult, perform=perform
    )
