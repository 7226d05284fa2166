"""Stock mutations: adjust, count, bulk, transfer, reserve, release and fulfil."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, TypeAlias

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from db import stock
from db.errors import ServiceError
from db.models import MovementKind as MovementKindEnum
from schema.context import Context
from schema.errors import ARGUMENTS, InputPaths, UserError, user_errors
from schema.ids import pk_of
from schema.mutations import actor_id, run
from schema.permissions import IsClerk
from schema.stock.types import MovementKind, Reservation, StockLevel, StockMovement


@strawberry.input(description="Receive, ship or correct units of one item in one warehouse.")
class AdjustStockInput:
    item_id: strawberry.ID = strawberry.field(description="The item.")
    warehouse_id: strawberry.ID = strawberry.field(description="The warehouse.")
    delta: int = strawberry.field(
        description="Units to add (positive) or remove (negative); never zero."
    )
    kind: MovementKind = strawberry.field(
        description="RECEIPT (delta > 0), SHIPMENT (delta < 0) or ADJUSTMENT (either)."
    )
    reason: str | None = strawberry.field(default=None, description="Why, in words.")
    reference: str | None = strawberry.field(default=None, description="Order, PO or note.")
    idempotency_key: str | None = strawberry.field(
        default=None, description="Replaying the same key returns the first result."
    )

    def to_request(self) -> stock.AdjustRequest:
        return stock.AdjustRequest(
            item_id=pk_of(self.item_id, "Item", "item_id"),
            warehouse_id=pk_of(self.warehouse_id, "Warehouse", "warehouse_id"),
            delta=self.delta,
            kind=MovementKindEnum(self.kind),
            reason=self.reason,
            reference=self.reference,
            idempotency_key=self.idempotency_key,
        )


@strawberry.input(description="A physical count of one item in one warehouse.")
class StockCountInput:
    item_id: strawberry.ID = strawberry.field(description="The item.")
    warehouse_id: strawberry.ID = strawberry.field(description="The warehouse.")
    counted: int = strawberry.field(description="Units found on the shelf.")
    expected_on_hand: int | None = strawberry.field(
        default=None,
        description="On-hand you saw before counting; if it changed since: VERSION_CONFLICT.",
    )
    reason: str | None = strawberry.field(default=None, description="Why, in words.")
    idempotency_key: str | None = strawberry.field(
        default=None, description="Replaying the same key returns the first result."
    )

    def to_request(self) -> stock.CountRequest:
        return stock.CountRequest(
            item_id=pk_of(self.item_id, "Item", "item_id"),
            warehouse_id=pk_of(self.warehouse_id, "Warehouse", "warehouse_id"),
            counted=self.counted,
            expected_on_hand=self.expected_on_hand,
            reason=self.reason,
            idempotency_key=self.idempotency_key,
        )


@strawberry.input(description="Move units of an item from one warehouse to another.")
class TransferStockInput:
    item_id: strawberry.ID = strawberry.field(description="The item.")
    from_warehouse_id: strawberry.ID = strawberry.field(description="Where units leave.")
    to_warehouse_id: strawberry.ID = strawberry.field(description="Where units arrive.")
    quantity: int = strawberry.field(description="Units to move (positive).")
    reference: str | None = strawberry.field(default=None, description="Transfer note.")
    idempotency_key: str | None = strawberry.field(
        default=None, description="Replaying the same key returns the first result."
    )

    def to_request(self) -> stock.TransferRequest:
        return stock.TransferRequest(
            item_id=pk_of(self.item_id, "Item", "item_id"),
            from_warehouse_id=pk_of(self.from_warehouse_id, "Warehouse", "from_warehouse_id"),
            to_warehouse_id=pk_of(self.to_warehouse_id, "Warehouse", "to_warehouse_id"),
            quantity=self.quantity,
            reference=self.reference,
            idempotency_key=self.idempotency_key,
        )


@strawberry.input(description="Hold units back for an order.")
class ReserveStockInput:
    item_id: strawberry.ID = strawberry.field(description="The item.")
    warehouse_id: strawberry.ID = strawberry.field(description="The warehouse.")
    quantity: int = strawberry.field(description="Units to hold (positive).")
    reference: str | None = strawberry.field(default=None, description="Order reference.")
    expires_at: datetime | None = strawberry.field(
        default=None, description="Release the units by themselves at this time (UTC)."
    )
    idempotency_key: str | None = strawberry.field(
        default=None, description="Replaying the same key returns the first result."
    )

    def to_request(self) -> stock.ReserveRequest:
        return stock.ReserveRequest(
            item_id=pk_of(self.item_id, "Item", "item_id"),
            warehouse_id=pk_of(self.warehouse_id, "Warehouse", "warehouse_id"),
            quantity=self.quantity,
            reference=self.reference,
            expires_at=self.expires_at,
            idempotency_key=self.idempotency_key,
        )


strawberry.enum(stock.ErrorPolicy, description="What a bulk operation does when a row fails.")
ErrorPolicy: TypeAlias = stock.ErrorPolicy


@strawberry.type(description="Result of a change to one stock level.")
class StockPayload:
    stock_level: StockLevel | None = strawberry.field(description="The level after the change.")
    movement: StockMovement | None = strawberry.field(description="The ledger row written.")
    errors: list[UserError] = strawberry.field(description="Why it failed, when it did.")

    @classmethod
    def of(cls, result: stock.StockResult | None, errors: list[UserError]) -> StockPayload:
        if result is None:
            return cls(stock_level=None, movement=None, errors=errors)
        return cls(
            stock_level=StockLevel.from_row(result.level),
            movement=StockMovement.from_row(result.movement),
            errors=errors,
        )


@strawberry.type(description="Outcome of one row of a bulk adjustment.")
class BulkStockResult:
    index: int = strawberry.field(description="Position of the row in `inputs`.")
    stock_level: StockLevel | None = strawberry.field(description="The level after the change.")
    movement: StockMovement | None = strawberry.field(description="The ledger row written.")
    errors: list[UserError] = strawberry.field(description="Why this row failed.")


@strawberry.type(description="Result of a bulk adjustment.")
class BulkStockPayload:
    results: list[BulkStockResult] = strawberry.field(description="One entry per input row.")
    errors: list[UserError] = strawberry.field(description="Every failure, across rows.")


@strawberry.type(description="Result of a transfer.")
class TransferPayload:
    from_: StockLevel | None = strawberry.field(
        name="from", description="The source level after the transfer."
    )
    to: StockLevel | None = strawberry.field(description="The destination level after it.")
    movements: list[StockMovement] = strawberry.field(
        description="TRANSFER_OUT and TRANSFER_IN ledger rows."
    )
    errors: list[UserError] = strawberry.field(description="Why it failed, when it did.")


@strawberry.type(description="Result of a reservation mutation.")
class ReservationPayload:
    reservation: Reservation | None = strawberry.field(description="The reservation now.")
    errors: list[UserError] = strawberry.field(description="Why it failed, when it did.")

    @classmethod
    def of(
        cls, result: stock.ReservationResult | None, errors: list[UserError]
    ) -> ReservationPayload:
        row = None if result is None else Reservation.from_row(result.reservation)
        return cls(reservation=row, errors=errors)


def _parse_row(row: AdjustStockInput) -> stock.AdjustRequest | ServiceError:
    """A row whose IDs name nothing fails on its own, like a row the service refuses."""
    try:
        return row.to_request()
    except ServiceError as error:
        return error


BULK_ROWS = InputPaths(prefix=("inputs",))


@strawberry.type
class StockMutation:
    @strawberry.mutation(
        description="Receive, ship or correct stock (CLERK).", permission_classes=[IsClerk]
    )
    async def adjust_stock(
        self,
        info: strawberry.Info[Context],
        input: Annotated[AdjustStockInput, strawberry.argument(description="The change.")],
    ) -> StockPayload:
        actor = actor_id(info)
        result, errors = await run(
            info.context, lambda s: stock.adjust_stock(s, input.to_request(), actor_id=actor)
        )
        return StockPayload.of(result, errors)

    @strawberry.mutation(
        description="Record a physical count (CLERK).", permission_classes=[IsClerk]
    )
    async def set_stock_count(
        self,
        info: strawberry.Info[Context],
        input: Annotated[StockCountInput, strawberry.argument(description="The count.")],
    ) -> StockPayload:
        actor = actor_id(info)
        result, errors = await run(
            info.context, lambda s: stock.set_stock_count(s, input.to_request(), actor_id=actor)
        )
        return StockPayload.of(result, errors)

    @strawberry.mutation(
        description="Adjust many levels at once (CLERK); at most 500 rows.",
        permission_classes=[IsClerk],
    )
    async def bulk_adjust_stock(
        self,
        info: strawberry.Info[Context],
        inputs: Annotated[list[AdjustStockInput], strawberry.argument(description="The rows.")],
        error_policy: Annotated[
            ErrorPolicy | None,
            strawberry.argument(description="Default REJECT_EVERYTHING: all rows or none."),
        ] = None,
    ) -> BulkStockPayload:
        actor = actor_id(info)
        policy = stock.ErrorPolicy(error_policy or stock.ErrorPolicy.REJECT_EVERYTHING)
        requests = [_parse_row(row) for row in inputs]
        try:
            async with info.context.unit_of_work() as session:
                rows = await stock.bulk_adjust_stock(session, requests, policy, actor_id=actor)
        except stock.BulkRejected as rejected:
            rows = rejected.rows
            for row in rows:
                row.result = None  # rolled back with the rest
        except ServiceError as error:
            return BulkStockPayload(results=[], errors=[UserError.from_service(error, ARGUMENTS)])
        results = [
            BulkStockResult(
                index=row.index,
                stock_level=None if row.result is None else StockLevel.from_row(row.result.level),
                movement=None
                if row.result is None
                else StockMovement.from_row(row.result.movement),
                errors=user_errors(row.errors, BULK_ROWS.within(str(row.index))),
            )
            for row in rows
        ]
        return BulkStockPayload(results=results, errors=[e for r in results for e in r.errors])

    @strawberry.mutation(
        description="Move units between warehouses (CLERK).", permission_classes=[IsClerk]
    )
    async def transfer_stock(
        self,
        info: strawberry.Info[Context],
        input: Annotated[TransferStockInput, strawberry.argument(description="The transfer.")],
    ) -> TransferPayload:
        actor = actor_id(info)
        result, errors = await run(
            info.context, lambda s: stock.transfer_stock(s, input.to_request(), actor_id=actor)
        )
        if result is None:
            return TransferPayload(from_=None, to=None, movements=[], errors=errors)
        return TransferPayload(
            from_=StockLevel.from_row(result.source),
            to=StockLevel.from_row(result.target),
            movements=[StockMovement.from_row(m) for m in result.movements],
            errors=errors,
        )

    @strawberry.mutation(description="Reserve units (CLERK).", permission_classes=[IsClerk])
    async def reserve_stock(
        self,
        info: strawberry.Info[Context],
        input: Annotated[ReserveStockInput, strawberry.argument(description="The hold.")],
    ) -> ReservationPayload:
        actor = actor_id(info)
        result, errors = await run(
            info.context, lambda s: stock.reserve_stock(s, input.to_request(), actor_id=actor)
        )
        return ReservationPayload.of(result, errors)

    @strawberry.mutation(
        description="Give reserved units back to available (CLERK).",
        permission_classes=[IsClerk],
    )
    async def release_reservation(
        self,
        info: strawberry.Info[Context],
        id: Annotated[strawberry.ID, strawberry.argument(description="The reservation.")],
    ) -> ReservationPayload:
        actor = actor_id(info)

        async def work(session: AsyncSession) -> stock.ReservationResult:
            pk = pk_of(id, "Reservation", "id")
            return await stock.release_reservation(session, pk, actor_id=actor)

        result, errors = await run(info.context, work)
        return ReservationPayload.of(result, errors)

    @strawberry.mutation(
        description="Ship reserved units: they leave stock (CLERK).",
        permission_classes=[IsClerk],
    )
    async def fulfill_reservation(
        self,
        info: strawberry.Info[Context],
        id: Annotated[strawberry.ID, strawberry.argument(description="The reservation.")],
    ) -> ReservationPayload:
        actor = actor_id(info)

        async def work(session: AsyncSession) -> stock.ReservationResult:
            pk = pk_of(id, "Reservation", "id")
            return await stock.fulfill_reservation(session, pk, actor_id=actor)

        result, errors = await run(info.context, work)
        return ReservationPayload.of(result, errors)
