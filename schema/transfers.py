"""Transfers in transit in GraphQL: the type, its queries and its mutations."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, TypeAlias

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from db import stock
from db.errors import ServiceError
from db.models import Transfer as TransferRow
from db.models import TransferLine as TransferLineRow
from db.models import TransferStatus as TransferStatusEnum
from db.stock import pipeline
from db.stock.lines import line_field
from schema.context import Context
from schema.errors import ARGUMENTS, UserError
from schema.ids import decode_id, decode_optional, pk_of
from schema.mutations import actor_id, run
from schema.permissions import IsClerk, IsViewer
from schema.relay import After, Connection, First, Node, global_id, page_args, paged
from schema.stock.types import StockMovement, item_of, warehouse_of

if TYPE_CHECKING:
    from schema.items import Item
    from schema.warehouses import Warehouse

ItemRef = Annotated["Item", strawberry.lazy("schema.items")]
WarehouseRef = Annotated["Warehouse", strawberry.lazy("schema.warehouses")]

strawberry.enum(
    TransferStatusEnum,
    name="TransferStatus",
    description="Life cycle of a transfer: IN_TRANSIT until received or cancelled.",
)
strawberry.enum(
    stock.ShortState,
    name="ShortReceiptState",
    description="What became of shipped units that did not arrive in good condition.",
)
TransferStatus: TypeAlias = TransferStatusEnum
ShortReceiptState: TypeAlias = stock.ShortState


@strawberry.type(description="Units of one item on a transfer, and what arrived of them.")
class TransferLine:
    quantity: int = strawberry.field(description="Units shipped.")
    quantity_received: int = strawberry.field(
        description="Units received in good condition (0 until received)."
    )
    quantity_damaged: int = strawberry.field(
        description="Units that arrived damaged: on hand at the destination as damaged."
    )
    quantity_lost: int = strawberry.field(description="Units that never arrived.")
    short_reason: str | None = strawberry.field(
        description="Why units were damaged or lost, as the receipt said."
    )
    item_pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: TransferLineRow) -> TransferLine:
        return cls(
            quantity=row.quantity,
            quantity_received=row.quantity_received,
            quantity_damaged=row.quantity_damaged,
            quantity_lost=row.quantity_lost,
            short_reason=row.short_reason,
            item_pk=row.item_id,
        )

    @strawberry.field(description="The item.")
    async def item(self, info: strawberry.Info[Context]) -> ItemRef:
        return await item_of(info, self.item_pk)


@strawberry.type(description="Stock shipped from one warehouse to another, received later.")
class Transfer(Node):
    id: strawberry.ID = global_id("Transfer")
    status: TransferStatus = strawberry.field(description="Where it is in its life cycle.")
    reference: str | None = strawberry.field(description="Transfer note; on its ledger rows.")
    shipped_at: datetime = strawberry.field(description="When it left the source (UTC).")
    received_at: datetime | None = strawberry.field(
        description="When it was received (UTC); null until then."
    )
    cancelled_at: datetime | None = strawberry.field(
        description="When it was cancelled (UTC), if it was."
    )
    pk: strawberry.Private[int]
    from_pk: strawberry.Private[int]
    to_pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: TransferRow) -> Transfer:
        return cls(
            status=row.status,
            reference=row.reference,
            shipped_at=row.shipped_at,
            received_at=row.received_at,
            cancelled_at=row.cancelled_at,
            pk=row.id,
            from_pk=row.from_warehouse_id,
            to_pk=row.to_warehouse_id,
        )

    @strawberry.field(name="from", description="The warehouse the units left.")
    async def from_(self, info: strawberry.Info[Context]) -> WarehouseRef:
        return await warehouse_of(info, self.from_pk)

    @strawberry.field(description="The warehouse the units are heading for.")
    async def to(self, info: strawberry.Info[Context]) -> WarehouseRef:
        return await warehouse_of(info, self.to_pk)

    @strawberry.field(description="What is shipped, one line per item.")
    async def lines(self, info: strawberry.Info[Context]) -> list[TransferLine]:
        rows = await info.context.loaders.transfer_lines.load(self.pk)
        return [TransferLine.from_row(row) for row in rows]


@strawberry.input(description="Ship units of an item from one warehouse towards another.")
class ShipTransferInput:
    item_id: strawberry.ID = strawberry.field(description="The item.")
    from_warehouse_id: strawberry.ID = strawberry.field(description="Where units leave now.")
    to_warehouse_id: strawberry.ID = strawberry.field(description="Where units will arrive.")
    quantity: int = strawberry.field(description="Units to ship (positive).")
    reference: str | None = strawberry.field(default=None, description="Transfer note.")
    idempotency_key: str | None = strawberry.field(
        default=None, description="Replaying the same key returns the first result."
    )

    def to_request(self) -> stock.ShipRequest:
        return stock.ShipRequest(
            item_id=pk_of(self.item_id, "Item", "item_id"),
            from_warehouse_id=pk_of(self.from_warehouse_id, "Warehouse", "from_warehouse_id"),
            to_warehouse_id=pk_of(self.to_warehouse_id, "Warehouse", "to_warehouse_id"),
            quantity=self.quantity,
            reference=self.reference,
            idempotency_key=self.idempotency_key,
        )


@strawberry.input(description="What arrived of one item of a transfer.")
class TransferReceiptLineInput:
    item_id: strawberry.ID = strawberry.field(description="The item.")
    quantity: int = strawberry.field(
        description="Units received in good condition (0 up to the units shipped)."
    )
    short_reason: str | None = strawberry.field(
        default=None, description="Why units are missing; required when fewer arrived."
    )
    short_state: ShortReceiptState = strawberry.field(
        default=stock.ShortState.LOST,
        description="What became of the missing units: LOST (default) or DAMAGED (they "
        "arrived damaged and count as damaged at the destination).",
    )

    def to_line(self, index: int) -> stock.ReceiptLine:
        try:
            item = pk_of(self.item_id, "Item", "item_id")
        except ServiceError as error:
            raise ServiceError(error.code, error.message, line_field(index, "item_id")) from None
        return stock.ReceiptLine(
            item, self.quantity, self.short_reason, stock.ShortState(self.short_state)
        )


@strawberry.type(description="Result of a transfer-in-transit mutation.")
class TransferShipmentPayload:
    transfer: Transfer | None = strawberry.field(description="The transfer as it is now.")
    movements: list[StockMovement] = strawberry.field(
        description="Ledger rows this call wrote (TRANSFER_OUT, TRANSFER_IN, STATE_CHANGE)."
    )
    errors: list[UserError] = strawberry.field(description="Why it failed, when it did.")

    @classmethod
    def of(
        cls, result: stock.TransferShipment | None, errors: list[UserError]
    ) -> TransferShipmentPayload:
        if result is None:
            return cls(transfer=None, movements=[], errors=errors)
        return cls(
            transfer=Transfer.from_row(result.transfer),
            movements=[StockMovement.from_row(m) for m in result.movements],
            errors=errors,
        )


IdArg = Annotated[strawberry.ID, strawberry.argument(description="The transfer.")]


def _transfer(id: strawberry.ID) -> int:
    return pk_of(id, "Transfer", "id")


@strawberry.type
class TransferQuery:
    @strawberry.field(description="Transfers, newest first.", permission_classes=[IsViewer])
    async def transfers(
        self,
        info: strawberry.Info[Context],
        first: First = None,
        after: After = None,
        status: Annotated[
            TransferStatus | None, strawberry.argument(description="Only this status.")
        ] = None,
        warehouse_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Only transfers leaving or heading for it."),
        ] = None,
    ) -> Connection[Transfer]:
        reader, args = info.context.reader, page_args(first, after)
        wanted = None if status is None else TransferStatusEnum(status)
        warehouse = decode_optional(warehouse_id, "Warehouse")
        return await paged(
            lambda: reader(pipeline.list_transfers, wanted, warehouse, args),
            Transfer.from_row,
            lambda: reader(pipeline.count_transfers, wanted, warehouse),
        )

    @strawberry.field(
        description="One transfer; null when it does not exist.", permission_classes=[IsViewer]
    )
    async def transfer(self, info: strawberry.Info[Context], id: IdArg) -> Transfer | None:
        row = await info.context.loaders.transfer.load(decode_id(id, "Transfer"))
        return None if row is None else Transfer.from_row(row)


@strawberry.type
class TransferMutation:
    @strawberry.mutation(
        description="Ship units towards another warehouse (CLERK): TRANSFER_OUT at the source "
        "now, in transit until received.",
        permission_classes=[IsClerk],
    )
    async def ship_transfer(
        self,
        info: strawberry.Info[Context],
        input: Annotated[ShipTransferInput, strawberry.argument(description="The shipment.")],
    ) -> TransferShipmentPayload:
        actor = actor_id(info)
        result, errors = await run(
            info.context, lambda s: stock.ship_transfer(s, input.to_request(), actor_id=actor)
        )
        return TransferShipmentPayload.of(result, errors)

    @strawberry.mutation(
        description="Receive a transfer in transit (CLERK): TRANSFER_IN at the destination; "
        "missing units are recorded as DAMAGED or LOST.",
        permission_classes=[IsClerk],
    )
    async def receive_transfer(
        self,
        info: strawberry.Info[Context],
        id: IdArg,
        lines: Annotated[
            list[TransferReceiptLineInput] | None,
            strawberry.argument(
                description="What arrived per item; items left out (or no lines) arrived in full."
            ),
        ] = None,
        idempotency_key: Annotated[
            str | None,
            strawberry.argument(description="Replaying the same key returns the first result."),
        ] = None,
    ) -> TransferShipmentPayload:
        actor = actor_id(info)

        async def work(session: AsyncSession) -> stock.TransferShipment:
            request = stock.ReceiveTransferRequest(
                transfer_id=_transfer(id),
                lines=None
                if lines is None
                else tuple(line.to_line(index) for index, line in enumerate(lines)),
                idempotency_key=idempotency_key,
            )
            return await stock.receive_transfer(session, request, actor_id=actor)

        result, errors = await run(info.context, work, ARGUMENTS)
        return TransferShipmentPayload.of(result, errors)

    @strawberry.mutation(
        description="Cancel a transfer in transit (CLERK): its units go back to the source.",
        permission_classes=[IsClerk],
    )
    async def cancel_transfer(
        self, info: strawberry.Info[Context], id: IdArg
    ) -> TransferShipmentPayload:
        actor = actor_id(info)
        result, errors = await run(
            info.context, lambda s: stock.cancel_transfer(s, _transfer(id), actor_id=actor)
        )
        return TransferShipmentPayload.of(result, errors)
