"""Quantity-state mutations: move units between states, set the safety stock."""

from __future__ import annotations

from typing import Annotated

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from db import stock
from db.models import StockState as StockStateEnum
from schema.context import Context
from schema.errors import ARGUMENTS, InputPaths
from schema.ids import pk_of
from schema.mutations import actor_id, run
from schema.permissions import IsClerk, IsManager
from schema.stock.mutations import StockPayload
from schema.stock.types import StockLevel, StockMovement, StockState


@strawberry.input(description="Move on-hand units of one level from one state to another.")
class MoveStockStateInput:
    item_id: strawberry.ID = strawberry.field(description="The item.")
    warehouse_id: strawberry.ID = strawberry.field(description="The warehouse.")
    from_: StockState = strawberry.field(name="from", description="The state units leave.")
    to: StockState = strawberry.field(description="The state units enter.")
    quantity: int = strawberry.field(description="Units to move (positive).")
    reason: str | None = strawberry.field(default=None, description="Why, in words.")
    idempotency_key: str | None = strawberry.field(
        default=None, description="Replaying the same key returns the first result."
    )

    def to_request(self) -> stock.MoveStateRequest:
        return stock.MoveStateRequest(
            item_id=pk_of(self.item_id, "Item", "item_id"),
            warehouse_id=pk_of(self.warehouse_id, "Warehouse", "warehouse_id"),
            from_state=StockStateEnum(self.from_),
            to_state=StockStateEnum(self.to),
            quantity=self.quantity,
            reason=self.reason,
            idempotency_key=self.idempotency_key,
        )


MOVE_PATHS = InputPaths(rename={"from_state": "from", "to_state": "to"})


@strawberry.type
class StockStateMutation:
    @strawberry.mutation(
        description="Move units between AVAILABLE, DAMAGED and QUALITY_CONTROL (CLERK); "
        "on hand is unchanged, a STATE_CHANGE ledger row records it.",
        permission_classes=[IsClerk],
    )
    async def move_stock_state(
        self,
        info: strawberry.Info[Context],
        input: Annotated[MoveStockStateInput, strawberry.argument(description="The move.")],
    ) -> StockPayload:
        actor = actor_id(info)
        result, errors = await run(
            info.context,
            lambda s: stock.move_stock_state(s, input.to_request(), actor_id=actor),
            MOVE_PATHS,
        )
        return StockPayload.of(result, errors)

    @strawberry.mutation(
        description="Set how many units of a level are kept back from being promised "
        "(MANAGER); a SAFETY_STOCK ledger row records a change, none is written when the "
        "value is unchanged.",
        permission_classes=[IsManager],
    )
    async def set_safety_stock(
        self,
        info: strawberry.Info[Context],
        item_id: Annotated[strawberry.ID, strawberry.argument(description="The item.")],
        warehouse_id: Annotated[strawberry.ID, strawberry.argument(description="The warehouse.")],
        quantity: Annotated[
            int, strawberry.argument(description="Units to keep back (0 or more).")
        ],
    ) -> StockPayload:
        actor = actor_id(info)

        async def work(session: AsyncSession) -> stock.SafetyStockResult:
            request = stock.SafetyStockRequest(
                item_id=pk_of(item_id, "Item", "item_id"),
                warehouse_id=pk_of(warehouse_id, "Warehouse", "warehouse_id"),
                quantity=quantity,
            )
            return await stock.set_safety_stock(session, request, actor_id=actor)

        result, errors = await run(info.context, work, ARGUMENTS)
        if result is None:
            return StockPayload(stock_level=None, movement=None, errors=errors)
        movement = None if result.movement is None else StockMovement.from_row(result.movement)
        return StockPayload(
            stock_level=StockLevel.from_row(result.level), movement=movement, errors=errors
        )
