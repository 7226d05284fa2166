"""The stock rules that several places need, each defined once.

``StockLevel.available`` (a hybrid property on the model) is the one definition of
available stock, in SQL and in Python. Here: the low-stock rule, its crossing, and the
per-item totals that lists, filters, sorting and the summary all aggregate the same way.
The functions take plain ints or SQL expressions alike, so services, queries, resolvers and
the read planner share them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Subquery, func, select

from db.models import StockLevel


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
