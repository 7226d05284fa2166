"""Item queries: filtered, sorted, paginated lists and batch loads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db import batch
from db.categories import descendant_ids_cte
from db.models import Item, StockLevel
from db.pagination import Page, PageArgs, SortKey, count, paginate


class ItemSort(StrEnum):
    NAME = "NAME"
    SKU = "SKU"
    PRICE = "PRICE"
    TOTAL_ON_HAND = "TOTAL_ON_HAND"
    CREATED_AT = "CREATED_AT"


@dataclass(frozen=True, slots=True)
class ItemFilterSpec:
    search: str | None = None
    category_id: int | None = None
    warehouse_id: int | None = None
    low_stock: bool | None = None
    # None hides archived items, as a shop floor expects; True shows only archived ones.
    archived: bool | None = False
    available_at_least: int | None = None
    available_at_most: int | None = None


@dataclass(frozen=True, slots=True)
class ItemOrderSpec:
    field: ItemSort = ItemSort.NAME
    descending: bool = False


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _stock_totals(warehouse_id: int | None) -> Any:
    stmt = select(
        StockLevel.item_id.label("item_id"),
        func.sum(StockLevel.on_hand).label("on_hand"),
        func.sum(StockLevel.on_hand - StockLevel.reserved).label("available"),
    ).group_by(StockLevel.item_id)
    if warehouse_id is not None:
        stmt = stmt.where(StockLevel.warehouse_id == warehouse_id)
    return stmt.subquery("totals")


def _filtered(spec: ItemFilterSpec, order: ItemOrderSpec) -> tuple[Select[Any], dict[str, Any]]:
    """The filtered statement plus the expressions sorting may need."""
    totals = None
    needs_totals = (
        spec.low_stock is not None
        or spec.available_at_least is not None
        or spec.available_at_most is not None
        or order.field is ItemSort.TOTAL_ON_HAND
    )
    stmt = select(Item)
    exprs: dict[str, Any] = {}
    if needs_totals:
        totals = _stock_totals(spec.warehouse_id)
        stmt = stmt.outerjoin(totals, totals.c.item_id == Item.id)
        exprs["on_hand"] = func.coalesce(totals.c.on_hand, 0)
        exprs["available"] = func.coalesce(totals.c.available, 0)
    conditions: list[ColumnElement[bool]] = []
    if spec.archived is not None:
        conditions.append(Item.archived.is_(spec.archived))
    if spec.search:
        pattern = f"%{_escape_like(spec.search.lower())}%"
        conditions.append(
            or_(
                func.lower(Item.name).like(pattern, escape="\\"),
                func.lower(Item.sku).like(pattern, escape="\\"),
            )
        )
    if spec.category_id is not None:
        subtree = descendant_ids_cte(spec.category_id)
        conditions.append(Item.category_id.in_(select(subtree.c.id)))
    if spec.warehouse_id is not None:
        conditions.append(
            Item.id.in_(
                select(StockLevel.item_id).where(StockLevel.warehouse_id == spec.warehouse_id)
            )
        )
    if spec.low_stock is not None:
        low = exprs["available"] <= Item.reorder_point
        conditions.append(low if spec.low_stock else ~low)
    if spec.available_at_least is not None:
        conditions.append(exprs["available"] >= spec.available_at_least)
    if spec.available_at_most is not None:
        conditions.append(exprs["available"] <= spec.available_at_most)
    if conditions:
        stmt = stmt.where(and_(*conditions))
    return stmt, exprs


def _sort_keys(order: ItemOrderSpec, exprs: dict[str, Any]) -> list[SortKey]:
    column: Any = {
        ItemSort.NAME: Item.name,
        ItemSort.SKU: Item.sku,
        ItemSort.PRICE: Item.unit_price,
        ItemSort.CREATED_AT: Item.created_at,
        ItemSort.TOTAL_ON_HAND: exprs.get("on_hand"),
    }[order.field]
    keys = [SortKey(column, order.descending)]
    if order.field is not ItemSort.SKU:  # sku is unique on its own
        keys.append(SortKey(Item.id, order.descending))
    return keys


async def list_items(
    session: AsyncSession, spec: ItemFilterSpec, order: ItemOrderSpec, args: PageArgs
) -> Page[Item]:
    stmt, exprs = _filtered(spec, order)
    return await paginate(session, stmt, _sort_keys(order, exprs), args)


async def count_items(session: AsyncSession, spec: ItemFilterSpec) -> int:
    stmt, _ = _filtered(spec, ItemOrderSpec())
    return await count(session, stmt)


async def list_items_in_category(
    session: AsyncSession, category_id: int, args: PageArgs
) -> Page[Item]:
    return await list_items(
        session, ItemFilterSpec(category_id=category_id), ItemOrderSpec(), args
    )


async def items_by_id(session: AsyncSession, ids: Sequence[int]) -> list[Item | None]:
    return await batch.by_ids(session, Item, ids)


async def items_by_sku(session: AsyncSession, skus: Sequence[str]) -> list[Item | None]:
    rows = (await session.scalars(select(Item).where(Item.sku.in_(set(skus))))).all()
    found = {row.sku: row for row in rows}
    return [found.get(sku) for sku in skus]
