"""Items: filtered, sorted, paginated lists, batch loads, and catalogue writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db import batch, events, validation
from db.categories import descendant_ids_cte
from db.errors import ErrorCode, ServiceError
from db.events import ItemChange, ItemChanged
from db.models import Category, Image, Item, Reservation, StockLevel, StockMovement, utcnow
from db.pagination import Page, PageArgs, SortKey, count, paginate
from db.stock.expressions import is_low, item_totals, totals_of
from db.stock.pipeline import is_on_documents


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
    # Lists hide archived items, as a shop floor expects; True shows only archived ones.
    archived: bool = False
    available_at_least: int | None = None
    available_at_most: int | None = None


@dataclass(frozen=True, slots=True)
class ItemOrderSpec:
    field: ItemSort = ItemSort.NAME
    descending: bool = False


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(spec: ItemFilterSpec, order: ItemOrderSpec) -> tuple[Select[Any], dict[str, Any]]:
    """The filtered statement plus the expressions sorting may need."""
    needs_totals = (
        spec.low_stock is not None
        or spec.available_at_least is not None
        or spec.available_at_most is not None
        or order.field is ItemSort.TOTAL_ON_HAND
    )
    stmt = select(Item)
    exprs: dict[str, Any] = {}
    if needs_totals:
        totals = item_totals(spec.warehouse_id)
        stmt = stmt.outerjoin(totals, totals.c.item_id == Item.id)
        exprs["on_hand"], exprs["available"] = totals_of(totals)
    conditions: list[ColumnElement[bool]] = [Item.archived.is_(spec.archived)]
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
        low = is_low(exprs["available"], Item.reorder_point)
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


def page_keys(order: ItemOrderSpec) -> list[SortKey]:
    """The sort keys of an order needing no totals (not TOTAL_ON_HAND), for nested pages."""
    return _sort_keys(order, {})


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


@dataclass(frozen=True, slots=True)
class ItemDraft:
    """A new item's fields."""

    sku: str
    name: str
    unit_price: Decimal
    description: str | None = None
    category_id: int | None = None
    unit_cost: Decimal | None = None
    reorder_point: int | None = None


class Keep:
    """Marks a field of an ``ItemPatch`` that the caller leaves as it is."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP = Keep()


@dataclass(frozen=True, slots=True)
class ItemPatch:
    """Changes to an item; ``KEEP`` leaves a field alone, ``None`` clears an optional one."""

    sku: str | Keep | None = KEEP
    name: str | Keep | None = KEEP
    description: str | Keep | None = KEEP
    category_id: int | Keep | None = KEEP
    unit_price: Decimal | Keep | None = KEEP
    unit_cost: Decimal | Keep | None = KEEP
    reorder_point: int | Keep | None = KEEP

    def changes(self) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if not isinstance(getattr(self, f.name), Keep)
        }


def _item_event(session: AsyncSession, kind: ItemChange, item: Item) -> None:
    events.record(session, ItemChanged(kind=kind, item_id=item.id, sku=item.sku))


async def _clean(
    session: AsyncSession, values: dict[str, Any], item_id: int | None
) -> dict[str, Any]:
    """Validate the given fields; errors name the field (``unit_price``), not an API path."""
    clean = dict(values)
    if "sku" in clean:
        clean["sku"] = validation.text(clean["sku"] or "", ["sku"], max_length=64, label="SKU")
    if "name" in clean:
        clean["name"] = validation.text(clean["name"] or "", ["name"], max_length=200, label="Name")
    if "description" in clean:
        clean["description"] = validation.optional_text(
            clean["description"], ["description"], max_length=10_000, label="Description"
        )
    if "unit_price" in clean:
        if clean["unit_price"] is None:
            raise ServiceError(ErrorCode.INVALID, "Unit price is required", ["unit_price"])
        validation.money(clean["unit_price"], ["unit_price"], "Unit price")
    if clean.get("unit_cost") is not None:
        validation.money(clean["unit_cost"], ["unit_cost"], "Unit cost")
    if "reorder_point" in clean:
        if clean["reorder_point"] is None:
            clean["reorder_point"] = 0
        validation.count(clean["reorder_point"], ["reorder_point"], "Reorder point")
    if clean.get("category_id") is not None:
        if await session.get(Category, clean["category_id"]) is None:
            raise ServiceError(ErrorCode.NOT_FOUND, "No such category", ["category_id"])
    if "sku" in clean:
        clash = await session.scalar(select(Item.id).where(Item.sku == clean["sku"]))
        if clash is not None and clash != item_id:
            raise ServiceError(ErrorCode.DUPLICATE, f"SKU {clean['sku']} is taken", ["sku"])
    return clean


async def create_item(session: AsyncSession, draft: ItemDraft) -> Item:
    values = {f.name: getattr(draft, f.name) for f in fields(draft)}
    clean = await _clean(session, values, None)
    item = Item(**clean)
    session.add(item)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        # A concurrent create won the race for the SKU.
        raise ServiceError(ErrorCode.DUPLICATE, f"SKU {clean['sku']} is taken", ["sku"]) from None
    _item_event(session, ItemChange.CREATED, item)
    return item


async def _bump(
    session: AsyncSession, item_id: int, values: dict[str, Any], expected_version: int | None
) -> Item:
    """Apply changes and bump the version; refuse when the version moved on meanwhile."""
    if await session.get(Item, item_id) is None:
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
            ["expected_version"],
        )
    return item


async def update_item(
    session: AsyncSession, item_id: int, patch: ItemPatch, expected_version: int | None
) -> Item:
    clean = await _clean(session, patch.changes(), item_id)
    item = await _bump(session, item_id, clean, expected_version)
    _item_event(session, ItemChange.UPDATED, item)
    return item


async def archive_item(session: AsyncSession, item_id: int) -> Item:
    item = await _bump(session, item_id, {"archived": True}, None)
    _item_event(session, ItemChange.ARCHIVED, item)
    return item


async def set_item_image(session: AsyncSession, item_id: int, image_id: int | None) -> Item:
    if image_id is not None and await session.get(Image, image_id) is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such upload", ["upload_id"])
    item = await _bump(session, item_id, {"image_id": image_id}, None)
    _item_event(session, ItemChange.UPDATED, item)
    return item


async def delete_item(session: AsyncSession, item_id: int) -> int:
    """Delete an item that never moved; one with history must be archived instead."""
    item = await session.get(Item, item_id)
    if item is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such item", ["id"])
    used = await session.scalar(
        select(StockMovement.id).where(StockMovement.item_id == item.id).limit(1)
    ) or await session.scalar(select(Reservation.id).where(Reservation.item_id == item.id).limit(1))
    if used:
        raise ServiceError(
            ErrorCode.IN_USE, "The item has stock history: archive it instead", ["id"]
        )
    if await is_on_documents(session, item_id=item.id):
        raise ServiceError(
            ErrorCode.IN_USE,
            "The item is on a purchase order or transfer: archive it instead",
            ["id"],
        )
    await session.execute(delete(StockLevel).where(StockLevel.item_id == item.id))
    await session.delete(item)
    await session.flush()
    _item_event(session, ItemChange.DELETED, item)
    return item.id
