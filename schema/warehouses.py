"""Warehouse type and queries."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from db import stock_queries, warehouses
from db.models import Warehouse as WarehouseRow
from schema.context import Context
from schema.ids import to_global_id
from schema.permissions import IsViewer
from schema.relay import After, Before, Connection, First, Last, Node, page_args, paged

if TYPE_CHECKING:
    from schema.stock import StockLevel

StockLevelRef = Annotated["StockLevel", strawberry.lazy("schema.stock")]


@strawberry.type(description="A place where stock is kept.")
class Warehouse(Node):
    id: strawberry.ID = strawberry.field(description="Global ID.")
    code: str = strawberry.field(description="Short unique code, e.g. `BER-1`.")
    name: str = strawberry.field(description="Display name.")
    address: str | None = strawberry.field(description="Postal address.")
    created_at: datetime = strawberry.field(description="When it was created (UTC).")
    updated_at: datetime = strawberry.field(description="When it last changed (UTC).")
    pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: WarehouseRow) -> Warehouse:
        return cls(
            id=strawberry.ID(to_global_id("Warehouse", row.id)),
            code=row.code,
            name=row.name,
            address=row.address,
            created_at=row.created_at,
            updated_at=row.updated_at,
            pk=row.id,
        )

    @strawberry.field(description="Stock levels held here, ordered by item.")
    async def stock_levels(
        self,
        info: strawberry.Info[Context],
        first: First = None,
        after: After = None,
        low_stock_only: Annotated[
            bool | None,
            strawberry.argument(description="Only levels at or below the item's reorder point."),
        ] = None,
    ) -> Connection[StockLevelRef]:
        from schema.stock import StockLevel

        reader, args, low = info.context.reader, page_args(first, after), bool(low_stock_only)
        return await paged(
            lambda: reader(stock_queries.list_warehouse_levels, self.pk, low, args),
            StockLevel.from_row,
            lambda: reader(stock_queries.count_warehouse_levels, self.pk, low),
        )


@strawberry.type
class WarehouseQuery:
    @strawberry.field(description="All warehouses, by code.", permission_classes=[IsViewer])
    async def warehouses(
        self,
        info: strawberry.Info[Context],
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Warehouse]:
        reader, args = info.context.reader, page_args(first, after, last, before)
        return await paged(
            lambda: reader(warehouses.list_warehouses, args),
            Warehouse.from_row,
            lambda: reader(warehouses.count_warehouses),
        )
