"""Stock types (levels, ledger, reservations, summary) and their queries."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, TypeAlias

import strawberry

from db import stock_queries
from db.models import MovementKind as MovementKindEnum
from db.models import Reservation as ReservationRow
from db.models import ReservationStatus as ReservationStatusEnum
from db.models import StockLevel as StockLevelRow
from db.models import StockMovement as StockMovementRow
from schema.context import Context
from schema.errors import CodedError
from schema.ids import decode_optional, to_global_id
from schema.permissions import IsViewer
from schema.relay import After, Before, Connection, First, Last, Node, page_args, paged

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
    id: strawberry.ID = strawberry.field(description="Global ID.")
    on_hand: int = strawberry.field(description="Units physically present.")
    reserved: int = strawberry.field(description="Units promised to active reservations.")
    available: int = strawberry.field(description="onHand - reserved: units free to promise.")
    updated_at: datetime = strawberry.field(description="When it last changed (UTC).")
    item_pk: strawberry.Private[int]
    warehouse_pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: StockLevelRow) -> StockLevel:
        return cls(
            id=strawberry.ID(to_global_id("StockLevel", row.id)),
            on_hand=row.on_hand,
            reserved=row.reserved,
            available=row.on_hand - row.reserved,
            updated_at=row.updated_at,
            item_pk=row.item_id,
            warehouse_pk=row.warehouse_id,
        )

    @strawberry.field(description="The item.")
    async def item(self, info: strawberry.Info[Context]) -> ItemRef:
        return await _item(info, self.item_pk)

    @strawberry.field(description="The warehouse.")
    async def warehouse(self, info: strawberry.Info[Context]) -> WarehouseRef:
        return await _warehouse(info, self.warehouse_pk)


@strawberry.type(description="One row of the stock ledger: a change to one stock level.")
class StockMovement(Node):
    id: strawberry.ID = strawberry.field(description="Global ID.")
    kind: MovementKind = strawberry.field(description="What happened.")
    delta: int = strawberry.field(
        description="Change in on-hand units (reserved units for RESERVATION/RELEASE)."
    )
    on_hand_after: int = strawberry.field(description="On-hand units right after.")
    reserved_after: int = strawberry.field(description="Reserved units right after.")
    reason: str | None = strawberry.field(description="Why, in words.")
    reference: str | None = strawberry.field(description="External reference (order, PO).")
    created_at: datetime = strawberry.field(description="When (UTC).")
    item_pk: strawberry.Private[int]
    warehouse_pk: strawberry.Private[int]
    actor_pk: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: StockMovementRow) -> StockMovement:
        return cls(
            id=strawberry.ID(to_global_id("StockMovement", row.id)),
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
    id: strawberry.ID = strawberry.field(description="Global ID.")
    quantity: int = strawberry.field(description="Units reserved.")
    status: ReservationStatus = strawberry.field(description="Where it is in its life cycle.")
    reference: str | None = strawberry.field(description="External reference (order).")
    expires_at: datetime | None = strawberry.field(
        description="When an ACTIVE reservation releases itself (UTC)."
    )
    created_at: datetime = strawberry.field(description="When it was made (UTC).")
    item_pk: strawberry.Private[int]
    warehouse_pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: ReservationRow) -> Reservation:
        return cls(
            id=strawberry.ID(to_global_id("Reservation", row.id)),
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
