"""Live events: stock changes, item changes and low-stock alerts.

Filters run on the event's ids before any database read; each delivered event is re-read
through fresh loaders, so a subscriber sees current rows and its own permissions apply
(``unitCost`` stays MANAGER-only).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing, asynccontextmanager
from enum import Enum
from typing import Annotated, Any, TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from db.events import (
    Event,
    EventDecodeError,
    ItemChanged,
    LowStock,
    StockChanged,
    UserChanged,
    decode,
)
from db.models import Item as ItemRow
from db.models import StockLevel as StockLevelRow
from db.models import StockMovement as StockMovementRow
from db.models import Warehouse as WarehouseRow
from schema.context import Context, SubscriberTooSlow
from schema.errors import CodedError
from schema.ids import decode_optional, to_global_id
from schema.items import Item
from schema.permissions import IsViewer
from schema.stock import StockLevel, StockMovement
from schema.warehouses import Warehouse

log = logging.getLogger("stockroom.subscriptions")

SLOW_CLOSE_CODE = 4499  # application range: "you fell behind; reconnect"

E = TypeVar("E", StockChanged, ItemChanged, LowStock)
T = TypeVar("T")


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

# (loader attribute, model, primary key) of the rows every subscriber of an event needs.
Needed = list[tuple[str, type[Any], int]]


def _needed(event: Event) -> Needed:
    match event:
        case StockChanged():
            return [
                ("movement", StockMovementRow, event.movement_id),
                ("stock_level", StockLevelRow, event.stock_level_id),
                ("item", ItemRow, event.item_id),
                ("warehouse", WarehouseRow, event.warehouse_id),
            ]
        case ItemChanged():
            return [("item", ItemRow, event.item_id)]
        case LowStock():
            return [
                ("item", ItemRow, event.item_id),
                ("warehouse", WarehouseRow, event.warehouse_id),
            ]
        case UserChanged():
            return []  # no subscription listens on it


class SharedReads:
    """The rows of one delivered message, read once per process for all its subscribers.

    Keyed by the message's identity (every local subscriber receives the same object) and
    holding the message, so an id is never reused while its entry lives; bounded.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._reads: OrderedDict[int, tuple[Mapping[str, Any], asyncio.Future[Any]]] = OrderedDict()

    def get(
        self, message: Mapping[str, Any], read: Callable[[], Awaitable[T]]
    ) -> asyncio.Future[T]:
        entry = self._reads.get(id(message))
        if entry is None:
            entry = (message, asyncio.ensure_future(read()))
            self._reads[id(message)] = entry
            while len(self._reads) > self._size:
                self._reads.popitem(last=False)
        return entry[1]


_SHARED = SharedReads()


async def _read(context: Context, needed: Needed) -> dict[str, Any]:
    session: AsyncSession
    async with context.services.read_factory() as session:
        return {name: await session.get(model, pk) for name, model, pk in needed}


async def _prime(context: Context, message: Mapping[str, Any], event: Event) -> None:
    """Fresh loaders for this subscriber, primed with the event's rows (read once)."""
    needed = _needed(event)
    rows = await asyncio.shield(_SHARED.get(message, lambda: _read(context, needed)))
    await context.refresh_reads()
    for name, row in rows.items():
        if row is not None:
            getattr(context.loaders, name).prime(row.id, row)


@asynccontextmanager
async def _subscribed(info: strawberry.Info[Context], channel: str) -> AsyncIterator[Any]:
    """Subscribe within the connection's cap; cut off a subscriber that falls behind."""
    context = info.context
    cap = context.settings.subscription_cap
    if context.active_subscriptions >= cap:
        raise CodedError(f"At most {cap} subscriptions per connection", "RATE_LIMITED")
    context.active_subscriptions += 1
    try:
        async with context.services.broker.subscribe(channel) as messages:
            yield messages
    except SubscriberTooSlow:
        close = getattr(context.request, "close", None)
        if close is not None:
            await close(code=SLOW_CLOSE_CODE, reason="Subscriber fell too far behind")
    finally:
        context.active_subscriptions -= 1


async def _stream(
    info: strawberry.Info[Context],
    event_type: type[E],
    wanted: Callable[[E], bool],
    build: Callable[[Context, E], Awaitable[T | None]],
) -> AsyncGenerator[T, None]:
    """The loop every subscription shares: filter on ids, read once, resolve, yield."""
    async with _subscribed(info, event_type.channel) as messages:
        async for message in messages:
            try:
                event = decode(event_type.channel, message)
            except EventDecodeError:
                log.warning("ignored a malformed %s event", event_type.channel)
                continue
            assert isinstance(event, event_type)
            if not wanted(event):
                continue
            context = info.context
            await _prime(context, message, event)
            value = await build(context, event)
            if value is not None:
                yield value
            # the event is resolved: give the connection back to the pool
            await context.reader.reset()


def _on(item: int | None, warehouse: int | None) -> Callable[[Any], bool]:
    def wanted(event: Any) -> bool:
        return (item is None or event.item_id == item) and (
            warehouse is None or event.warehouse_id == warehouse
        )

    return wanted


async def _stock_event(context: Context, event: StockChanged) -> StockEvent:
    movement = await context.loaders.movement.load(event.movement_id)
    level = await context.loaders.stock_level.load(event.stock_level_id)
    return StockEvent(
        movement=None if movement is None else StockMovement.from_row(movement),
        stock_level=None if level is None else StockLevel.from_row(level),
    )


async def _item_event(context: Context, event: ItemChanged) -> ItemEvent:
    row = await context.loaders.item.load(event.item_id)
    return ItemEvent(
        kind=ItemEventKind(event.kind.value),
        item_id=strawberry.ID(to_global_id("Item", event.item_id)),
        item=None if row is None else Item.from_row(row),
    )


async def _low_stock_alert(context: Context, event: LowStock) -> LowStockAlert | None:
    item = await context.loaders.item.load(event.item_id)
    place = await context.loaders.warehouse.load(event.warehouse_id)
    if item is None or place is None:
        return None
    return LowStockAlert(
        item=Item.from_row(item),
        warehouse=Warehouse.from_row(place),
        available=event.available,
        reorder_point=event.reorder_point,
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
        wanted = _on(decode_optional(item_id, "Item"), decode_optional(warehouse_id, "Warehouse"))
        async with aclosing(_stream(info, StockChanged, wanted, _stock_event)) as events:
            async for event in events:
                yield event

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
        item = decode_optional(id, "Item")

        def wanted(event: ItemChanged) -> bool:
            return item is None or event.item_id == item

        async with aclosing(_stream(info, ItemChanged, wanted, _item_event)) as events:
            async for event in events:
                yield event

    @strawberry.subscription(
        description="Alerts when available stock crosses down to the reorder point.",
        permission_classes=[IsViewer],
    )
    async def low_stock(
        self, info: strawberry.Info[Context], warehouse_id: WarehouseIdArg = None
    ) -> AsyncGenerator[LowStockAlert, None]:
        wanted = _on(None, decode_optional(warehouse_id, "Warehouse"))
        async with aclosing(_stream(info, LowStock, wanted, _low_stock_alert)) as alerts:
            async for alert in alerts:
                yield alert
