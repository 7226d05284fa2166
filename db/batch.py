"""Generic batch loads for dataloaders: results in key order, None or [] for misses."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

M = TypeVar("M")


async def by_ids(session: AsyncSession, model: type[M], ids: Sequence[int]) -> list[M | None]:
    pk: InstrumentedAttribute[int] = model.id  # type: ignore[attr-defined]
    rows = (await session.scalars(select(model).where(pk.in_(set(ids))))).all()
    found = {row.id: row for row in rows}  # type: ignore[attr-defined]
    return [found.get(i) for i in ids]


async def grouped_by(
    session: AsyncSession,
    model: type[M],
    column: InstrumentedAttribute[Any],
    keys: Sequence[Any],
    *order_by: Any,
) -> list[list[M]]:
    stmt = select(model).where(column.in_(set(keys)))
    if order_by:
        stmt = stmt.order_by(*order_by)
    groups: dict[Any, list[M]] = defaultdict(list)
    for row in (await session.scalars(stmt)).all():
        groups[getattr(row, column.key)].append(row)
    return [groups.get(key, []) for key in keys]
