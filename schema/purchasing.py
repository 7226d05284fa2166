"""Purchase orders in GraphQL: the type, its queries and its mutations."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, TypeAlias

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from db import stock
from db.errors import ServiceError
from db.models import PurchaseOrder as PurchaseOrderRow
from db.models import PurchaseOrderLine as PurchaseOrderLineRow
from db.models import PurchaseOrderStatus as PurchaseOrderStatusEnum
from db.stock import pipeline
from db.stock.lines import line_field
from schema.context import Context
from schema.errors import ARGUMENTS, UserError
from schema.ids import decode_id, decode_optional, pk_of
from schema.mutations import actor_id, run
from schema.permissions import IsClerk, IsManager, IsViewer
from schema.relay import After, Connection, First, Node, global_id, page_args, paged
from schema.stock.types import StockMovement, item_of, warehouse_of

if TYPE_CHECKING:
    from schema.items import Item
    from schema.warehouses import Warehouse

ItemRef = Annotated["Item", strawberry.lazy("schema.items")]
WarehouseRef = Annotated["Warehouse", strawberry.lazy("schema.warehouses")]

strawberry.enum(
    PurchaseOrderStatusEnum,
    name="PurchaseOrderStatus",
    description="Life cycle of a purchase order: DRAFT, ORDERED, then received or cancelled.",
)
PurchaseOrderStatus: TypeAlias = PurchaseOrderStatusEnum


@strawberry.type(description="One item of a purchase order.")
class PurchaseOrderLine:
    quantity_ordered: int = strawberry.field(description="Units ordered.")
    quantity_received: int = strawberry.field(
        description="Units received so far (more than ordered after an allowed over-receipt)."
    )
    item_pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: PurchaseOrderLineRow) -> PurchaseOrderLine:
        return cls(
            quantity_ordered=row.quantity_ordered,
            quantity_received=row.quantity_received,
            item_pk=row.item_id,
        )

    @strawberry.field(description="Units ordered and not received yet.")
    def quantity_outstanding(self) -> int:
        return max(self.quantity_ordered - self.quantity_received, 0)

    @strawberry.field(description="The item ordered.")
    async def item(self, info: strawberry.Info[Context]) -> ItemRef:
        return await item_of(info, self.item_pk)


@strawberry.type(description="Stock ordered from a supplier for one warehouse.")
class PurchaseOrder(Node):
    id: strawberry.ID = global_id("PurchaseOrder")
    number: str = strawberry.field(
        description="Unique order number, given or generated (`PO-00042`); the reference of "
        "its RECEIPT ledger rows."
    )
    supplier: str = strawberry.field(description="Who the stock is ordered from.")
    status: PurchaseOrderStatus = strawberry.field(description="Where it is in its life cycle.")
    expected_at: datetime | None = strawberry.field(
        description="When the supplier is expected to deliver (UTC)."
    )
    ordered_at: datetime | None = strawberry.field(
        description="When it was ordered (UTC); null while a DRAFT."
    )
    created_at: datetime = strawberry.field(description="When it was created (UTC).")
    updated_at: datetime = strawberry.field(description="When it last changed (UTC).")
    pk: strawberry.Private[int]
    warehouse_pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: PurchaseOrderRow) -> PurchaseOrder:
        return cls(
            number=row.number,
            supplier=row.supplier,
            status=row.status,
            expected_at=row.expected_at,
            ordered_at=row.ordered_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
            pk=row.id,
            warehouse_pk=row.warehouse_id,
        )

    @strawberry.field(description="The warehouse the stock is delivered to.")
    async def warehouse(self, info: strawberry.Info[Context]) -> WarehouseRef:
        return await warehouse_of(info, self.warehouse_pk)

    @strawberry.field(description="What is ordered, one line per item.")
    async def lines(self, info: strawberry.Info[Context]) -> list[PurchaseOrderLine]:
        rows = await info.context.loaders.purchase_order_lines.load(self.pk)
        return [PurchaseOrderLine.from_row(row) for row in rows]


@strawberry.input(description="Units of one item on a purchase order or a receipt.")
class PurchaseOrderLineInput:
    item_id: strawberry.ID = strawberry.field(description="The item.")
    quantity: int = strawberry.field(description="Units (positive).")


def _lines(lines: list[PurchaseOrderLineInput]) -> tuple[stock.Line, ...]:
    parsed = []
    for index, line in enumerate(lines):
        try:
            item = pk_of(line.item_id, "Item", "item_id")
        except ServiceError as error:
            raise ServiceError(error.code, error.message, line_field(index, "item_id")) from None
        parsed.append(stock.Line(item, line.quantity))
    return tuple(parsed)


@strawberry.input(description="A purchase order's fields.")
class PurchaseOrderInput:
    supplier: str = strawberry.field(description="Who the stock is ordered from.")
    warehouse_id: strawberry.ID = strawberry.field(description="Where it is delivered.")
    expected_at: datetime | None = strawberry.field(
        default=None, description="When delivery is expected (UTC)."
    )
    number: str | None = strawberry.field(
        default=None,
        description="Unique order number; generated when absent (an update keeps the old one).",
    )
    lines: list[PurchaseOrderLineInput] = strawberry.field(
        description="What is ordered: 1 to 200 lines, one per item."
    )

    def to_draft(self) -> stock.PurchaseOrderDraft:
        return stock.PurchaseOrderDraft(
            supplier=self.supplier,
            warehouse_id=pk_of(self.warehouse_id, "Warehouse", "warehouse_id"),
            lines=_lines(self.lines),
            expected_at=self.expected_at,
            number=self.number,
        )


@strawberry.type(description="Result of a purchase order mutation.")
class PurchaseOrderPayload:
    purchase_order: PurchaseOrder | None = strawberry.field(description="The order as it is now.")
    movements: list[StockMovement] = strawberry.field(
        description="RECEIPT ledger rows a receipt wrote; empty for the other mutations."
    )
    errors: list[UserError] = strawberry.field(description="Why it failed, when it did.")

    @classmethod
    def of(
        cls,
        row: PurchaseOrderRow | None,
        errors: list[UserError],
        movements: list[StockMovement] | None = None,
    ) -> PurchaseOrderPayload:
        order = None if row is None else PurchaseOrder.from_row(row)
        return cls(purchase_order=order, movements=movements or [], errors=errors)


IdArg = Annotated[strawberry.ID, strawberry.argument(description="The purchase order.")]


@strawberry.type
class PurchaseOrderQuery:
    @strawberry.field(description="Purchase orders, newest first.", permission_classes=[IsViewer])
    async def purchase_orders(
        self,
        info: strawberry.Info[Context],
        first: First = None,
        after: After = None,
        status: Annotated[
            PurchaseOrderStatus | None, strawberry.argument(description="Only this status.")
        ] = None,
        warehouse_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Only orders delivered to this warehouse."),
        ] = None,
    ) -> Connection[PurchaseOrder]:
        reader, args = info.context.reader, page_args(first, after)
        wanted = None if status is None else PurchaseOrderStatusEnum(status)
        warehouse = decode_optional(warehouse_id, "Warehouse")
        return await paged(
            lambda: reader(pipeline.list_purchase_orders, wanted, warehouse, args),
            PurchaseOrder.from_row,
            lambda: reader(pipeline.count_purchase_orders, wanted, warehouse),
        )

    @strawberry.field(
        description="One purchase order; null when it does not exist.",
        permission_classes=[IsViewer],
    )
    async def purchase_order(
        self, info: strawberry.Info[Context], id: IdArg
    ) -> PurchaseOrder | None:
        row = await info.context.loaders.purchase_order.load(decode_id(id, "PurchaseOrder"))
        return None if row is None else PurchaseOrder.from_row(row)


def _order(id: strawberry.ID) -> int:
    return pk_of(id, "PurchaseOrder", "id", "purchase order")


@strawberry.type
class PurchaseOrderMutation:
    @strawberry.mutation(
        description="Draft a purchase order (MANAGER).", permission_classes=[IsManager]
    )
    async def create_purchase_order(
        self,
        info: strawberry.Info[Context],
        input: Annotated[PurchaseOrderInput, strawberry.argument(description="Its fields.")],
    ) -> PurchaseOrderPayload:
        actor = actor_id(info)
        row, errors = await run(
            info.context,
            lambda s: stock.create_purchase_order(s, input.to_draft(), actor_id=actor),
        )
        return PurchaseOrderPayload.of(row, errors)

    @strawberry.mutation(
        description="Replace a DRAFT purchase order's fields and lines (MANAGER).",
        permission_classes=[IsManager],
    )
    async def update_purchase_order(
        self,
        info: strawberry.Info[Context],
        id: IdArg,
        input: Annotated[PurchaseOrderInput, strawberry.argument(description="Its new fields.")],
    ) -> PurchaseOrderPayload:
        row, errors = await run(
            info.context, lambda s: stock.update_purchase_order(s, _order(id), input.to_draft())
        )
        return PurchaseOrderPayload.of(row, errors)

    @strawberry.mutation(
        description="Send a DRAFT to its supplier: its lines count as incoming (MANAGER).",
        permission_classes=[IsManager],
    )
    async def order_purchase_order(
        self, info: strawberry.Info[Context], id: IdArg
    ) -> PurchaseOrderPayload:
        row, errors = await run(info.context, lambda s: stock.order_purchase_order(s, _order(id)))
        return PurchaseOrderPayload.of(row, errors)

    @strawberry.mutation(
        description="Receive units against an ordered purchase order, in part or in full "
        "(CLERK); RECEIPT ledger rows reference its number.",
        permission_classes=[IsClerk],
    )
    async def receive_purchase_order(
        self,
        info: strawberry.Info[Context],
        id: IdArg,
        lines: Annotated[
            list[PurchaseOrderLineInput],
            strawberry.argument(description="Units that arrived, per item on the order."),
        ],
        idempotency_key: Annotated[
            str | None,
            strawberry.argument(description="Replaying the same key returns the first result."),
        ] = None,
        allow_over_receipt: Annotated[
            bool | None,
            strawberry.argument(
                description="Accept more than a line's outstanding units; otherwise INVALID."
            ),
        ] = None,
    ) -> PurchaseOrderPayload:
        actor = actor_id(info)

        async def work(session: AsyncSession) -> stock.PurchaseOrderReceipt:
            request = stock.ReceiveRequest(
                purchase_order_id=_order(id),
                lines=_lines(lines),
                allow_over_receipt=bool(allow_over_receipt),
                idempotency_key=idempotency_key,
            )
            return await stock.receive_purchase_order(session, request, actor_id=actor)

        result, errors = await run(info.context, work, ARGUMENTS)
        if result is None:
            return PurchaseOrderPayload.of(None, errors)
        movements = [StockMovement.from_row(m) for m in result.movements]
        return PurchaseOrderPayload.of(result.purchase_order, errors, movements)

    @strawberry.mutation(
        description="Cancel a purchase order that is not fully received (MANAGER); units "
        "already received stay.",
        permission_classes=[IsManager],
    )
    async def cancel_purchase_order(
        self, info: strawberry.Info[Context], id: IdArg
    ) -> PurchaseOrderPayload:
        row, errors = await run(info.context, lambda s: stock.cancel_purchase_order(s, _order(id)))
        return PurchaseOrderPayload.of(row, errors)
