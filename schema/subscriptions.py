"""Live events: stock changes, item changes and low-stock alerts, resumable by cursor.

Events come from the durable event log through this worker's hub (``schema/fanout.py``):
filters are applied to the event's ids before any database read, and each delivered event is
re-read through fresh loaders, so subscribers see current rows and their role's permissions
apply (``unitCost`` stays MANAGER-only). Every payload carries a ``cursor``; passing it back as
``after`` replays what was missed from the log, then continues live.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from db.eventlog import Delivery, Logged
from db.events import Event, ItemChanged, LowStock, StockChanged, UserChanged
from db.models import Item as ItemRow
from db.models import StockLevel as StockLevelRow
from db.models import StockMovement as StockMovementRow
from db.models import Warehouse as WarehouseRow
from schema.context import Context
from schema.fanout import Build, Topic, subscribe
from schema.ids import decode_optional, to_global_id
from schema.items import Item
from schema.permissions import IsViewer
from schema.stock import StockLevel, StockMovement
from schema.warehouses import Warehouse

SLOW_CLOSE_CODE = 4499  # application range: "you fell behind; reconnect with your cursor"

E = TypeVar("E", StockChanged, ItemChanged, LowStock)
T = TypeVar("T")

CURSOR_DESCRIPTION = "This event's place in the stream: pass it as `after` to resume after it."
COMMITTED_DESCRIPTION = "When the change was committed."


@strawberry.type(description="A change to one stock level.")
class StockEvent:
    movement: StockMovement | None = strawberry.field(description="The ledger row written.")
    stock_level: StockLevel | None = strawberry.field(description="The level as it is now.")
    cursor: str = strawberry.field(description=CURSOR_DESCRIPTION)
    committed_at: datetime = strawberry.field(description=COMMITTED_DESCRIPTION)


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
    cursor: str = strawberry.field(description=CURSOR_DESCRIPTION)
    committed_at: datetime = strawberry.field(description=COMMITTED_DESCRIPTION)


@strawberry.type(description="Available stock fell to or below the item's reorder point.")
class LowStockAlert:
    item: Item = strawberry.field(description="The item.")
    warehouse: Warehouse = strawberry.field(description="Where stock ran low.")
    available: int = strawberry.field(description="Units available after the change.")
    reorder_point: int = strawberry.field(description="The item's reorder point.")
    cursor: str = strawberry.field(description=CURSOR_DESCRIPTION)
    committed_at: datetime = strawberry.field(description=COMMITTED_DESCRIPTION)


ItemIdArg = Annotated[
    strawberry.ID | None, strawberry.argument(description="Only events of this item.")
]
WarehouseIdArg = Annotated[
    strawberry.ID | None, strawberry.argument(description="Only events in this warehouse.")
]
AfterArg = Annotated[
    str | None,
    strawberry.argument(
        description=(
            "Resume after this event's `cursor`: the events since are replayed from the log, "
            "then live ones follow, none missed or repeated. A cursor older than the log's "
            "retention is refused with CURSOR_EXPIRED."
        )
    ),
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
    return []


class SharedReads:
    """The rows of one event, read once per process for every group and replay that needs
    them (keyed by the event's id in the log); bounded."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._reads: OrderedDict[int, asyncio.Future[dict[str, Any]]] = OrderedDict()

    def get(
        self, event_id: int, read: Callable[[], Awaitable[dict[str, Any]]]
    ) -> asyncio.Future[dict[str, Any]]:
        future = self._reads.get(event_id)
        if future is None or (future.done() and future.exception() is not None):
            future = asyncio.ensure_future(read())
            self._reads[event_id] = future
            while len(self._reads) > self._size:
                self._reads.popitem(last=False)
        return future


_SHARED = SharedReads()


async def _read(context: Context, needed: Needed) -> dict[str, Any]:
    session: AsyncSession
    async with context.services.read_factory() as session:
        return {name: await session.get(model, pk) for name, model, pk in needed}


async def _prime(context: Context, logged: Logged) -> None:
    """Fresh loaders for this execution, primed with the event's rows (read once)."""
    needed = _needed(logged.event)
    rows = await asyncio.shield(_SHARED.get(logged.id, lambda: _read(context, needed)))
    await context.refresh_reads()
    for name, row in rows.items():
        if row is not None:
            getattr(context.loaders, name).prime(row.id, row)


def _primed(build: Callable[[Context, Delivery, E], Awaitable[T | None]]) -> Build[T]:
    async def run(context: Context, delivery: Delivery) -> T | None:
        await _prime(context, delivery.logged)
        event: Any = delivery.logged.event
        return await build(context, delivery, event)

    return run


@_primed
async def _stock_event(context: Context, delivery: Delivery, event: StockChanged) -> StockEvent:
    movement = await context.loaders.movement.load(event.movement_id)
    level = await context.loaders.stock_level.load(event.stock_level_id)
    return StockEvent(
        movement=None if movement is None else StockMovement.from_row(movement),
        stock_level=None if level is None else StockLevel.from_row(level),
        cursor=delivery.cursor,
        committed_at=delivery.logged.committed_at,
    )


@_primed
async def _item_event(context: Context, delivery: Delivery, event: ItemChanged) -> ItemEvent:
    row = await context.loaders.item.load(event.item_id)
    return ItemEvent(
        kind=ItemEventKind(event.kind.value),
        item_id=strawberry.ID(to_global_id("Item", event.item_id)),
        item=None if row is None else Item.from_row(row),
        cursor=delivery.cursor,
        committed_at=delivery.logged.committed_at,
    )


@_primed
async def _low_stock_alert(
    context: Context, delivery: Delivery, event: LowStock
) -> LowStockAlert | None:
    item = await context.loaders.item.load(event.item_id)
    place = await context.loaders.warehouse.load(event.warehouse_id)
    if item is None or place is None:
        return None
    return LowStockAlert(
        item=Item.from_row(item),
        warehouse=Warehouse.from_row(place),
        available=event.available,
        reorder_point=event.reorder_point,
        cursor=delivery.cursor,
        committed_at=delivery.logged.committed_at,
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
        after: AfterArg = None,
    ) -> AsyncGenerator[StockEvent, None]:
        topic = Topic(
            StockChanged,
            item_id=decode_optional(item_id, "Item"),
            warehouse_id=decode_optional(warehouse_id, "Warehouse"),
        )
        return await subscribe(info, topic, after, _stock_event)

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
        after: AfterArg = None,
    ) -> AsyncGenerator[ItemEvent, None]:
        topic = Topic(ItemChanged, item_id=decode_optional(id, "Item"))
        return await subscribe(info, topic, after, _item_event)

    @strawberry.subscription(
        description="Alerts when available stock crosses down to the reorder point.",
        permission_classes=[IsViewer],
    )
    async def low_stock(
        self,
        info: strawberry.Info[Context],
        warehouse_id: WarehouseIdArg = None,
        after: AfterArg = None,
    ) -> AsyncGenerator[LowStockAlert, None]:
        topic = Topic(LowStock, warehouse_id=decode_optional(warehouse_id, "Warehouse"))
        return await subscribe(info, topic, after, _low_stock_alert)
