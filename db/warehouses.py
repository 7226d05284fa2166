"""Warehouse queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from db import batch, validation
from db.errors import ErrorCode, ServiceError
from db.models import Reservation, StockLevel, StockMovement, Warehouse, utcnow
from db.pagination import Page, PageArgs, SortKey, count, paginate
from db.stock.pipeline import is_on_documents


async def list_warehouses(session: AsyncSession, args: PageArgs) -> Page[Warehouse]:
    keys = [SortKey(Warehouse.code)]
    return await paginate(session, select(Warehouse), keys, args)


async def count_warehouses(session: AsyncSession) -> int:
    return await count(session, select(Warehouse))


async def warehouses_by_id(session: AsyncSession, ids: Sequence[int]) -> list[Warehouse | None]:
    return await batch.by_ids(session, Warehouse, ids)


async def _check(
    session: AsyncSession, warehouse_id: int | None, code: str, name: str, address: str | None
) -> tuple[str, str, str | None]:
    clean_code = validation.text(code, ["code"], max_length=32, label="Code")
    clean_name = validation.text(name, ["name"], max_length=200, label="Name")
    clean_address = validation.optional_text(
        address, ["address"], max_length=2_000, label="Address"
    )
    clash = await session.scalar(select(Warehouse.id).where(Warehouse.code == clean_code))
    if clash is not None and clash != warehouse_id:
        raise ServiceError(ErrorCode.DUPLICATE, f"Code {clean_code} is taken", ["code"])
    return clean_code, clean_name, clean_address


async def create_warehouse(
    session: AsyncSession, code: str, name: str, address: str | None
) -> Warehouse:
    clean = await _check(session, None, code, name, address)
    warehouse = Warehouse(code=clean[0], name=clean[1], address=clean[2])
    session.add(warehouse)
    await session.flush()
    return warehouse


async def update_warehouse(
    session: AsyncSession, warehouse_id: int, code: str, name: str, address: str | None
) -> Warehouse:
    warehouse = await session.get(Warehouse, warehouse_id)
    if warehouse is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such warehouse", ["id"])
    warehouse.code, warehouse.name, warehouse.address = await _check(
        session, warehouse.id, code, name, address
    )
    warehouse.updated_at = utcnow()
    await session.flush()
    return warehouse


async def delete_warehouse(session: AsyncSession, warehouse_id: int) -> int:
    """Delete an empty warehouse with no history; otherwise IN_USE."""
    warehouse = await session.get(Warehouse, warehouse_id)
    if warehouse is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such warehouse", ["id"])
    stocked = await session.scalar(
        select(StockLevel.id)
        .where(
            StockLevel.warehouse_id == warehouse.id,
            (StockLevel.on_hand > 0) | (StockLevel.reserved > 0),
        )
        .limit(1)
    )
    if stocked:
        raise ServiceError(ErrorCode.IN_USE, "Stock remains in this warehouse", ["id"])
    history = await session.scalar(
        select(StockMovement.id).where(StockMovement.warehouse_id == warehouse.id).limit(1)
    ) or await session.scalar(
        select(Reservation.id).where(Reservation.warehouse_id == warehouse.id).limit(1)
    )
    if history:
        raise ServiceError(ErrorCode.IN_USE, "The warehouse has stock history", ["id"])
    if await is_on_documents(session, warehouse_id=warehouse.id):
        raise ServiceError(
            ErrorCode.IN_USE, "The warehouse is on a purchase order or transfer", ["id"]
        )
    await session.execute(delete(StockLevel).where(StockLevel.warehouse_id == warehouse.id))
    await session.delete(warehouse)
    await session.flush()
    return warehouse.id
