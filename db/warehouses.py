"""Warehouse queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db import batch
from db.models import Warehouse
from db.pagination import Page, PageArgs, SortKey, count, paginate


async def list_warehouses(session: AsyncSession, args: PageArgs) -> Page[Warehouse]:
    keys = [SortKey(Warehouse.code)]
    return await paginate(session, select(Warehouse), keys, args)


async def count_warehouses(session: AsyncSession) -> int:
    return await count(session, select(Warehouse))


async def warehouses_by_id(session: AsyncSession, ids: Sequence[int]) -> list[Warehouse | None]:
    return await batch.by_ids(session, Warehouse, ids)
