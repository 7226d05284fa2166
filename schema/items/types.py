"""The Item type: a stock-keeping unit with its levels, totals and ledger."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import strawberry

from db.models import Category as CategoryRow
from db.models import Item as ItemRow
from db.models import StockLevel as StockLevelRow
from db.stock import queries as stock_queries
from db.stock.expressions import is_low
from db.stock.queries import MovementFilterSpec
from schema.context import Context
from schema.ids import decode_optional
from schema.loaders import Missing
from schema.permissions import IsManager
from schema.relay import After, Connection, First, Node, global_id, page_args, paged

if TYPE_CHECKING:
    from schema.categories import Category
    from schema.stock import StockLevel, StockMovement, StockSnapshot
    from schema.uploads import Image

CategoryRef = Annotated["Category", strawberry.lazy("schema.categories")]
StockLevelRef = Annotated["StockLevel", strawberry.lazy("schema.stock")]
StockMovementRef = Annotated["StockMovement", strawberry.lazy("schema.stock")]
StockSnapshotRef = Annotated["StockSnapshot", strawberry.lazy("schema.stock")]
ImageRef = Annotated["Image", strawberry.lazy("schema.uploads")]

T = TypeVar("T")


def _category_type(row: CategoryRow | None) -> CategoryRef | None:
    from schema.categories import Category

    return None if row is None else Category.from_row(row)


def _level_types(levels: list[StockLevelRow], wanted: int | None) -> list[StockLevelRef]:
    from schema.stock import StockLevel

    return [StockLevel.from_row(lv) for lv in levels if wanted is None or lv.warehouse_id == wanted]


def _sum(levels: list[StockLevelRow], available: bool) -> int:
    return sum(lv.available if available else lv.on_hand for lv in levels)


@strawberry.type(description="A stock-keeping unit: something you count, store and sell.")
class Item(Node):
    id: strawberry.ID = global_id("Item")
    sku: str = strawberry.field(description="Stock-keeping unit code, unique.")
    name: str = strawberry.field(description="Display name.")
    description: str | None = strawberry.field(description="Longer text.")
    unit_price: Decimal = strawberry.field(description="Selling price per unit.")
    reorder_point: int = strawberry.field(
        description="Available units at or below which the item counts as low on stock."
    )
    archived: bool = strawberry.field(description="Archived items are hidden from lists.")
    version: int = strawberry.field(
        description="Increments on every update; pass to `updateItem(expectedVersion:)`."
    )
    created_at: datetime = strawberry.field(description="When it was created (UTC).")
    updated_at: datetime = strawberry.field(description="When it last changed (UTC).")
    pk: strawberry.Private[int]
    category_pk: strawberry.Private[int | None]
    image_pk: strawberry.Private[int | None]
    cost: strawberry.Private[Decimal | None]

    @classmethod
    def from_row(cls, row: ItemRow) -> Item:
        return cls(
            sku=row.sku,
            name=row.name,
            description=row.description,
            unit_price=row.unit_price,
            reorder_point=row.reorder_point,
            archived=row.archived,
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            pk=row.id,
            category_pk=row.category_id,
            image_pk=row.image_id,
            cost=row.unit_cost,
        )

    @strawberry.field(
        description="Purchase cost per unit; MANAGER and above, otherwise null with an error.",
        permission_classes=[IsManager],
    )
    def unit_cost(self) -> Decimal | None:
        return self.cost

    @strawberry.field(description="The category it belongs to.")
    def category(self, info: strawberry.Info[Context]) -> CategoryRef | None:
        # Synchronous when the list resolver prefetched it: an await per field is costly.
        if self.category_pk is None:
            return None
        row = info.context.loaders.category.peek(self.category_pk)
        if isinstance(row, Missing):
            return cast(Any, self._category(info))
        return _category_type(row)

    async def _category(self, info: strawberry.Info[Context]) -> CategoryRef | None:
        assert self.category_pk is not None
        return _category_type(await info.context.loaders.category.load(self.category_pk))

    @strawberry.field(description="Its picture, if one is attached.")
    async def image(self, info: strawberry.Info[Context]) -> ImageRef | None:
        from schema.uploads import Image

        if self.image_pk is None:
            return None
        row = await info.context.loaders.image.load(self.image_pk)
        return None if row is None else Image.from_row(row)

    def _levels(self, info: strawberry.Info[Context]) -> list[StockLevelRow] | Missing:
        return info.context.loaders.stock_levels_by_item.peek(self.pk)

    async def _load_levels(self, info: strawberry.Info[Context]) -> list[StockLevelRow]:
        return await info.context.loaders.stock_levels_by_item.load(self.pk)

    @strawberry.field(description="Stock per warehouse, by warehouse.")
    def stock_levels(
        self,
        info: strawberry.Info[Context],
        warehouse_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only this warehouse.")
        ] = None,
    ) -> list[StockLevelRef]:
        wanted = decode_optional(warehouse_id, "Warehouse")
        levels = self._levels(info)
        if isinstance(levels, Missing):

            async def later() -> list[StockLevelRef]:
                return _level_types(await self._load_levels(info), wanted)

            return cast(Any, later())
        return _level_types(levels, wanted)

    @strawberry.field(description="Units on hand across all warehouses.")
    def total_on_hand(self, info: strawberry.Info[Context]) -> int:
        return self._total(info, lambda levels: _sum(levels, False))

    @strawberry.field(description="Units on hand and not reserved, across all warehouses.")
    def total_available(self, info: strawberry.Info[Context]) -> int:
        return self._total(info, lambda levels: _sum(levels, True))

    @strawberry.field(description="Whether total available is at or below the reorder point.")
    def low_stock(self, info: strawberry.Info[Context]) -> bool:
        return self._total(info, lambda levels: is_low(_sum(levels, True), self.reorder_point))

    def _total(
        self, info: strawberry.Info[Context], compute: Callable[[list[StockLevelRow]], T]
    ) -> T:
        levels = self._levels(info)
        if isinstance(levels, Missing):

            async def later() -> T:
                return compute(await self._load_levels(info))

            return cast(Any, later())
        return compute(levels)

    @strawberry.field(
        description="Units ordered and not yet received on open purchase orders, across all "
        "warehouses."
    )
    async def incoming(self, info: strawberry.Info[Context]) -> int:
        return await info.context.loaders.item_incoming.load(self.pk)

    @strawberry.field(
        description="Its stock per warehouse as it stood at an instant, rebuilt from the "
        "ledger; one entry per level it has today, by warehouse."
    )
    async def stock_at(
        self,
        info: strawberry.Info[Context],
        at: Annotated[datetime, strawberry.argument(description="The instant (UTC).")],
        warehouse_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only this warehouse.")
        ] = None,
    ) -> list[StockSnapshotRef]:
        from schema.stock import StockSnapshot

        wanted = decode_optional(warehouse_id, "Warehouse")
        rows = await info.context.loaders.snapshots_by_item.load((at, self.pk))
        return [
            StockSnapshot.from_row(row)
            for row in rows
            if wanted is None or row.warehouse_id == wanted
        ]

    @strawberry.field(description="Its stock ledger, newest first.")
    async def movements(
        self, info: strawberry.Info[Context], first: First = None, after: After = None
    ) -> Connection[StockMovementRef]:
        from schema.stock import StockMovement

        reader, args = info.context.reader, page_args(first, after)
        spec = MovementFilterSpec(item_id=self.pk)
        return await paged(
            lambda: reader(stock_queries.list_movements, spec, args),
            StockMovement.from_row,
            lambda: reader(stock_queries.count_movements, spec),
        )
