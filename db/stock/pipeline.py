"""Read side of stock on its way: purchase orders, transfers, incoming and in transit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, literal_column, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from db import batch
from db.models import (
    PurchaseOrder,
    PurchaseOrderLine,
    PurchaseOrderStatus,
    Transfer,
    TransferLine,
    TransferStatus,
)
from db.pagination import Page, PageArgs, SortKey, count, paginate
from db.stock.expressions import in_transit_by_level, incoming_by_level

# (item id, warehouse id): how stock levels are keyed where the level row may not matter.
LevelKey = tuple[int, int]


@dataclass(frozen=True, slots=True)
class OnItsWay:
    """Units heading for one level: ordered from suppliers, and shipped from warehouses."""

    incoming: int = 0
    in_transit: int = 0


async def on_its_way(session: AsyncSession, keys: Sequence[LevelKey]) -> list[OnItsWay]:
    """Incoming and in-transit units of many levels, in one statement."""
    item_ids = sorted({item_id for item_id, _ in keys})
    incoming = incoming_by_level(item_ids).add_columns(literal_column("0").label("transit"))
    transit = in_transit_by_level(item_ids).add_columns(literal_column("1").label("transit"))
    found: dict[LevelKey, dict[int, int]] = {}
    for item_id, warehouse_id, quantity, kind in await session.execute(
        union_all(incoming, transit)
    ):
        found.setdefault((item_id, warehouse_id), {})[kind] = int(quantity)
    results = []
    for key in keys:
        row = found.get(key, {})
        results.append(OnItsWay(incoming=row.get(0, 0), in_transit=row.get(1, 0)))
    return results


async def incoming_by_item(session: AsyncSession, item_ids: Sequence[int]) -> list[int]:
    """Incoming units per item, summed over its warehouses."""
    per_level = incoming_by_level(item_ids).subquery("incoming")
    stmt = select(per_level.c.item_id, func.sum(per_level.c.quantity)).group_by(per_level.c.item_id)
    found = {item_id: int(total) for item_id, total in await session.execute(stmt)}
    return [found.get(item_id, 0) for item_id in item_ids]


def _purchase_orders(status: PurchaseOrderStatus | None, warehouse_id: int | None) -> Any:
    stmt = select(PurchaseOrder)
    if status is not None:
        stmt = stmt.where(PurchaseOrder.status == status)
    if warehouse_id is not None:
        stmt = stmt.where(PurchaseOrder.warehouse_id == warehouse_id)
    return stmt


async def list_purchase_orders(
    session: AsyncSession,
    status: PurchaseOrderStatus | None,
    warehouse_id: int | None,
    args: PageArgs,
) -> Page[PurchaseOrder]:
    """Newest first."""
    keys = [SortKey(PurchaseOrder.id, descending=True)]
    return await paginate(session, _purchase_orders(status, warehouse_id), keys, args)


async def count_purchase_orders(
    session: AsyncSession, status: PurchaseOrderStatus | None, warehouse_id: int | None
) -> int:
    return await count(session, _purchase_orders(status, warehouse_id))


async def purchase_orders_by_id(
    session: AsyncSession, ids: Sequence[int]
) -> list[PurchaseOrder | None]:
    return await batch.by_ids(session, PurchaseOrder, ids)


async def lines_by_purchase_order_id(
    session: AsyncSession, ids: Sequence[int]
) -> list[list[PurchaseOrderLine]]:
    return await batch.grouped_by(
        session,
        PurchaseOrderLine,
        PurchaseOrderLine.purchase_order_id,
        ids,
        PurchaseOrderLine.id,
    )


def _transfers(status: TransferStatus | None, warehouse_id: int | None) -> Any:
    stmt = select(Transfer)
    if status is not None:
        stmt = stmt.where(Transfer.status == status)
    if warehouse_id is not None:
        stmt = stmt.where(
            or_(
                Transfer.from_warehouse_id == warehouse_id, Transfer.to_warehouse_id == warehouse_id
            )
        )
    return stmt


async def list_transfers(
    session: AsyncSession,
    status: TransferStatus | None,
    warehouse_id: int | None,
    args: PageArgs,
) -> Page[Transfer]:
    """Newest first; a warehouse matches transfers leaving it and those heading for it."""
    keys = [SortKey(Transfer.id, descending=True)]
    return await paginate(session, _transfers(status, warehouse_id), keys, args)


async def count_transfers(
    session: AsyncSession, status: TransferStatus | None, warehouse_id: int | None
) -> int:
    return await count(session, _transfers(status, warehouse_id))


async def transfers_by_id(session: AsyncSession, ids: Sequence[int]) -> list[Transfer | None]:
    return await batch.by_ids(session, Transfer, ids)


async def lines_by_transfer_id(
    session: AsyncSession, ids: Sequence[int]
) -> list[list[TransferLine]]:
    return await batch.grouped_by(
        session, TransferLine, TransferLine.transfer_id, ids, TransferLine.id
    )


async def is_on_documents(
    session: AsyncSession, *, item_id: int | None = None, warehouse_id: int | None = None
) -> bool:
    """Whether any purchase order or transfer names this item or warehouse (so it stays)."""
    checks: list[Any] = []
    if item_id is not None:
        checks += [
            select(PurchaseOrderLine.id).where(PurchaseOrderLine.item_id == item_id),
            select(TransferLine.id).where(TransferLine.item_id == item_id),
        ]
    if warehouse_id is not None:
        checks += [
            select(PurchaseOrder.id).where(PurchaseOrder.warehouse_id == warehouse_id),
            select(Transfer.id).where(
                or_(
                    Transfer.from_warehouse_id == warehouse_id,
                    Transfer.to_warehouse_id == warehouse_id,
                )
            ),
        ]
    for check in checks:
        if await session.scalar(check.limit(1)) is not None:
            return True
    return False
