"""Transfers in transit: shipped now, received (or cancelled) later.

Shipping writes TRANSFER_OUT at the source at once; the units are then in transit, counted
at the destination level until a receipt writes TRANSFER_IN there. A short receipt says
what became of the missing units: DAMAGED units arrived and sit on hand as damaged (a
STATE_CHANGE row follows the TRANSFER_IN), LOST units never arrived. Cancelling returns
the units to the source with a TRANSFER_IN row. Every change locks the transfer's row
first (see the lock order in ``db.stock.levels``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.errors import ErrorCode, ServiceError
from db.models import (
    Item,
    MovementKind,
    StockLevel,
    StockMovement,
    StockState,
    Transfer,
    TransferLine,
    TransferStatus,
    Warehouse,
    utcnow,
)
from db.stock.idempotency import run_keyed
from db.stock.levels import (
    change_level,
    current_level,
    expire_for_level,
    get_warehouse,
    level_id,
    locked_level,
    open_level,
    write_ledger,
)
from db.stock.lines import check_lines, line_field
from db.stock.requests import MAX_TEXT, KeyedRequest, TransferRequest, check_key
from db.stock.results import Recorded


class ShortState(StrEnum):
    """What became of units shipped but not received in good condition."""

    DAMAGED = "DAMAGED"
    LOST = "LOST"


@dataclass(frozen=True, slots=True)
class ShipRequest(TransferRequest):
    """Ship units from one warehouse towards another; they arrive with a receipt."""

    operation: ClassVar[str] = "shipTransfer"


@dataclass(frozen=True, slots=True)
class ReceiptLine:
    """Units of one item received in good condition; the shortfall needs a reason."""

    item_id: int
    quantity: int
    short_reason: str | None = None
    short_state: ShortState = ShortState.LOST


@dataclass(frozen=True, slots=True)
class ReceiveTransferRequest(KeyedRequest):
    """Receive a transfer; lines not given (or no lines at all) arrived in full."""

    operation: ClassVar[str] = "receiveTransfer"

    transfer_id: int
    lines: tuple[ReceiptLine, ...] | None = None
    idempotency_key: str | None = None

    def check(self) -> None:
        if self.lines:
            check_lines(self.lines, allow_zero=True)
            for index, line in enumerate(self.lines):
                reason = line.short_reason
                if reason is not None and not 0 < len(reason.strip()) <= MAX_TEXT:
                    raise ServiceError(
                        ErrorCode.INVALID,
                        f"The reason must be 1 to {MAX_TEXT} characters",
                        line_field(index, "short_reason"),
                    )
        check_key(self.idempotency_key)

    def fingerprint(self) -> dict[str, Any]:
        lines = None
        if self.lines is not None:
            lines = [
                [line.item_id, line.quantity, line.short_reason, line.short_state.value]
                for line in self.lines
            ]
        return {"transfer": self.transfer_id, "lines": lines}


@dataclass(frozen=True, slots=True)
class TransferShipment:
    """A transfer after a change, with the levels and ledger rows that change wrote."""

    transfer: Transfer
    levels: list[StockLevel]
    movements: list[StockMovement]

    def recorded(self) -> Recorded:
        return {
            "transfer": self.transfer.id,
            "levels": [level.id for level in self.levels],
            "movements": [movement.id for movement in self.movements],
        }

    @classmethod
    async def replay(cls, session: AsyncSession, recorded: Recorded) -> TransferShipment:
        transfer = await session.get_one(Transfer, recorded["transfer"])
        levels = [await session.get_one(StockLevel, i) for i in recorded["levels"]]
        movements = [await session.get_one(StockMovement, i) for i in recorded["movements"]]
        return cls(transfer, levels, movements)


async def ship_transfer(
    session: AsyncSession, request: ShipRequest, *, actor_id: int
) -> TransferShipment:
    """Take units out of the source now (TRANSFER_OUT); they are in transit until received."""

    async def perform() -> TransferShipment:
        source = await open_level(
            session, request.item_id, request.from_warehouse_id, "from_warehouse_id"
        )
        target = await get_warehouse(session, request.to_warehouse_id, "to_warehouse_id")
        # The destination level exists from now on, so it shows the units in transit.
        await level_id(session, source.item.id, target.id)
        level = await change_level(session, source.level_id, on_hand=-request.quantity)
        if level is None:
            current = await current_level(session, source.level_id)
            raise ServiceError(
                ErrorCode.INSUFFICIENT_STOCK,
                f"Only {current.available} units available in {source.warehouse.code}",
                ["quantity"],
            )
        now = utcnow()
        transfer = Transfer(
            status=TransferStatus.IN_TRANSIT,
            from_warehouse_id=source.warehouse.id,
            to_warehouse_id=target.id,
            reference=request.reference,
            shipped_at=now,
            created_by=actor_id,
        )
        session.add(transfer)
        await session.flush()
        session.add(
            TransferLine(transfer_id=transfer.id, item_id=source.item.id, quantity=request.quantity)
        )
        movement = await write_ledger(
            session,
            level,
            MovementKind.TRANSFER_OUT,
            -request.quantity,
            actor_id=actor_id,
            reason=f"In transit to {target.code}",
            reference=request.reference,
            available_before=level.available + request.quantity,
            reorder_point=source.item.reorder_point,
        )
        return TransferShipment(transfer, [level], [movement])

    return await run_keyed(
        session, request, actor_id=actor_id, result_type=TransferShipment, perform=perform
    )


async def _locked(session: AsyncSession, transfer_id: int) -> tuple[Transfer, list[TransferLine]]:
    transfer = (
        await session.scalars(
            select(Transfer)
            .where(Transfer.id == transfer_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()
    if transfer is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such transfer", ["id"])
    if transfer.status is not TransferStatus.IN_TRANSIT:
        raise ServiceError(
            ErrorCode.INVALID, f"The transfer is {transfer.status.value}: it cannot change", ["id"]
        )
    lines = await session.scalars(
        select(TransferLine)
        .where(TransferLine.transfer_id == transfer.id)
        .order_by(TransferLine.id)
        .execution_options(populate_existing=True)
    )
    return transfer, list(lines.all())


def _receipts(request: ReceiveTransferRequest, lines: list[TransferLine]) -> dict[int, ReceiptLine]:
    """Each transfer line's receipt: as given, or in full when not given."""
    shipped = {line.item_id: line for line in lines}
    given: dict[int, ReceiptLine] = {}
    for index, receipt in enumerate(request.lines or ()):
        line = shipped.get(receipt.item_id)
        if line is None:
            raise ServiceError(
                ErrorCode.INVALID, "This item is not on the transfer", line_field(index, "item_id")
            )
        if receipt.quantity > line.quantity:
            raise ServiceError(
                ErrorCode.INVALID,
                f"Only {line.quantity} units were shipped",
                line_field(index, "quantity"),
            )
        if receipt.quantity < line.quantity and receipt.short_reason is None:
            raise ServiceError(
                ErrorCode.INVALID,
                f"{line.quantity - receipt.quantity} units are missing: say why",
                line_field(index, "short_reason"),
            )
        given[line.id] = receipt
    return {line.id: given.get(line.id, ReceiptLine(line.item_id, line.quantity)) for line in lines}


async def _arrive(
    session: AsyncSession,
    transfer: Transfer,
    line: TransferLine,
    receipt: ReceiptLine,
    *,
    source: Warehouse,
    actor_id: int,
) -> tuple[StockLevel, list[StockMovement]]:
    """Book one line's receipt at the destination level."""
    short = line.quantity - receipt.quantity
    damaged = short if receipt.short_state is ShortState.DAMAGED else 0
    line.quantity_received = receipt.quantity
    line.quantity_damaged = damaged
    line.quantity_lost = short - damaged
    line.short_reason = receipt.short_reason if short else None
    item = await session.get_one(Item, line.item_id)
    await expire_for_level(session, item.id, transfer.to_warehouse_id, item.reorder_point)
    level = await level_id(session, item.id, transfer.to_warehouse_id)
    before = await locked_level(session, level)
    # One operation: the low-stock crossing is judged from where it started.
    available_before = before.available
    arrived = receipt.quantity + damaged
    reason = f"Received from {source.code}"
    if line.quantity_lost:
        reason += f"; {line.quantity_lost} lost in transit: {receipt.short_reason}"
    written: list[StockMovement] = []
    changed = before
    for delta, kind in ((arrived, MovementKind.TRANSFER_IN), (damaged, MovementKind.STATE_CHANGE)):
        if not delta:
            continue
        into_damaged = kind is MovementKind.STATE_CHANGE
        result = await change_level(
            session,
            level,
            on_hand=0 if into_damaged else delta,
            damaged=delta if into_damaged else 0,
            # Damaged units are a fact, whatever safety stock asks for.
            enforce_available=False,
        )
        assert result is not None, "the row is locked and the units just arrived"
        changed = result
        written.append(
            await write_ledger(
                session,
                changed,
                kind,
                delta,
                actor_id=actor_id,
                reason=receipt.short_reason if into_damaged else reason,
                reference=transfer.reference,
                from_state=StockState.AVAILABLE if into_damaged else None,
                to_state=StockState.DAMAGED if into_damaged else None,
                available_before=available_before,
                reorder_point=item.reorder_point,
            )
        )
    return changed, written


async def receive_transfer(
    session: AsyncSession, request: ReceiveTransferRequest, *, actor_id: int
) -> TransferShipment:
    """Book a transfer's arrival: TRANSFER_IN at the destination, shortfalls recorded."""

    async def perform() -> TransferShipment:
        transfer, lines = await _locked(session, request.transfer_id)
        receipts = _receipts(request, lines)
        source = await session.get_one(Warehouse, transfer.from_warehouse_id)
        levels, movements = [], []
        targets = {line.id: await level_id(session, line.item_id, transfer.to_warehouse_id)
                   for line in lines}  # fmt: skip
        for line in sorted(lines, key=lambda line: targets[line.id]):
            level, written = await _arrive(
                session, transfer, line, receipts[line.id], source=source, actor_id=actor_id
            )
            levels.append(level)
            movements.extend(written)
        transfer.status = TransferStatus.RECEIVED
        transfer.received_at = transfer.updated_at = utcnow()
        await session.flush()
        return TransferShipment(transfer, levels, movements)

    return await run_keyed(
        session, request, actor_id=actor_id, result_type=TransferShipment, perform=perform
    )


async def cancel_transfer(
    session: AsyncSession, transfer_id: int, *, actor_id: int
) -> TransferShipment:
    """Stop a transfer in transit: its units go back on hand at the source (TRANSFER_IN)."""
    transfer, lines = await _locked(session, transfer_id)
    target = await session.get_one(Warehouse, transfer.to_warehouse_id)
    levels, movements = [], []
    sources = {line.id: await level_id(session, line.item_id, transfer.from_warehouse_id)
               for line in lines}  # fmt: skip
    for line in sorted(lines, key=lambda line: sources[line.id]):
        source = await open_level(session, line.item_id, transfer.from_warehouse_id)
        level = await change_level(session, source.level_id, on_hand=line.quantity)
        assert level is not None, "returning units only adds them"
        movements.append(
            await write_ledger(
                session,
                level,
                MovementKind.TRANSFER_IN,
                line.quantity,
                actor_id=actor_id,
                reason=f"Transfer to {target.code} cancelled: back from transit",
                reference=transfer.reference,
                available_before=level.available - line.quantity,
                reorder_point=source.item.reorder_point,
            )
        )
        levels.append(level)
    transfer.status = TransferStatus.CANCELLED
    transfer.cancelled_at = transfer.updated_at = utcnow()
    await session.flush()
    return TransferShipment(transfer, levels, movements)
