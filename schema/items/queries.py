"""Item queries: one item, and the filtered, sorted item list with its prefetch."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, TypeAlias

import strawberry

from db import items
from db.items import ItemFilterSpec, ItemOrderSpec, ItemSort
from db.models import Item as ItemRow
from schema.context import Context
from schema.errors import bad_input
from schema.ids import decode_id, decode_optional
from schema.items.types import Item
from schema.permissions import IsViewer
from schema.relay import After, Before, Connection, First, Last, page_args, paged
from schema.selection import selection_of

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
