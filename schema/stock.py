"""Stock types (levels, ledger, reservations, summary) and their queries."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, cast

import strawberry

from db import stock, stock_queries
from db.errors import ServiceError
from db.models import MovementKind as MovementKindEnum
from db.models import Reservation as ReservationRow
from db.models import ReservationStatus as ReservationStatusEnum
from db.models import StockLevel as StockLevelRow
from db.models import StockMovement as StockMovementRow
from schema.context import Context
from schema.errors import CodedError, UserError, user_errors
from schema.ids import decode_optional, try_decode
from schema.loaders import Missing
from schema.mutations import run
from schema.permissions import IsClerk, IsViewer
from schema.relay import After, Before, Connection, First, Last, Node, global_id, page_args, paged

if TYPE_CHECKING:
    from schema.items import Item
    from schema.users import User
    from schema.warehouses import Warehouse

ItemRef = Annotated["Item", strawberry.lazy("schema.items")]
WarehouseRef = Annotated["Warehouse", strawberry.lazy("schema.warehouses")]
UserRef = Annotated["User", strawberry.lazy("schema.users")]

strawberry.enum(MovementKindEnum, description="What a ledger row records.")
strawberry.enum(ReservationStatusEnum, description="Life cycle of a reservation.")
MovementKind: TypeAlias = MovementKindEnum
ReservationStatus: TypeAlias = ReservationStatusEnum


def _missing(what: str) -> CodedError:
    # A row's foreign key points at something that vanished: a data bug, not client error.
    return CodedError(f"{what} not found", "INTERNAL_SERVER_ERROR")


async def _item(info: strawberry.Info[Context], pk: int) -> Item:
    from schema.items import Item

    row = await info.context.loaders.item.load(pk)
    if row is None:
        raise _missing("Item")
    return Item.from_row(row)


async def _warehouse(info: strawberry.Info[Context], pk: int) -> Warehouse:
    from schema.warehouses import Warehouse

    row = await info.context.loaders.warehouse.load(pk)
    if row is None:
        raise _missing("Warehouse")
    return Warehouse.from_row(row)


@strawberry.type(description="How many units of one item one warehouse holds.")
class StockLevel(Node):
    id: strawberry.ID = global_id("StockLevel")
    on_hand: int = strawberry.field(description="Units physically present.")
    reserved: int = strawberry.field(description="Units promised to active reservations.")
    available: int = strawberry.field(description="onHand - reserved: units free to promise.")
    updated_at: datetime = strawberry.field(description="When it last changed (UTC).")
    pk: strawberry.Private[int]
    item_pk: strawberry.Private[int]
    warehouse_pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: StockLevelRow) -> StockLevel:
        return cls(
            pk=row.id,
            on_hand=row.on_hand,
            reserved=row.reserved,
            available=row.on_hand - row.reserved,
            updated_at=row.updated_at,
            item_pk=row.item_id,
            warehouse_pk=row.warehouse_id,
        )

    @strawberry.field(description="The item.")
    def item(self, info: strawberry.Info[Context]) -> ItemRef:
        from schema.items import Item

        row = info.context.loaders.item.peek(self.item_pk)
        if isinstance(row, Missing) or row is None:
            return cast(Any, _item(info, self.item_pk))
        return Item.from_row(row)

    @strawberry.field(description="The warehouse.")
    def warehouse(self, info: strawberry.Info[Context]) -> WarehouseRef:
        # Synchronous when already loaded (the usual case: a handful of warehouses).
        from schema.warehouses import Warehouse

        row = info.context.loaders.warehouse.peek(self.warehouse_pk)
        if isinstance(row, Missing) or row is None:
            return cast(Any, _warehouse(info, self.warehouse_pk))
        return Warehouse.from_row(row)


@strawberry.type(description="One row of the stock ledger: a change to one stock level.")
class StockMovement(Node):
    id: strawberry.ID = global_id("StockMovement")
    kind: MovementKind = strawberry.field(description="What happened.")
    delta: int = strawberry.field(
        description="Change in on-hand units (reserved units for RESERVATION/RELEASE)."
    )
    on_hand_after: int = strawberry.field(description="On-hand units right after.")
    reserved_after: int = strawberry.field(description="Reserved units right after.")
    reason: str | None = strawberry.field(description="Why, in words.")
    reference: str | None = strawberry.field(description="External reference (order, PO).")
    created_at: datetime = strawberry.field(description="When (UTC).")
    pk: strawberry.Private[int]
    item_pk: strawberry.Private[int]
    warehouse_pk: strawberry.Private[int]
    actor_pk: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: StockMovementRow) -> StockMovement:
        return cls(
            pk=row.id,
            kind=row.kind,
            delta=row.delta,
            on_hand_after=row.on_hand_after,
            reserved_after=row.reserved_after,
            reason=row.reason,
            reference=row.reference,
            created_at=row.created_at,
            item_pk=row.item_id,
            warehouse_pk=row.warehouse_id,
            actor_pk=row.actor_id,
        )

    @strawberry.field(description="The item.")
    async def item(self, info: strawberry.Info[Context]) -> ItemRef:
        return await _item(info, self.item_pk)

    @strawberry.field(description="The warehouse.")
    async def warehouse(self, info: strawberry.Info[Context]) -> WarehouseRef:
        return await _warehouse(info, self.warehouse_pk)

    @strawberry.field(description="Who made the change, if a user did.")
    async def actor(self, info: strawberry.Info[Context]) -> UserRef | None:
        from schema.users import User

        if self.actor_pk is None:
            return None
        row = await info.context.loaders.user.load(self.actor_pk)
        return None if row is None else User.from_row(row)


@strawberry.type(description="Units of an item held back for an order until fulfilled.")
class Reservation(Node):
    id: strawberry.ID = global_id("Reservation")
    quantity: int = strawberry.field(description="Units reserved.")
    status: ReservationStatus = strawberry.field(description="Where it is in its life cycle.")
    reference: str | None = strawberry.field(description="External reference (order).")
    expires_at: datetime | None = strawberry.field(
        description="When an ACTIVE reservation releases itself (UTC)."
    )
    created_at: datetime = strawberry.field(description="When it was made (UTC).")
    pk: strawberry.Private[int]
    item_pk: strawberry.Private[int]
    warehouse_pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: ReservationRow) -> Reservation:
        return cls(
            pk=row.id,
            quantity=row.quantity,
            status=row.status,
            reference=row.reference,
            expires_at=row.expires_at,
            created_at=row.created_at,
            item_pk=row.item_id,
            warehouse_pk=row.warehouse_id,
        )

    @strawberry.field(description="The item.")
    async def item(self, info: strawberry.Info[Context]) -> ItemRef:
        return await _item(info, self.item_pk)

    @strawberry.field(description="The warehouse.")
    async def warehouse(self, info: strawberry.Info[Context]) -> WarehouseRef:
        return await _warehouse(info, self.warehouse_pk)


@strawberry.type(description="Totals over live items, for one warehouse or all.")
class InventorySummary:
    item_count: int = strawberry.field(description="Live items counted.")
    total_on_hand: int = strawberry.field(description="Units on hand.")
    total_value: Decimal = strawberry.field(description="Sum of on-hand units times unit cost.")
    low_stock_count: int = strawberry.field(description="Items at or below reorder point.")


@strawberry.input(description="Narrow the ledger; all given conditions must hold.")
class MovementFilter:
    item_id: strawberry.ID | None = strawberry.field(default=None, description="This item.")
    warehouse_id: strawberry.ID | None = strawberry.field(
        default=None, description="This warehouse."
    )
    kinds: list[MovementKind] | None = strawberry.field(
        default=None, description="Any of these kinds."
    )
    since: datetime | None = strawberry.field(default=None, description="At or after (UTC).")
    until: datetime | None = strawberry.field(default=None, description="Before (UTC).")

    def to_spec(self) -> stock_queries.MovementFilterSpec:
        return stock_queries.MovementFilterSpec(
            item_id=decode_optional(self.item_id, "Item"),
            warehouse_id=decode_optional(self.warehouse_id, "Warehouse"),
            kinds=tuple(MovementKindEnum(k) for k in self.kinds) if self.kinds else None,
            since=self.since,
            until=self.until,
        )


@strawberry.type
class StockQuery:
    @strawberry.field(description="The stock ledger, newest first.", permission_classes=[IsViewer])
    async def movements(
        self,
        info: strawberry.Info[Context],
        first: First = None,
        after: After = None,
        filter: Annotated[
            MovementFilter | None, strawberry.argument(description="Conditions to match.")
        ] = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[StockMovement]:
        reader, args = info.context.reader, page_args(first, after, last, before)
        spec = filter.to_spec() if filter is not None else stock_queries.MovementFilterSpec()
        return await paged(
            lambda: reader(stock_queries.list_movements, spec, args),
            StockMovement.from_row,
            lambda: reader(stock_queries.count_movements, spec),
        )

    @strawberry.field(description="Reservations, newest first.", permission_classes=[IsViewer])
    async def reservations(
        self,
        info: strawberry.Info[Context],
        first: First = None,
        after: After = None,
        status: Annotated[
            ReservationStatus | None, strawberry.argument(description="Only this status.")
        ] = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Reservation]:
        reader, args = info.context.reader, page_args(first, after, last, before)
        wanted = None if status is None else ReservationStatusEnum(status)
        return await paged(
            lambda: reader(stock_queries.list_reservations, wanted, args),
            Reservation.from_row,
            lambda: reader(stock_queries.count_reservations, wanted),
        )

    @strawberry.field(
        description="Counts and value of live items, in one warehouse or all.",
        permission_classes=[IsViewer],
    )
    async def inventory_summary(
        self,
        info: strawberry.Info[Context],
        warehouse_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only this warehouse.")
        ] = None,
    ) -> InventorySummary:
        pk = decode_optional(warehouse_id, "Warehouse")
        row = await info.context.reader(stock_queries.inventory_summary, pk)
        return InventorySummary(
            item_count=row.item_count,
            total_on_hand=row.total_on_hand,
            total_value=row.total_value,
            low_stock_count=row.low_stock_count,
        )


# ---------------------------------------------------------------- mutations


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
            item_id=try_decode(self.item_id, "Item"),
            warehouse_id=try_decode(self.warehouse_id, "Warehouse"),
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


def _actor(info: strawberry.Info[Context]) -> int:
    user = info.context.user
    assert user is not None  # the permission class guarantees it
    return user.id


MAX_BULK = stock.MAX_BULK_ROWS


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
        actor, request = _actor(info), input.to_request()
        result, errors = await run(
            info.context, lambda s: stock.adjust_stock(s, request, actor_id=actor)
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
        actor = _actor(info)
        result, errors = await run(
            info.context,
            lambda s: stock.set_stock_count(
                s,
                item_id=try_decode(input.item_id, "Item"),
                warehouse_id=try_decode(input.warehouse_id, "Warehouse"),
                counted=input.counted,
                expected_on_hand=input.expected_on_hand,
                reason=input.reason,
                idempotency_key=input.idempotency_key,
                actor_id=actor,
            ),
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
        actor = _actor(info)
        policy = stock.ErrorPolicy(error_policy or stock.ErrorPolicy.REJECT_EVERYTHING)
        requests = [row.to_request() for row in inputs]
        try:
            async with info.context.unit_of_work() as session:
                rows = await stock.bulk_adjust_stock(session, requests, policy, actor_id=actor)
        except stock.BulkRejected as rejected:
            rows = rejected.rows
            for row in rows:
                row.result = None  # rolled back with the rest
        except ServiceError as error:
            return BulkStockPayload(results=[], errors=[UserError.from_service(error)])
        results = [
            BulkStockResult(
                index=row.index,
                stock_level=None if row.result is None else StockLevel.from_row(row.result.level),
                movement=None
                if row.result is None
                else StockMovement.from_row(row.result.movement),
                errors=user_errors(row.errors),
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
        actor = _actor(info)
        result, errors = await run(
            info.context,
            lambda s: stock.transfer_stock(
                s,
                item_id=try_decode(input.item_id, "Item"),
                from_warehouse_id=try_decode(input.from_warehouse_id, "Warehouse"),
                to_warehouse_id=try_decode(input.to_warehouse_id, "Warehouse"),
                quantity=input.quantity,
                reference=input.reference,
                idempotency_key=input.idempotency_key,
                actor_id=actor,
            ),
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
        actor = _actor(info)
        result, errors = await run(
            info.context,
            lambda s: stock.reserve_stock(
                s,
                item_id=try_decode(input.item_id, "Item"),
                warehouse_id=try_decode(input.warehouse_id, "Warehouse"),
                quantity=input.quantity,
                reference=input.reference,
                expires_at=input.expires_at,
                idempotency_key=input.idempotency_key,
                actor_id=actor,
            ),
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
        actor, pk = _actor(info), try_decode(id, "Reservation")
        result, errors = await run(
            info.context, lambda s: stock.release_reservation(s, pk, actor_id=actor)
        )
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
        actor, pk = _actor(info), try_decode(id, "Reservation")
        result, errors = await run(
            info.context, lambda s: stock.fulfill_reservation(s, pk, actor_id=actor)
        )
        return ReservationPayload.of(result, errors)
