"""Item type, its filter and order inputs, and item queries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, TypeVar, cast

import strawberry

from db import items, stock_queries
from db.items import ItemFilterSpec, ItemOrderSpec, ItemSort
from db.models import Category as CategoryRow
from db.models import Item as ItemRow
from db.models import StockLevel as StockLevelRow
from schema.context import Context
from schema.errors import UserError, bad_input
from schema.ids import decode_id, decode_optional, try_decode
from schema.loaders import Missing
from schema.mutations import DeletePayload, run
from schema.permissions import IsManager, IsViewer
from schema.relay import (
    After,
    Before,
    Connection,
    First,
    Last,
    Node,
    global_id,
    page_args,
    paged,
)
from schema.selection import selection_of

if TYPE_CHECKING:
    from schema.categories import Category
    from schema.stock import StockLevel, StockMovement
    from schema.uploads import Image

CategoryRef = Annotated["Category", strawberry.lazy("schema.categories")]
StockLevelRef = Annotated["StockLevel", strawberry.lazy("schema.stock")]
StockMovementRef = Annotated["StockMovement", strawberry.lazy("schema.stock")]
ImageRef = Annotated["Image", strawberry.lazy("schema.uploads")]

strawberry.enum(ItemSort, name="ItemOrderField", description="What to sort items by.")
ItemOrderField: TypeAlias = ItemSort


@strawberry.enum(description="Sort direction.")
class OrderDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.input(description="Narrow the item list; all given conditions must hold.")
class ItemFilter:
    search: str | None = strawberry.field(
        default=None, description="Case-insensitive substring of the name or SKU."
    )
    category_id: strawberry.ID | None = strawberry.field(
        default=None, description="Items in this category or any category below it."
    )
    warehouse_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Items stocked in this warehouse; stock conditions then count only it.",
    )
    low_stock: bool | None = strawberry.field(
        default=None, description="Available at or below the reorder point (or above: false)."
    )
    archived: bool | None = strawberry.field(
        default=None,
        description="true: only archived items; false or absent: only live ones.",
    )
    available_at_least: int | None = strawberry.field(
        default=None, description="Available units (summed) at least this."
    )
    available_at_most: int | None = strawberry.field(
        default=None, description="Available units (summed) at most this."
    )

    def to_spec(self) -> ItemFilterSpec:
        return ItemFilterSpec(
            search=self.search,
            category_id=decode_optional(self.category_id, "Category"),
            warehouse_id=decode_optional(self.warehouse_id, "Warehouse"),
            low_stock=self.low_stock,
            archived=bool(self.archived),
            available_at_least=self.available_at_least,
            available_at_most=self.available_at_most,
        )


@strawberry.input(description="Sort order of the item list; ties break on the ID.")
class ItemOrder:
    field: ItemOrderField = strawberry.field(description="What to sort by.")
    direction: OrderDirection = strawberry.field(description="Ascending or descending.")

    def to_spec(self) -> ItemOrderSpec:
        return ItemOrderSpec(
            field=ItemSort(self.field), descending=self.direction is OrderDirection.DESC
        )


T = TypeVar("T")


def _category_type(row: CategoryRow | None) -> CategoryRef | None:
    from schema.categories import Category

    return None if row is None else Category.from_row(row)


def _level_types(levels: list[StockLevelRow], wanted: int | None) -> list[StockLevelRef]:
    from schema.stock import StockLevel

    return [StockLevel.from_row(lv) for lv in levels if wanted is None or lv.warehouse_id == wanted]


def _sum(levels: list[StockLevelRow], available: bool) -> int:
    return sum(lv.on_hand - lv.reserved if available else lv.on_hand for lv in levels)


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
        return self._total(info, lambda levels: _sum(levels, True) <= self.reorder_point)

    def _total(
        self, info: strawberry.Info[Context], compute: Callable[[list[StockLevelRow]], T]
    ) -> T:
        levels = self._levels(info)
        if isinstance(levels, Missing):

            async def later() -> T:
                return compute(await self._load_levels(info))

            return cast(Any, later())
        return compute(levels)

    @strawberry.field(description="Its stock ledger, newest first.")
    async def movements(
        self, info: strawberry.Info[Context], first: First = None, after: After = None
    ) -> Connection[StockMovementRef]:
        from schema.stock import StockMovement

        reader, args = info.context.reader, page_args(first, after)
        spec = stock_queries.MovementFilterSpec(item_id=self.pk)
        return await paged(
            lambda: reader(stock_queries.list_movements, spec, args),
            StockMovement.from_row,
            lambda: reader(stock_queries.count_movements, spec),
        )


@strawberry.type
class ItemQuery:
    @strawberry.field(
        description="One item by ID or by SKU (give exactly one).", permission_classes=[IsViewer]
    )
    async def item(
        self,
        info: strawberry.Info[Context],
        id: Annotated[strawberry.ID | None, strawberry.argument(description="Its ID.")] = None,
        sku: Annotated[str | None, strawberry.argument(description="Its SKU.")] = None,
    ) -> Item | None:
        if (id is None) == (sku is None):
            raise bad_input("Pass exactly one of `id` and `sku`")
        loaders = info.context.loaders
        if id is not None:
            row = await loaders.item.load(decode_id(id, "Item"))
        else:
            assert sku is not None
            row = await loaders.item_by_sku.load(sku)
        return None if row is None else Item.from_row(row)

    @strawberry.field(
        description="Items, filtered and sorted, as a cursor connection.",
        permission_classes=[IsViewer],
    )
    async def items(
        self,
        info: strawberry.Info[Context],
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Annotated[
            ItemFilter | None, strawberry.argument(description="Conditions to match.")
        ] = None,
        order_by: Annotated[
            ItemOrder | None, strawberry.argument(description="Sort order (default: NAME ASC).")
        ] = None,
    ) -> Connection[Item]:
        reader, args = info.context.reader, page_args(first, after, last, before)
        spec = filter.to_spec() if filter is not None else ItemFilterSpec()
        order = order_by.to_spec() if order_by is not None else ItemOrderSpec()
        loaders = info.context.loaders

        def convert(row: ItemRow) -> Item:
            loaders.prime_item(row)
            return Item.from_row(row)

        return await paged(
            lambda: reader(items.list_items, spec, order, args),
            convert,
            lambda: reader(items.count_items, spec),
            prefetch=lambda rows: prefetch_items(info, rows),
        )


# Item fields answered from the item's stock levels.
LEVEL_FIELDS = ("stockLevels", "totalOnHand", "totalAvailable", "lowStock")


async def prefetch_items(info: strawberry.Info[Context], rows: list[ItemRow]) -> None:
    """One batch per relation the page's Item nodes select, before any item resolves."""
    nodes, loaders = selection_of(info).below("edges", "node"), info.context.loaders
    if any(node.has("category") for node in nodes):
        await loaders.category.load_many(list({r.category_id for r in rows if r.category_id}))
    if any(node.has(name) for node in nodes for name in LEVEL_FIELDS):
        # Their warehouses come in the same statement only when the levels select them.
        if any(node.has("stockLevels", "warehouse") for node in nodes):
            await loaders.levels_with_warehouses([r.id for r in rows])
        else:
            await loaders.stock_levels_by_item.load_many([r.id for r in rows])


# ---------------------------------------------------------------- mutations


@strawberry.input(description="A new item.")
class CreateItemInput:
    sku: str = strawberry.field(description="Stock-keeping unit code, unique.")
    name: str = strawberry.field(description="Display name.")
    unit_price: Decimal = strawberry.field(description="Selling price per unit (2 decimals).")
    description: str | None = strawberry.field(default=None, description="Longer text.")
    category_id: strawberry.ID | None = strawberry.field(default=None, description="Category.")
    unit_cost: Decimal | None = strawberry.field(default=None, description="Purchase cost.")
    reorder_point: int | None = strawberry.field(
        default=None, description="Low-stock threshold (default 0)."
    )


@strawberry.input(description="Changes to an item; fields left out keep their value.")
class UpdateItemInput:
    sku: str | None = strawberry.field(default=strawberry.UNSET, description="New SKU.")
    name: str | None = strawberry.field(default=strawberry.UNSET, description="New name.")
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="New text; null clears it."
    )
    category_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="New category; null removes it."
    )
    unit_price: Decimal | None = strawberry.field(
        default=strawberry.UNSET, description="New price."
    )
    unit_cost: Decimal | None = strawberry.field(
        default=strawberry.UNSET, description="New cost; null clears it."
    )
    reorder_point: int | None = strawberry.field(
        default=strawberry.UNSET, description="New low-stock threshold."
    )


@strawberry.type(description="Result of an item mutation.")
class ItemPayload:
    item: Item | None = strawberry.field(description="The item as stored now.")
    errors: list[UserError] = strawberry.field(description="Why it failed, when it did.")

    @classmethod
    def of(cls, row: ItemRow | None, errors: list[UserError]) -> ItemPayload:
        return cls(item=None if row is None else Item.from_row(row), errors=errors)


def _category(raw: strawberry.ID | None) -> int | None:
    if raw is None:
        return None
    pk = try_decode(raw, "Category")
    # An ID that is not a category's can match no row: report it as not found.
    return -1 if pk is None else pk


def _item_values(data: CreateItemInput | UpdateItemInput) -> dict[str, Any]:
    fields = {
        "sku": data.sku,
        "name": data.name,
        "description": data.description,
        "unit_price": data.unit_price,
        "unit_cost": data.unit_cost,
        "reorder_point": data.reorder_point,
    }
    values = {k: v for k, v in fields.items() if v is not strawberry.UNSET}
    if data.category_id is not strawberry.UNSET:
        values["category_id"] = _category(data.category_id)
    if isinstance(data, UpdateItemInput):
        for required in ("sku", "name"):
            if required in values and values[required] is None:
                values[required] = ""  # null for a required field: let validation say so
    return values


@strawberry.type
class ItemMutation:
    @strawberry.mutation(description="Create an item (MANAGER).", permission_classes=[IsManager])
    async def create_item(
        self,
        info: strawberry.Info[Context],
        input: Annotated[CreateItemInput, strawberry.argument(description="The new item.")],
    ) -> ItemPayload:
        values = _item_values(input)
        row, errors = await run(info.context, lambda s: items.create_item(s, values))
        return ItemPayload.of(row, errors)

    @strawberry.mutation(
        description="Change an item (MANAGER); `expectedVersion` guards against lost updates.",
        permission_classes=[IsManager],
    )
    async def update_item(
        self,
        info: strawberry.Info[Context],
        id: Annotated[strawberry.ID, strawberry.argument(description="The item.")],
        input: Annotated[UpdateItemInput, strawberry.argument(description="What to change.")],
        expected_version: Annotated[
            int | None,
            strawberry.argument(description="Refuse with VERSION_CONFLICT unless at this version."),
        ] = None,
    ) -> ItemPayload:
        pk, values = try_decode(id, "Item"), _item_values(input)
        row, errors = await run(
            info.context, lambda s: items.update_item(s, pk, values, expected_version)
        )
        return ItemPayload.of(row, errors)

    @strawberry.mutation(
        description="Hide an item from lists, keeping its history (MANAGER).",
        permission_classes=[IsManager],
    )
    async def archive_item(
        self,
        info: strawberry.Info[Context],
        id: Annotated[strawberry.ID, strawberry.argument(description="The item.")],
    ) -> ItemPayload:
        pk = try_decode(id, "Item")
        row, errors = await run(info.context, lambda s: items.archive_item(s, pk))
        return ItemPayload.of(row, errors)

    @strawberry.mutation(
        description="Delete an item without stock history (MANAGER); else IN_USE.",
        permission_classes=[IsManager],
    )
    async def delete_item(
        self,
        info: strawberry.Info[Context],
        id: Annotated[strawberry.ID, strawberry.argument(description="The item.")],
    ) -> DeletePayload:
        pk = try_decode(id, "Item")
        deleted, errors = await run(info.context, lambda s: items.delete_item(s, pk))
        return DeletePayload(deleted_id=None if deleted is None else id, errors=errors)

    @strawberry.mutation(
        description="Attach an uploaded image to an item (MANAGER).",
        permission_classes=[IsManager],
    )
    async def set_item_image(
        self,
        info: strawberry.Info[Context],
        item_id: Annotated[strawberry.ID, strawberry.argument(description="The item.")],
        upload_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="ID from `POST /uploads`; null removes the image."),
        ],
    ) -> ItemPayload:
        pk = try_decode(item_id, "Item")
        image = None if upload_id is None else (try_decode(upload_id, "Image") or -1)
        row, errors = await run(info.context, lambda s: items.set_item_image(s, pk, image))
        return ItemPayload.of(row, errors)
