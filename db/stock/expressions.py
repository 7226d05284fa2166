"""The stock rules that several places need, each defined once.

``StockLevel.available`` (a hybrid property on the model) is the one definition of
available stock, in SQL and in Python (``available = on hand - reserved - damaged - quality
control - safety stock``, never negative). Here: the low-stock rule, its crossing, the
per-item totals that lists, filters, sorting and the summary all aggregate the same way, and
the stock on its way to a level (incoming on purchase orders, in transit on transfers).
The functions take plain ints or SQL expressions alike, so services, queries, resolvers and
the read planner share them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, Subquery, func, select

from db.models import (
    OPEN_PURCHASE_ORDER,
    PurchaseOrder,
    PurchaseOrderLine,
    StockLevel,
    Transfer,
    TransferLine,
    TransferStatus,
)


def is_low(available: Any, reorder_point: Any) -> Any:
    """Low on stock: available at or below the reorder point (an int or a SQL condition)."""
    return available <= reorder_point


def crossed_low(available_before: int, available_after: int, reorder_point: int) -> bool:
    """The low-stock alert fires on the crossing only, not on every change below the line."""
    return not is_low(available_before, reorder_point) and bool(
        is_low(available_after, reorder_point)
    )


def item_totals(warehouse_id: int | None = None, name: str = "totals") -> Subquery:
    """Per item: ``item_id``, summed ``on_hand`` and ``available`` (one warehouse or all).

    Items without levels have no row: outer-join and read through ``totals_of``.
    """
    stmt = select(
        StockLevel.item_id.label("item_id"),
        func.sum(StockLevel.on_hand).label("on_hand"),
        func.sum(StockLevel.available).label("available"),
    ).group_by(StockLevel.item_id)
    if warehouse_id is not None:
        stmt = stmt.where(StockLevel.warehouse_id == warehouse_id)
    return stmt.subquery(name)


def totals_of(totals: Subquery) -> tuple[ColumnElement[int], ColumnElement[int]]:
    """(on_hand, available) of an outer-joined ``item_totals``, zero for items with no levels."""
    return func.coalesce(totals.c.on_hand, 0), func.coalesce(totals.c.available, 0)


def incoming_by_level(item_ids: Sequence[int] | None = None) -> Select[int, int, int]:
    """Per (``item_id``, ``warehouse_id``): ``quantity`` ordered and not yet received on
    open purchase orders (lines received beyond their order add nothing)."""
    outstanding = PurchaseOrderLine.quantity_ordered - PurchaseOrderLine.quantity_received
    stmt = (
        select(
            PurchaseOrderLine.item_id.label("item_id"),
            PurchaseOrder.warehouse_id.label("warehouse_id"),
            func.sum(outstanding).label("quantity"),
        )
        .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
        .where(PurchaseOrder.status.in_(OPEN_PURCHASE_ORDER), outstanding > 0)
        .group_by(PurchaseOrderLine.item_id, PurchaseOrder.warehouse_id)
    )
    if item_ids is not None:
        stmt = stmt.where(PurchaseOrderLine.item_id.in_(set(item_ids)))
    return stmt


def in_transit_by_level(item_ids: Sequence[int] | None = None) -> Select[int, int, int]:
    """Per (``item_id``, ``warehouse_id`` of the destination): ``quantity`` shipped on
    transfers still in transit."""
    stmt = (
        select(
            TransferLine.item_id.label("item_id"),
            Transfer.to_warehouse_id.label("warehouse_id"),
            func.sum(TransferLine.quantity).label("quantity"),
        )
        .join(Transfer, Transfer.id == TransferLine.transfer_id)
        .where(Transfer.status == TransferStatus.IN_TRANSIT)
        .group_by(TransferLine.item_id, Transfer.to_warehouse_id)
    )
    if item_ids is not None:
        stmt = stmt.where(TransferLine.item_id.in_(set(item_ids)))
    return stmt
