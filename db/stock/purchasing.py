"""Purchase orders: drafted, ordered, received in part or in full, or cancelled.

A DRAFT can still change; ORDERED and PARTIALLY_RECEIVED orders count their outstanding
units as incoming at their warehouse; each receipt writes one RECEIPT ledger row per line
received, whose reference is the order's number. Every change locks the order's row first
(see the lock order in ``db.stock.levels``), so concurrent receipts of one order queue and
never receive a unit twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db import validation
from db.errors import ErrorCode, ServiceError
from db.models import (
    OPEN_PURCHASE_ORDER,
    Item,
    MovementKind,
    PurchaseOrder,
    PurchaseOrderLine,
    PurchaseOrderStatus,
    StockLevel,
    StockMovement,
    utcnow,
)
from db.stock.idempotency import run_keyed
from db.stock.levels import change_level, expire_for_level, get_warehouse, level_id, write_ledger
from db.stock.lines import Line, check_lines, line_field
from db.stock.requests import KeyedRequest, check_key
from db.stock.results import Recorded


@dataclass(frozen=True, slots=True)
class PurchaseOrderDraft:
    """What a purchase order says: supplier, destination, lines; the number is optional."""

    supplier: str
    warehouse_id: int
    lines: tuple[Line, ...]
    expected_at: datetime | None = None
    number: str | None = None

    def cleaned(self) -> PurchaseOrderDraft:
        """The draft with its text trimmed; ServiceError(INVALID) for input never valid."""
        supplier = validation.text(self.supplier, ["supplier"], max_length=200, label="Supplier")
        number = None
        if self.number is not None:
            number = validation.text(self.number, ["number"], max_length=64, label="Number")
        check_lines(self.lines)
        return replace(self, supplier=supplier, number=number)


@dataclass(frozen=True, slots=True)
class ReceiveRequest(KeyedRequest):
    """Units of an order's lines that arrived; more than outstanding only when allowed."""

    operation: ClassVar[str] = "receivePurchaseOrder"

    purchase_order_id: int
    lines: tuple[Line, ...]
    allow_over_receipt: bool = False
    idempotency_key: str | None = None

    def check(self) -> None:
        check_lines(self.lines)
        check_key(self.idempotency_key)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "order": self.purchase_order_id,
            "lines": [[line.item_id, line.quantity] for line in self.lines],
            "over": self.allow_over_receipt,
        }


@dataclass(frozen=True, slots=True)
class PurchaseOrderReceipt:
    """The order after a receipt, with the levels and ledger rows it changed."""

    purchase_order: PurchaseOrder
    levels: list[StockLevel]
    movements: list[StockMovement]

    def recorded(self) -> Recorded:
        return {
            "purchase_order": self.purchase_order.id,
            "levels": [level.id for level in self.levels],
            "movements": [movement.id for movement in self.movements],
        }

    @classmethod
    async def replay(cls, session: AsyncSession, recorded: Recorded) -> PurchaseOrderReceipt:
        order = await session.get_one(PurchaseOrder, recorded["purchase_order"])
        levels = [await session.get_one(StockLevel, i) for i in recorded["levels"]]
        movements = [await session.get_one(StockMovement, i) for i in recorded["movements"]]
        return cls(order, levels, movements)


async def _locked(session: AsyncSession, purchase_order_id: int) -> PurchaseOrder:
    order = (
        await session.scalars(
            select(PurchaseOrder)
            .where(PurchaseOrder.id == purchase_order_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()
    if order is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such purchase order", ["id"])
    return order


def _refuse_unless(order: PurchaseOrder, *allowed: PurchaseOrderStatus, doing: str) -> None:
    if order.status not in allowed:
        raise ServiceError(
            ErrorCode.INVALID, f"The purchase order is {order.status.value}: cannot {doing}", ["id"]
        )


async def _check_items(session: AsyncSession, lines: tuple[Line, ...]) -> None:
    found = {
        item.id: item
        for item in await session.scalars(
            select(Item).where(Item.id.in_({line.item_id for line in lines}))
        )
    }
    for index, line in enumerate(lines):
        item = found.get(line.item_id)
        if item is None:
            raise ServiceError(ErrorCode.NOT_FOUND, "No such item", line_field(index, "item_id"))
        if item.archived:
            raise ServiceError(
                ErrorCode.INVALID, "Archived items cannot be ordered", line_field(index, "item_id")
            )


async def _number_taken(session: AsyncSession, number: str, order_id: int | None) -> bool:
    clash = await session.scalar(select(PurchaseOrder.id).where(PurchaseOrder.number == number))
    return clash is not None and clash != order_id


async def _store(session: AsyncSession, order: PurchaseOrder, draft: PurchaseOrderDraft) -> None:
    """Write the order's fields and replace its lines; DUPLICATE when the number is taken."""
    if draft.number is not None and await _number_taken(session, draft.number, order.id):
        raise ServiceError(ErrorCode.DUPLICATE, f"Number {draft.number} is taken", ["number"])
    order.supplier = draft.supplier
    order.warehouse_id = draft.warehouse_id
    order.expected_at = draft.expected_at
    # Until the id is known a generated number is a unique placeholder.
    order.number = draft.number or order.number or f"~{uuid.uuid4().hex}"
    order.updated_at = utcnow()
    session.add(order)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        # A concurrent order took the number between the check and the flush.
        raise ServiceError(
            ErrorCode.DUPLICATE, f"Number {draft.number} is taken", ["number"]
        ) from None
    if order.number.startswith("~"):
        order.number = await _generated_number(session, order.id)
        await session.flush()
    await session.execute(
        delete(PurchaseOrderLine).where(PurchaseOrderLine.purchase_order_id == order.id)
    )
    values = [
        {"purchase_order_id": order.id, "item_id": line.item_id,
         "quantity_ordered": line.quantity, "quantity_received": 0}
        for line in draft.lines
    ]  # fmt: skip
    await session.execute(insert(PurchaseOrderLine), values)


async def _generated_number(session: AsyncSession, order_id: int) -> str:
    # Unique by id; a suffix only when someone typed that number by hand earlier.
    number, suffix = f"PO-{order_id:05d}", 1
    while await _number_taken(session, number, order_id):
        suffix += 1
        number = f"PO-{order_id:05d}-{suffix}"
    return number


async def create_purchase_order(
    session: AsyncSession, draft: PurchaseOrderDraft, *, actor_id: int
) -> PurchaseOrder:
    """A new DRAFT order; numbered PO-00042 by its id when no number is given."""
    clean = draft.cleaned()
    await get_warehouse(session, clean.warehouse_id)
    await _check_items(session, clean.lines)
    order = PurchaseOrder(status=PurchaseOrderStatus.DRAFT, created_by=actor_id)
    await _store(session, order, clean)
    return order


async def update_purchase_order(
    session: AsyncSession, purchase_order_id: int, draft: PurchaseOrderDraft
) -> PurchaseOrder:
    """Replace a DRAFT's fields and lines; a number left out keeps the current one."""
    clean = draft.cleaned()
    order = await _locked(session, purchase_order_id)
    _refuse_unless(order, PurchaseOrderStatus.DRAFT, doing="change it")
    await get_warehouse(session, clean.warehouse_id)
    await _check_items(session, clean.lines)
    await _store(session, order, clean)
    return order


async def order_purchase_order(session: AsyncSession, purchase_order_id: int) -> PurchaseOrder:
    """Send a DRAFT to its supplier: its lines now count as incoming."""
    order = await _locked(session, purchase_order_id)
    _refuse_unless(order, PurchaseOrderStatus.DRAFT, doing="order it")
    order.status = PurchaseOrderStatus.ORDERED
    order.ordered_at = order.updated_at = utcnow()
    # Levels exist from now on, so the incoming units show on the warehouse's levels.
    items = await session.scalars(
        select(PurchaseOrderLine.item_id).where(PurchaseOrderLine.purchase_order_id == order.id)
    )
    for item_id in items.all():
        await level_id(session, item_id, order.warehouse_id)
    await session.flush()
    return order


async def cancel_purchase_order(session: AsyncSession, purchase_order_id: int) -> PurchaseOrder:
    """Cancel what has not arrived; units already received stay received."""
    order = await _locked(session, purchase_order_id)
    _refuse_unless(
        order,
        PurchaseOrderStatus.DRAFT,
        *OPEN_PURCHASE_ORDER,
        doing="cancel it",
    )
    order.status = PurchaseOrderStatus.CANCELLED
    order.updated_at = utcnow()
    await session.flush()
    return order


async def _order_lines(session: AsyncSession, order_id: int) -> list[PurchaseOrderLine]:
    stmt = (
        select(PurchaseOrderLine)
        .where(PurchaseOrderLine.purchase_order_id == order_id)
        .order_by(PurchaseOrderLine.id)
        .execution_options(populate_existing=True)
    )
    return list((await session.scalars(stmt)).all())


async def _add_received(session: AsyncSession, line_id: int, quantity: int, over: bool) -> None:
    # Conditional like every stock change, though the order's row lock already serialises.
    stmt = update(PurchaseOrderLine).where(PurchaseOrderLine.id == line_id)
    if not over:
        received = PurchaseOrderLine.quantity_received + quantity
        stmt = stmt.where(received <= PurchaseOrderLine.quantity_ordered)
    stmt = stmt.values(quantity_received=PurchaseOrderLine.quantity_received + quantity)
    changed = await session.execute(stmt.returning(PurchaseOrderLine.id))
    assert changed.first() is not None, "checked under the order's lock"


async def receive_purchase_order(
    session: AsyncSession, request: ReceiveRequest, *, actor_id: int
) -> PurchaseOrderReceipt:
    """Receive units against an open order's lines: RECEIPT rows referencing its number."""

    async def perform() -> PurchaseOrderReceipt:
        order = await _locked(session, request.purchase_order_id)
        if order.status is PurchaseOrderStatus.DRAFT:
            raise ServiceError(ErrorCode.INVALID, "Order it before receiving", ["id"])
        _refuse_unless(order, *OPEN_PURCHASE_ORDER, doing="receive more")
        on_order = {line.item_id: line for line in await _order_lines(session, order.id)}
        planned: list[tuple[int, PurchaseOrderLine, int]] = []
        for index, line in enumerate(request.lines):
            ordered = on_order.get(line.item_id)
            if ordered is None:
                raise ServiceError(
                    ErrorCode.INVALID,
                    "This item is not on the purchase order",
                    line_field(index, "item_id"),
                )
            outstanding = max(ordered.quantity_ordered - ordered.quantity_received, 0)
            if line.quantity > outstanding and not request.allow_over_receipt:
                raise ServiceError(
                    ErrorCode.INVALID,
                    f"Only {outstanding} units are outstanding on this line and "
                    "over-receipt was not allowed",
                    line_field(index, "quantity"),
                )
            level = await level_id(session, line.item_id, order.warehouse_id)
            planned.append((level, ordered, line.quantity))
        levels, movements = [], []
        for level, ordered, quantity in sorted(planned, key=lambda step: step[0]):
            item = await session.get_one(Item, ordered.item_id)
            await expire_for_level(session, item.id, order.warehouse_id, item.reorder_point)
            await _add_received(session, ordered.id, quantity, request.allow_over_receipt)
            changed = await change_level(session, level, on_hand=quantity)
            assert changed is not None, "a receipt only adds units"
            movements.append(
                await write_ledger(
                    session,
                    changed,
                    MovementKind.RECEIPT,
                    quantity,
                    actor_id=actor_id,
                    reason=f"Received from {order.supplier}",
                    reference=order.number,
                    available_before=changed.available - quantity,
                    reorder_point=item.reorder_point,
                )
            )
            levels.append(changed)
        lines = await _order_lines(session, order.id)
        done = all(line.quantity_received >= line.quantity_ordered for line in lines)
        order.status = (
            PurchaseOrderStatus.RECEIVED if done else PurchaseOrderStatus.PARTIALLY_RECEIVED
        )
        order.updated_at = utcnow()
        await session.flush()
        return PurchaseOrderReceipt(order, levels, movements)

    return await run_keyed(
        session, request, actor_id=actor_id, result_type=PurchaseOrderReceipt, perform=perform
    )
