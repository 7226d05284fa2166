"""Stock types: levels, ledger rows, reservations, snapshots and the inventory summary."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, cast

import strawberry

from db.models import MovementKind as MovementKindEnum
from db.models import Reservation as ReservationRow
from db.models import ReservationStatus as ReservationStatusEnum
from db.models import StockLevel as StockLevelRow
from db.models import StockMovement as StockMovementRow
from db.models import StockState as StockStateEnum
from db.stock.history import Snapshot
from schema.context import Context
from schema.errors import CodedError
from schema.loaders import Missing
from schema.relay import Node, global_id

if TYPE_CHECKING:
    from schema.items import Item
    from schema.users import User
    from schema.warehouses import Warehouse

ItemRef = Annotated["Item", strawberry.lazy("schema.items")]
WarehouseRef = Annotated["Warehouse", strawberry.lazy("schema.warehouses")]
UserRef = Annotated["User", strawberry.lazy("schema.users")]

strawberry.enum(MovementKindEnum, description="What a ledger row records.")
strawberry.enum(ReservationStatusEnum, description="Life cycle of a reservation.")
strawberry.enum(StockStateEnum, description="A state on-hand units can be moved into or out of.")
MovementKind: TypeAlias = MovementKindEnum
ReservationStatus: TypeAlias = ReservationStatusEnum
StockState: TypeAlias = StockStateEnum


def _missing(what: str) -> CodedError:
    # A row's foreign key points at something that vanished: a data bug, not client error.
    return CodedError(f"{what} not found", "INTERNAL_SERVER_ERROR")


async def item_of(info: strawberry.Info[Context], pk: int) -> Item:
    """The Item a row points at, through the request's loader."""
    from schema.items import Item

    row = await info.context.loaders.item.load(pk)
    if row is None:
        raise _missing("Item")
    return Item.from_row(row)


async def warehouse_of(info: strawberry.Info[Context], pk: int) -> Warehouse:
    """The Warehouse a row points at, through the request's loader."""
    from schema.warehouses import Warehouse

    row = await info.context.loaders.warehouse.load(pk)
    if row is None:
        raise _missing("Warehouse")
    return Warehouse.from_row(row)


@strawberry.type(description="How many units of one item one warehouse holds, and in which state.")
class StockLevel(Node):
    id: strawberry.ID = global_id("StockLevel")
    on_hand: int = strawberry.field(
        description="Units physically present, whatever their state (reserved, damaged ...)."
    )
    reserved: int = strawberry.field(description="Units promised to active reservations.")
    damaged: int = strawberry.field(description="Units on hand that are damaged.")
    quality_control: int = strawberry.field(description="Units on hand held for inspection.")
    safety_stock: int = strawberry.field(
        description="Units kept back from being promised; set with `setSafetyStock`."
    )
    available: int = strawberry.field(
        description="Units free to promise or ship: on hand less reserved, damaged, quality "
        "control and safety stock; never negative."
    )
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
            damaged=row.damaged,
            quality_control=row.quality_control,
            safety_stock=row.safety_stock,
            available=row.available,
            updated_at=row.updated_at,
            item_pk=row.item_id,
            warehouse_pk=row.warehouse_id,
        )

    @strawberry.field(
        description="Units ordered and not yet received on open purchase orders for this "
        "warehouse."
    )
    async def incoming(self, info: strawberry.Info[Context]) -> int:
        way = await info.context.loaders.on_its_way.load((self.item_pk, self.warehouse_pk))
        return way.incoming

    @strawberry.field(
        description="Units shipped to this warehouse on transfers not yet received."
    )
    async def in_transit(self, info: strawberry.Info[Context]) -> int:
        way = await info.context.loaders.on_its_way.load((self.item_pk, self.warehouse_pk))
        return way.in_transit

    @strawberry.field(description="The item.")
    def item(self, info: strawberry.Info[Context]) -> ItemRef:
        from schema.items import Item

        row = info.context.loaders.item.peek(self.item_pk)
        if isinstance(row, Missing) or row is None:
            return cast(Any, item_of(info, self.item_pk))
        return Item.from_row(row)

    @strawberry.field(description="The warehouse.")
    def warehouse(self, info: strawberry.Info[Context]) -> WarehouseRef:
        # Synchronous when already loaded (the usual case: a handful of warehouses).
        from schema.warehouses import Warehouse

        row = info.context.loaders.warehouse.peek(self.warehouse_pk)
        if isinstance(row, Missing) or row is None:
            return cast(Any, warehouse_of(info, self.warehouse_pk))
        return Warehouse.from_row(row)


@strawberry.type(description="One row of the stock ledger: a change to one stock level.")
class StockMovement(Node):
    id: strawberry.ID = global_id("StockMovement")
    kind: MovementKind = strawberry.field(description="What happened.")
    delta: int = strawberry.field(
        description="Change in on-hand units (reserved units for RESERVATION/RELEASE, units "
        "moved for STATE_CHANGE, safety stock for SAFETY_STOCK)."
    )
    on_hand_after: int = strawberry.field(description="On-hand units right after.")
    reserved_after: int = strawberry.field(description="Reserved units right after.")
    damaged_after: int = strawberry.field(description="Damaged units right after.")
    quality_control_after: int = strawberry.field(
        description="Units in quality control right after."
    )
    safety_stock_after: int = strawberry.field(description="Safety stock right after.")
    from_state: StockState | None = strawberry.field(
        description="STATE_CHANGE: the state the units left."
    )
    to_state: StockState | None = strawberry.field(
        description="STATE_CHANGE: the state the units entered."
    )
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
            damaged_after=row.damaged_after,
            quality_control_after=row.quality_control_after,
            safety_stock_after=row.safety_stock_after,
            from_state=row.from_state,
            to_state=row.to_state,
            reason=row.reason,
            reference=row.reference,
            created_at=row.created_at,
            item_pk=row.item_id,
            warehouse_pk=row.warehouse_id,
            actor_pk=row.actor_id,
        )

    @strawberry.field(description="The item.")
    async def item(self, info: strawberry.Info[Context]) -> ItemRef:
        return await item_of(info, self.item_pk)

    @strawberry.field(description="The warehouse.")
    async def warehouse(self, info: strawberry.Info[Context]) -> WarehouseRef:
        return await warehouse_of(info, self.warehouse_pk)

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
        return await item_of(info, self.item_pk)

    @strawberry.field(description="The warehouse.")
    async def warehouse(self, info: strawberry.Info[Context]) -> WarehouseRef:
        return await warehouse_of(info, self.warehouse_pk)


@strawberry.type(description="One stock level as it stood at an instant, rebuilt from the ledger.")
class StockSnapshot:
    on_hand: int = strawberry.field(description="Units on hand then.")
    reserved: int = strawberry.field(description="Units reserved then.")
    damaged: int = strawberry.field(description="Units damaged then.")
    quality_control: int = strawberry.field(description="Units in quality control then.")
    safety_stock: int = strawberry.field(description="Safety stock then.")
    available: int = strawberry.field(description="Units available then.")
    item_pk: strawberry.Private[int]
    warehouse_pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: Snapshot) -> StockSnapshot:
        return cls(
            on_hand=row.on_hand,
            reserved=row.reserved,
            damaged=row.damaged,
            quality_control=row.quality_control,
            safety_stock=row.safety_stock,
            available=row.available,
            item_pk=row.item_id,
            warehouse_pk=row.warehouse_id,
        )

    @strawberry.field(description="The warehouse.")
    async def warehouse(self, info: strawberry.Info[Context]) -> WarehouseRef:
        return await warehouse_of(info, self.warehouse_pk)

    @strawberry.field(description="The item.")
    async def item(self, info: strawberry.Info[Context]) -> ItemRef:
        return await item_of(info, self.item_pk)


@strawberry.type(description="Totals over live items, for one warehouse or all.")
class InventorySummary:
    item_count: int = strawberry.field(description="Live items counted.")
    total_on_hand: int = strawberry.field(description="Units on hand.")
    total_value: Decimal = strawberry.field(description="Sum of on-hand units times unit cost.")
    low_stock_count: int = strawberry.field(description="Items at or below reorder point.")
