"""Stock queries: the ledger, reservations and the inventory summary."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from db.models import MovementKind as MovementKindEnum
from db.models import ReservationStatus as ReservationStatusEnum
from db.stock import queries
from db.stock.queries import MovementFilterSpec
from schema.context import Context
from schema.ids import decode_optional
from schema.permissions import IsViewer
from schema.relay import After, Before, Connection, First, Last, page_args, paged
from schema.stock.types import (
    InventorySummary,
    MovementKind,
    Reservation,
    ReservationStatus,
    StockMovement,
)


@strawberry.input(description="Narrow the ledger; all given conditions must hold.")
class MovementFilter:
    item_id: strawberry.ID | None = strawberry.field(default=None, description="This item.")
    warehouse_id: strawberry.ID | None = strawberry.field(
        default=None, description="This warehouse."
    )
    kinds: list[MovementKind] | None = strawberry.field(
        default=None, description="Any of these kinds."
    )
    since: datetime | None = strawberry.field(default=None, description="At or after (UTC).")
    until: datetime | None = strawberry.field(default=None, description="Before (UTC).")

    def to_spec(self) -> MovementFilterSpec:
        return MovementFilterSpec(
            item_id=decode_optional(self.item_id, "Item"),
            warehouse_id=decode_optional(self.warehouse_id, "Warehouse"),
            kinds=tuple(MovementKindEnum(k) for k in self.kinds) if self.kinds else None,
            since=self.since,
            until=self.until,
        )


@strawberry.type
class StockQuery:
    @strawberry.field(description="The stock ledger, newest first.", permission_classes=[IsViewer])
    async def movements(
        self,
        info: strawberry.Info[Context],
        first: First = None,
        after: After = None,
        filter: Annotated[
            MovementFilter | None, strawberry.argument(description="Conditions to match.")
        ] = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[StockMovement]:
        reader, args = info.context.reader, page_args(first, after, last, before)
        spec = filter.to_spec() if filter is not None else MovementFilterSpec()
        return await paged(
            lambda: reader(queries.list_movements, spec, args),
            StockMovement.from_row,
            lambda: reader(queries.count_movements, spec),
        )

    @strawberry.field(description="Reservations, newest first.", permission_classes=[IsViewer])
    async def reservations(
        self,
        info: strawberry.Info[Context],
        first: First = None,
        after: After = None,
        status: Annotated[
            ReservationStatus | None, strawberry.argument(description="Only this status.")
        ] = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Reservation]:
        reader, args = info.context.reader, page_args(first, after, last, before)
        wanted = None if status is None else ReservationStatusEnum(status)
        return await paged(
            lambda: reader(queries.list_reservations, wanted, args),
            Reservation.from_row,
            lambda: reader(queries.count_reservations, wanted),
        )

    @strawberry.field(
        description="Counts and value of live items, in one warehouse or all.",
        permission_classes=[IsViewer],
    )
    async def inventory_summary(
        self,
        info: strawberry.Info[Context],
        warehouse_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only this warehouse.")
        ] = None,
        at: Annotated[
            datetime | None,
            strawberry.argument(
                description="As of this instant (UTC), rebuilt from the ledger and valued at "
                "today's unit costs; now when absent."
            ),
        ] = None,
    ) -> InventorySummary:
        pk = decode_optional(warehouse_id, "Warehouse")
        row = await info.context.reader(queries.inventory_summary, pk, at)
        return InventorySummary(
            item_count=row.item_count,
            total_on_hand=row.total_on_hand,
            total_value=row.total_value,
            low_stock_count=row.low_stock_count,
        )
