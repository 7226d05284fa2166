"""Live events: stock changes, item changes and low-stock alerts.

Filters run on the event's ids before any database read; each delivered event is re-read
through fresh loaders, so a subscriber sees current rows and its own permissions apply
(``unitCost`` stays MANAGER-only).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from enum import Enum
from typing import Annotated, Any

import strawberry

from db.items import ITEMS_CHANNEL
from db.models import Item as ItemRow
from db.models import StockLevel as StockLevelRow
from db.models import StockMovement as StockMovementRow
from db.models import Warehouse as WarehouseRow
from db.stock import LOW_STOCK_CHANNEL, STOCK_CHANNEL
from schema.context import Context, SubscriberTooSlow
from schema.errors import CodedError
from schema.ids import decode_optional, to_global_id
from schema.items import Item
from schema.permissions import IsViewer
from schema.stock import StockLevel, StockMovement
from schema.warehouses import Warehouse

SLOW_CLOSE_CODE = 4499  # application range: "you fell behind; reconnect"


@strawberry.type(description="A change to one stock level.")
class StockEvent:
    movement: StockMovement | None = strawberry.field(description="The ledger row written.")
    stock_level: StockLevel | None = strawberry.field(description="The level as it is now.")


@strawberry.enum(description="What happened to an item.")
class ItemEventKind(Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    ARCHIVED = "ARCHIVED"
    DELETED = "DELETED"


@strawberry.type(description="A change to an item.")
class ItemEvent:
    kind: ItemEventKind = strawberry.field(description="What happened.")
    item_id: strawberry.ID = strawberry.field(description="The item's ID (also when deleted).")
    item: Item | None = strawberry.field(description="The item now; null once deleted.")


@strawberry.type(description="Available stock fell to or below the item's reorder point.")
class LowStockAlert:
    item: Item = strawberry.field(description="The item.")
    warehouse: Warehouse = strawberry.field(description="Where stock ran low.")
    available: int = strawberry.field(description="Units available after the change.")
    reorder_point: int = strawberry.field(description="The item's reorder point.")


ItemIdArg = Annotated[
    strawberry.ID | None, strawberry.argument(description="Only events of this item.")
]
WarehouseIdArg = Annotated[
    strawberry.ID | None, strawberry.argument(description="Only events in this warehouse.")
]


@asynccontextmanager
async def _events(info: strawberry.Info[Context], channel: str) -> AsyncIterator[Any]:
    """Subscribe within the connection's cap; cut off a subscriber that falls behind."""
    context = info.context
    cap = context.settings.subscription_cap
    if context.active_subscriptions >= cap:
        raise CodedError(f"At most {cap} subscriptions per connection", "RATE_LIMITED")
    context.active_subscriptions += 1
    try:
        async with context.broker.subscribe(channel) as events:
            yield events
    except SubscriberTooSlow:
        socket = context.request
        close = getattr(socket, "close", None)
        if close is not None:
            await close(code=SLOW_CLOSE_CODE, reason="Subscriber fell too far behind")
    finally:
        context.active_subscriptions -= 1


# Loader attribute -> (model, event key) of the rows every subscriber of an event needs.
_ROWS: dict[str, dict[str, tuple[type[Any], str]]] = {
    STOCK_CHANNEL: {
        "movement": (StockMovementRow, "movementId"),
        "stock_level": (StockLevelRow, "stockLevelId"),
        "item": (ItemRow, "itemId"),
        "warehouse": (WarehouseRow, "warehouseId"),
    },
    ITEMS_CHANNEL: {"item": (ItemRow, "itemId")},
    LOW_STOCK_CHANNEL: {"item": (ItemRow, "itemId"), "warehouse": (WarehouseRow, "warehouseId")},
}


async def _read_rows(context: Context, channel: str, event: dict[str, Any]) -> dict[str, Any]:
    async with context.read_factory() as session:
        return {
            name: await session.get(model, event[key])
            for name, (model, key) in _ROWS[channel].items()
        }


async def _fresh_loaders(context: Context, channel: str, event: dict[str, Any]) -> None:
    """Give this subscriber fresh loaders primed with the event's rows.

    The rows are read once per event and process, after the commit, and shared by every
    local subscriber through the delivered message itself; each subscriber still resolves
    fields (and their permissions) with its own context. 1,000 subscribers cost four
    statements per event instead of four thousand.
    """
    shared = event.get("_rows")
    if shared is None:
        shared = asyncio.ensure_future(_read_rows(context, channel, event))
        event["_rows"] = shared
    rows = await asyncio.shield(shared)
    await context.refresh_reads()
    for name, row in rows.items():
        if row is not None:
            getattr(context.loaders, name).prime(row.id, row)


def _matches(event: dict[str, Any], item: int | None, warehouse: int | None) -> bool:
    return (item is None or event.get("itemId") == item) and (
        warehouse is None or event.get("warehouseId") == warehouse
    )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Stock level changes, optionally for one item and/or warehouse.",
        permission_classes=[IsViewer],
    )
    async def stock_changed(
        self,
        info: strawberry.Info[Context],
        item_id: ItemIdArg = None,
        warehouse_id: WarehouseIdArg = None,
    ) -> AsyncGenerator[StockEvent, None]:
        item, warehouse = (
            decode_optional(item_id, "Item"),
            decode_optional(warehouse_id, "Warehouse"),
        )
        async with _events(info, STOCK_CHANNEL) as events:
            async for event in events:
                if not _matches(event, item, warehouse):
                    continue
                context = info.context
                await _fresh_loaders(context, STOCK_CHANNEL, event)
                movement = await context.loaders.movement.load(event["movementId"])
                level = await context.loaders.stock_level.load(event["stockLevelId"])
                yield StockEvent(
                    movement=None if movement is None else StockMovement.from_row(movement),
                    stock_level=None if level is None else StockLevel.from_row(level),
                )
                # the event is resolved: give the connection back to the pool
                await context.reader.reset()

    @strawberry.subscription(
        description="Items created, updated, archived or deleted; optionally one item.",
        permission_classes=[IsViewer],
    )
    async def item_changed(
        self,
        info: strawberry.Info[Context],
        id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only this item.")
        ] = None,
    ) -> AsyncGenerator[ItemEvent, None]:
        wanted = decode_optional(id, "Item")
        async with _events(info, ITEMS_CHANNEL) as events:
            async for event in events:
                if not _matches(event, wanted, None):
                    continue
                context = info.context
                await _fresh_loaders(context, ITEMS_CHANNEL, event)
                row = await context.loaders.item.load(event["itemId"])
                yield ItemEvent(
                    kind=ItemEventKind(event["kind"]),
                    item_id=strawberry.ID(to_global_id("Item", event["itemId"])),
                    item=None if row is None else Item.from_row(row),
                )
                # the event is resolved: give the connection back to the pool
                await context.reader.reset()

    @strawberry.subscription(
        description="Alerts when available stock crosses down to the reorder point.",
        permission_classes=[IsViewer],
    )
    async def low_stock(
        self, info: strawberry.Info[Context], warehouse_id: WarehouseIdArg = None
    ) -> AsyncGenerator[LowStockAlert, None]:
        warehouse = decode_optional(warehouse_id, "Warehouse")
        async with _events(info, LOW_STOCK_CHANNEL) as events:
            async for event in events:
                if not _matches(event, None, warehouse):
                    continue
                context = info.context
                await _fresh_loaders(context, LOW_STOCK_CHANNEL, event)
                item = await context.loaders.item.load(event["itemId"])
                place = await context.loaders.warehouse.load(event["warehouseId"])
                if item is None or place is None:
                    continue
                yield LowStockAlert(
                    item=Item.from_row(item),
                    warehouse=Warehouse.from_row(place),
                    available=event["available"],
                    reorder_point=event["reorderPoint"],
                )
                # the event is resolved: give the connection back to the pool
                await context.reader.reset()
