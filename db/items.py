"""Item queries: filtered, sorted, paginated lists and batch loads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db import batch, validation
from db.categories import descendant_ids_cte
from db.errors import ErrorCode, ServiceError
from db.models import Category, Image, Item, Reservation, StockLevel, StockMovement, utcnow
from db.pagination import Page, PageArgs, SortKey, count, paginate
from db.session import record_event


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
    return await list_items(session, ItemFilterSpec(category_id=category_id), ItemOrderSpec(), args)


async def items_by_id(session: AsyncSession, ids: Sequence[int]) -> list[Item | None]:
    return await batch.by_ids(session, Item, ids)


async def items_by_sku(session: AsyncSession, skus: Sequence[str]) -> list[Item | None]:
    rows = (await session.scalars(select(Item).where(Item.sku.in_(set(skus))))).all()
    found = {row.sku: row for row in rows}
    return [found.get(sku) for sku in skus]


# ---------------------------------------------------------------- catalogue writes

ITEMS_CHANNEL = "items"


def _item_event(session: AsyncSession, kind: str, item_id: int) -> None:
    record_event(session, {"channel": ITEMS_CHANNEL, "kind": kind, "itemId": item_id})


async def _check_item_values(
    session: AsyncSession, values: dict[str, Any], prefix: Sequence[str]
) -> dict[str, Any]:
    clean = dict(values)
    if "sku" in clean:
        clean["sku"] = validation.text(clean["sku"], [*prefix, "sku"], max_length=64, label="SKU")
    if "name" in clean:
        clean["name"] = validation.text(
            clean["name"], [*prefix, "name"], max_length=200, label="Name"
        )
    if "description" in clean:
        clean["description"] = validation.optional_text(
            clean["description"], [*prefix, "description"], max_length=10_000, label="Description"
        )
    if "unit_price" in clean:
        if clean["unit_price"] is None:
            raise ServiceError(ErrorCode.INVALID, "Unit price is required", [*prefix, "unitPrice"])
        validation.money(clean["unit_price"], [*prefix, "unitPrice"], "Unit price")
    if clean.get("unit_cost") is not None:
        validation.money(clean["unit_cost"], [*prefix, "unitCost"], "Unit cost")
    if "reorder_point" in clean:
        if clean["reorder_point"] is None:
            clean["reorder_point"] = 0
        validation.count(clean["reorder_point"], [*prefix, "reorderPoint"], "Reorder point")
    if clean.get("category_id") is not None:
        if await session.get(Category, clean["category_id"]) is None:
            raise ServiceError(ErrorCode.NOT_FOUND, "No such category", [*prefix, "categoryId"])
    if "sku" in clean:
        clash = await session.scalar(select(Item.id).where(Item.sku == clean["sku"]))
        if clash is not None and clash != clean.get("_id"):
            raise ServiceError(
                ErrorCode.DUPLICATE, f"SKU {clean['sku']} is taken", [*prefix, "sku"]
            )
    clean.pop("_id", None)
    return clean


async def create_item(session: AsyncSession, values: dict[str, Any]) -> Item:
    clean = await _check_item_values(session, values, ["input"])
    clean.setdefault("reorder_point", 0)
    item = Item(**clean)
    session.add(item)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        # A concurrent create won the race for the SKU.
        raise ServiceError(
            ErrorCode.DUPLICATE, f"SKU {clean['sku']} is taken", ["input", "sku"]
        ) from None
    _item_event(session, "CREATED", item.id)
    return item


async def _bump(
    session: AsyncSession, item_id: int | None, values: dict[str, Any], expected_version: int | None
) -> Item:
    """Apply changes and bump the version; refuse when the version moved on meanwhile."""
    if item_id is None or await session.get(Item, item_id) is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such item", ["id"])
    stmt = update(Item).where(Item.id == item_id)
    if expected_version is not None:
        stmt = stmt.where(Item.version == expected_version)
    stmt = (
        stmt.values(**values, version=Item.version + 1, updated_at=utcnow())
        .returning(Item)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    item = (await session.scalars(stmt)).first()
    if item is None:
        current = await session.get_one(Item, item_id, populate_existing=True)
        raise ServiceError(
            ErrorCode.VERSION_CONFLICT,
            f"The item is at version {current.version}, not {expected_version}: reload it",
            ["expectedVersion"],
        )
    return item


async def update_item(
    session: AsyncSession, item_id: int | None, values: dict[str, Any], expected_version: int | None
) -> Item:
    clean = await _check_item_values(session, {**values, "_id": item_id}, ["input"])
    item = await _bump(session, item_id, clean, expected_version)
    _item_event(session, "UPDATED", item.id)
    return item


async def archive_item(session: AsyncSession, item_id: int | None) -> Item:
    item = await _bump(session, item_id, {"archived": True}, None)
    _item_event(session, "ARCHIVED", item.id)
    return item


async def set_item_image(session: AsyncSession, item_id: int | None, image_id: int | None) -> Item:
    if image_id is not None and await session.get(Image, image_id) is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such upload", ["uploadId"])
    item = await _bump(session, item_id, {"image_id": image_id}, None)
    _item_event(session, "UPDATED", item.id)
    return item


async def delete_item(session: AsyncSession, item_id: int | None) -> int:
    """Delete an item that never moved; one with history must be archived instead."""
    item = None if item_id is None else await session.get(Item, item_id)
    if item is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such item", ["id"])
    used = await session.scalar(
        select(StockMovement.id).where(StockMovement.item_id == item.id).limit(1)
    ) or await session.scalar(select(Reservation.id).where(Reservation.item_id == item.id).limit(1))
    if used:
        raise ServiceError(
            ErrorCode.IN_USE, "The item has stock history: archive it instead", ["id"]
        )
    await session.execute(delete(StockLevel).where(StockLevel.item_id == item.id))
    await session.delete(item)
    await session.flush()
    _item_event(session, "DELETED", item.id)
    return item.id
