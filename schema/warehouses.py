"""Warehouse type and queries."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from db import warehouses
from db.models import Warehouse as WarehouseRow
from db.stock import queries as stock_queries
from schema.context import Context
from schema.errors import UserError
from schema.ids import pk_of
from schema.mutations import DeletePayload, run
from schema.permissions import IsManager, IsViewer
from schema.relay import After, Before, Connection, First, Last, Node, global_id, page_args, paged

if TYPE_CHECKING:
    from schema.stock import StockLevel, StockSnapshot

StockLevelRef = Annotated["StockLevel", strawberry.lazy("schema.stock")]
StockSnapshotRef = Annotated["StockSnapshot", strawberry.lazy("schema.stock")]


@strawberry.type(description="A place where stock is kept.")
class Warehouse(Node):
    id: strawberry.ID = global_id("Warehouse")
    code: str = strawberry.field(description="Short unique code, e.g. `BER-1`.")
    name: str = strawberry.field(description="Display name.")
    address: str | None = strawberry.field(description="Postal address.")
    created_at: datetime = strawberry.field(description="When it was created (UTC).")
    updated_at: datetime = strawberry.field(description="When it last changed (UTC).")
    pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: WarehouseRow) -> Warehouse:
        return cls(
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


    @strawberry.field(
        description="Its stock levels as they stood at an instant (month end, say), rebuilt "
        "from the ledger; ordered by item like `stockLevels`."
    )
    async def stock_at(
        self,
        info: strawberry.Info[Context],
        at: Annotated[datetime, strawberry.argument(description="The instant (UTC).")],
        first: First = None,
        after: After = None,
    ) -> Connection[StockSnapshotRef]:
        from schema.stock import StockSnapshot

        reader, args = info.context.reader, page_args(first, after)
        return await paged(
            lambda: reader(stock_queries.warehouse_snapshots, self.pk, at, args),
            StockSnapshot.from_row,
            lambda: reader(stock_queries.count_warehouse_levels, self.pk, False),
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


@strawberry.input(description="A warehouse's fields.")
class WarehouseInput:
    code: str = strawberry.field(description="Short unique code.")
    name: str = strawberry.field(description="Display name.")
    address: str | None = strawberry.field(default=None, description="Postal address.")


@strawberry.type(description="Result of a warehouse mutation.")
class WarehousePayload:
    warehouse: Warehouse | None = strawberry.field(description="The warehouse as stored now.")
    errors: list[UserError] = strawberry.field(description="Why it failed, when it did.")

    @classmethod
    def of(cls, row: WarehouseRow | None, errors: list[UserError]) -> WarehousePayload:
        return cls(warehouse=None if row is None else Warehouse.from_row(row), errors=errors)


@strawberry.type
class WarehouseMutation:
    @strawberry.mutation(
        description="Create a warehouse (MANAGER).", permission_classes=[IsManager]
    )
    async def create_warehouse(
        self,
        info: strawberry.Info[Context],
        input: Annotated[WarehouseInput, strawberry.argument(description="Its fields.")],
    ) -> WarehousePayload:
        row, errors = await run(
            info.context,
            lambda s: warehouses.create_warehouse(s, input.code, input.name, input.address),
        )
        return WarehousePayload.of(row, errors)

    @strawberry.mutation(
        description="Change a warehouse (MANAGER).", permission_classes=[IsManager]
    )
    async def update_warehouse(
        self,
        info: strawberry.Info[Context],
        id: Annotated[strawberry.ID, strawberry.argument(description="The warehouse.")],
        input: Annotated[WarehouseInput, strawberry.argument(description="Its new fields.")],
    ) -> WarehousePayload:
        row, errors = await run(
            info.context,
            lambda s: warehouses.update_warehouse(
                s, pk_of(id, "Warehouse", "id"), input.code, input.name, input.address
            ),
        )
        return WarehousePayload.of(row, errors)

    @strawberry.mutation(
        description="Delete an empty warehouse with no history (MANAGER); else IN_USE.",
        permission_classes=[IsManager],
    )
    async def delete_warehouse(
        self,
        info: strawberry.Info[Context],
        id: Annotated[strawberry.ID, strawberry.argument(description="The warehouse.")],
    ) -> DeletePayload:
        deleted, errors = await run(
            info.context, lambda s: warehouses.delete_warehouse(s, pk_of(id, "Warehouse", "id"))
        )
        return DeletePayload(deleted_id=None if deleted is None else id, errors=errors)
