"""Exports: items, stock levels and the ledger, read in keyset batches.

Each function yields lists of plain tuples in the order of its columns, one batch of
``BATCH`` rows at a time (``WHERE id > last ORDER BY id LIMIT n``), so memory stays the same
whatever the table's size and no cursor is held open between batches. Column names are the
imports' (``db.imports.columns``), so an exported file re-imports unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.dialects import money_text
from db.imports.columns import ITEM_COLUMNS, MOVEMENT_EXPORT_COLUMNS, STOCK_EXPORT_COLUMNS
from db.imports.paths import CategoryTree
from db.models import Item, MovementKind, StockLevel, StockMovement, User, Warehouse
from db.stock.expressions import is_low

BATCH = 2000

Rows = AsyncIterator[list[tuple[Any, ...]]]


def item_columns(with_cost: bool) -> tuple[str, ...]:
    """``unit_cost`` only for those who may see it (MANAGER and above)."""
    return ITEM_COLUMNS if with_cost else tuple(c for c in ITEM_COLUMNS if c != "unit_cost")


async def _batches(session: AsyncSession, stmt: Any, key: Any) -> AsyncIterator[Sequence[Any]]:
    """``stmt`` (whose first column is ``key``) in ascending key order, batch by batch.

    The next batch is fetched while the caller encodes and sends this one, so the database's
    time overlaps ours; still at most two batches are held.
    """
    # Core, not the ORM: plain tuples without the ORM's per-row bookkeeping.
    connection = await session.connection()

    async def fetch(after: Any) -> Sequence[Any]:
        page = stmt if after is None else stmt.where(key > after)
        return (await connection.execute(page.order_by(key).limit(BATCH))).all()

    ahead = asyncio.ensure_future(fetch(None))
    try:
        while rows := await ahead:
            ahead = asyncio.ensure_future(fetch(rows[-1][0]))
            yield rows
    finally:
        ahead.cancel()
        await asyncio.gather(ahead, return_exceptions=True)


async def items(session: AsyncSession, *, with_cost: bool) -> Rows:
    """Every item, archived ones included, with its category as a path and money as text."""
    tree = await CategoryTree.load(session)
    stmt = select(
        Item.id,
        Item.sku,
        Item.name,
        Item.description,
        Item.category_id,
        money_text(session, Item.unit_price),
        money_text(session, Item.unit_cost),
        Item.reorder_point,
        Item.archived,
    )
    async for rows in _batches(session, stmt, Item.id):
        out: list[tuple[Any, ...]] = []
        for _, sku, name, description, category_id, price, cost, reorder, archived in rows:
            path = None if category_id is None else tree.path_of(category_id)
            if with_cost:
                out.append((sku, name, description, path, price, cost, reorder, archived))
            else:
                out.append((sku, name, description, path, price, reorder, archived))
        yield out


async def warehouse_id(session: AsyncSession, code: str) -> int | None:
    return await session.scalar(select(Warehouse.id).where(Warehouse.code == code))


async def stock(session: AsyncSession, warehouse: int | None) -> Rows:
    """One row per stock level: ``STOCK_EXPORT_COLUMNS``."""
    stmt = (
        select(
            StockLevel.id,
            Item.sku,
            Warehouse.code,
            StockLevel.on_hand,
            StockLevel.reserved,
            StockLevel.available,
            Item.reorder_point,
        )
        .join(Item, Item.id == StockLevel.item_id)
        .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
    )
    if warehouse is not None:
        stmt = stmt.where(StockLevel.warehouse_id == warehouse)
    async for rows in _batches(session, stmt, StockLevel.id):
        yield [
            (sku, code, on_hand, reserved, available, reorder, bool(is_low(available, reorder)))
            for _, sku, code, on_hand, reserved, available, reorder in rows
        ]


@dataclass(frozen=True, slots=True)
class MovementRange:
    since: datetime | None = None
    until: datetime | None = None
    kinds: tuple[MovementKind, ...] = ()


async def movements(session: AsyncSession, wanted: MovementRange) -> Rows:
    """The ledger, oldest first: ``MOVEMENT_EXPORT_COLUMNS`` (actor as an email)."""
    stmt = (
        select(
            StockMovement.id,
            StockMovement.created_at,
            Item.sku,
            Warehouse.code,
            StockMovement.kind,
            StockMovement.delta,
            StockMovement.on_hand_after,
            StockMovement.reserved_after,
            StockMovement.reason,
            StockMovement.reference,
            User.email,
        )
        .join(Item, Item.id == StockMovement.item_id)
        .join(Warehouse, Warehouse.id == StockMovement.warehouse_id)
        .outerjoin(User, User.id == StockMovement.actor_id)
    )
    if wanted.since is not None:
        stmt = stmt.where(StockMovement.created_at >= wanted.since)
    if wanted.until is not None:
        stmt = stmt.where(StockMovement.created_at < wanted.until)
    if wanted.kinds:
        stmt = stmt.where(StockMovement.kind.in_(wanted.kinds))
    async for rows in _batches(session, stmt, StockMovement.id):
        yield [tuple(row) for row in rows]


__all__ = [
    "BATCH",
    "ITEM_COLUMNS",
    "MOVEMENT_EXPORT_COLUMNS",
    "STOCK_EXPORT_COLUMNS",
    "MovementRange",
    "item_columns",
    "items",
    "movements",
    "stock",
    "warehouse_id",
]
