"""Generic batch loads for dataloaders: results in key order, None or [] for misses.

Statements are built once per shape with an expanding IN parameter: constructing and
coercing a fresh ``select`` per batch cost more than executing it. A batch of one key (a
request for one object) compares with ``=`` instead: an expanding parameter is rendered
into the SQL text on every execution.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

M = TypeVar("M")

_STATEMENTS: dict[tuple[Any, ...], Select[Any]] = {}


def _statement(
    model: type[Any], column: InstrumentedAttribute[Any], order_by: tuple[Any, ...],
    one: bool = False,
) -> Select[Any]:
    shape = (model, column.key, order_by, one)
    stmt = _STATEMENTS.get(shape)
    if stmt is None:
        condition = column == bindparam("key") if one else column.in_(
            bindparam("keys", expanding=True))
        stmt = select(model).where(condition)
        if order_by:
            stmt = stmt.order_by(*order_by)
        _STATEMENTS[shape] = stmt
    return stmt


async def by_ids(session: AsyncSession, model: type[M], ids: Sequence[int]) -> list[M | None]:
    pk: InstrumentedAttribute[int] = model.id  # type: ignore[attr-defined]
    if len(ids) == 1:
        rows = (await session.scalars(_statement(model, pk, (), one=True), {"key": ids[0]})).all()
    else:
        rows = (await session.scalars(_statement(model, pk, ()), {"keys": list(set(ids))})).all()
    found = {row.id: row for row in rows}
    return [found.get(i) for i in ids]


async def grouped_by(
    session: AsyncSession,
    model: type[M],
    column: InstrumentedAttribute[Any],
    keys: Sequence[Any],
    *order_by: Any,
) -> list[list[M]]:
    stmt = _statement(model, column, order_by)
    groups: dict[Any, list[M]] = defaultdict(list)
    for row in (await session.scalars(stmt, {"keys": list(set(keys))})).all():
        groups[getattr(row, column.key)].append(row)
    return [groups.get(key, []) for key in keys]
