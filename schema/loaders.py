"""Per-request dataloaders, one per key shape, all reading through the request's Reader."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any, Generic, TypeVar

from aiodataloader import DataLoader
from sqlalchemy.ext.asyncio import AsyncSession

from db import categories, items, uploads, users, warehouses
from db.models import (
    Category,
    Image,
    Item,
    PurchaseOrder,
    PurchaseOrderLine,
    Reservation,
    StockLevel,
    StockMovement,
    Transfer,
    TransferLine,
    User,
    Warehouse,
)
from db.session import Reader
from db.stock import history, pipeline
from db.stock import queries as stock_queries

K = TypeVar("K")
V = TypeVar("V")

class Missing:
    """Marker: the loader has not got this key yet."""


MISSING = Missing()

BatchFn = Callable[[AsyncSession, Sequence[K]], Awaitable[list[V]]]


class Loader(Generic[K, V]):
    """A typed DataLoader whose batches run through the Reader, one at a time.

    The DataLoader is built on first use: a request touches two or three of the dozen
    loaders, and building the rest cost more than some whole requests' SQL.
    """

    __slots__ = ("_cache", "_fn", "_loader_instance", "_reader")

    def __init__(self, reader: Reader, fn: BatchFn[K, V]) -> None:
        self._reader = reader
        self._fn = fn
        self._cache: dict[Any, Any] = {}
        self._loader_instance: DataLoader[K, V] | None = None

    async def _batch(self, keys: list[K]) -> list[V]:
        return await self._reader(self._fn, keys)

    @property
    def _loader(self) -> DataLoader[K, V]:
        if self._loader_instance is None:
            self._loader_instance = DataLoader(batch_load_fn=self._batch, cache_map=self._cache)
        return self._loader_instance

    async def load(self, key: K) -> V:
        result: V = await self._loader.load(key)
        return result

    async def load_many(self, keys: Sequence[K]) -> list[V]:
        result: list[V] = await self._loader.load_many(list(keys))
        return result

    def prime(self, key: K, value: V) -> None:
        self._loader.prime(key, value)

    def peek(self, key: K) -> V | Missing:
        """The value if already loaded, without awaiting: lets resolvers stay synchronous."""
        future = self._cache.get(key)
        if future is None or not future.done() or future.cancelled() or future.exception():
            return MISSING
        value: V = future.result()
        return value

    def clear_all(self) -> None:
        self._cache.clear()


class Loaders:
    """Built with each request's (or each subscription event's) Context; never shared."""

    def __init__(self, reader: Reader) -> None:
        self._reader = reader

    # Each built on first use: a request touches one or two of them.
    @cached_property
    def item(self) -> Loader[int, Item | None]:
        return Loader(self._reader, items.items_by_id)

    @cached_property
    def item_by_sku(self) -> Loader[str, Item | None]:
        return Loader(self._reader, items.items_by_sku)

    @cached_property
    def category(self) -> Loader[int, Category | None]:
        return Loader(self._reader, categories.categories_by_id)

    @cached_property
    def category_children(self) -> Loader[int, list[Category]]:
        return Loader(self._reader, categories.children_by_parent_id)

    @cached_property
    def warehouse(self) -> Loader[int, Warehouse | None]:
        return Loader(self._reader, warehouses.warehouses_by_id)

    @cached_property
    def stock_level(self) -> Loader[int, StockLevel | None]:
        return Loader(self._reader, stock_queries.levels_by_id)

    @cached_property
    def stock_levels_by_item(self) -> Loader[int, list[StockLevel]]:
        return Loader(self._reader, stock_queries.levels_by_item_id)

    @cached_property
    def movement(self) -> Loader[int, StockMovement | None]:
        return Loader(self._reader, stock_queries.movements_by_id)

    @cached_property
    def reservation(self) -> Loader[int, Reservation | None]:
        return Loader(self._reader, stock_queries.reservations_by_id)

    @cached_property
    def on_its_way(self) -> Loader[pipeline.LevelKey, pipeline.OnItsWay]:
        return Loader(self._reader, pipeline.on_its_way)

    @cached_property
    def item_incoming(self) -> Loader[int, int]:
        return Loader(self._reader, pipeline.incoming_by_item)

    @cached_property
    def snapshots_by_item(self) -> Loader[tuple[datetime, int], list[history.Snapshot]]:
        return Loader(self._reader, history.snapshots_by_item)

    @cached_property
    def purchase_order(self) -> Loader[int, PurchaseOrder | None]:
        return Loader(self._reader, pipeline.purchase_orders_by_id)

    @cached_property
    def purchase_order_lines(self) -> Loader[int, list[PurchaseOrderLine]]:
        return Loader(self._reader, pipeline.lines_by_purchase_order_id)

    @cached_property
    def transfer(self) -> Loader[int, Transfer | None]:
        return Loader(self._reader, pipeline.transfers_by_id)

    @cached_property
    def transfer_lines(self) -> Loader[int, list[TransferLine]]:
        return Loader(self._reader, pipeline.lines_by_transfer_id)

    @cached_property
    def image(self) -> Loader[int, Image | None]:
        return Loader(self._reader, uploads.images_by_id)

    @cached_property
    def user(self) -> Loader[int, User | None]:
        return Loader(self._reader, users.users_by_id)

    def clear_all(self) -> None:
        """Forget cached rows, e.g. after a mutation committed new values."""
        for loader in vars(self).values():
            if isinstance(loader, Loader):
                loader.clear_all()

    async def levels_with_warehouses(self, item_ids: Sequence[int]) -> None:
        """Load many items' levels and their warehouses with one statement, into the
        `stock_levels_by_item` and `warehouse` loaders."""
        wanted = [i for i in item_ids if isinstance(self.stock_levels_by_item.peek(i), Missing)]
        if not wanted:
            return
        groups, found = await self._reader(stock_queries.levels_with_warehouses_by_item_id, wanted)
        for item_id, group in zip(wanted, groups, strict=True):
            self.stock_levels_by_item.prime(item_id, group)
        for warehouse in found:
            self.warehouse.prime(warehouse.id, warehouse)

    def prime_item(self, row: Item) -> None:
        self.item.prime(row.id, row)
