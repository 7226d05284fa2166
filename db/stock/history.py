"""Stock as of any instant, rebuilt from the ledger.

Every ledger row carries its level's quantities right after it, and rows of one level are
written under that level's row lock, so their order by time is their order by id. A level
as of ``at`` is therefore its last row at or before ``at``: one probe per level down the
``(item_id, warehouse_id, created_at, id)`` index, whatever the length of the ledger. A level
with no row by then held nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Subquery, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from db.models import StockLevel, StockMovement, available_units


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One level's quantities at an instant."""

    level_id: int
    item_id: int
    warehouse_id: int
    on_hand: int
    reserved: int
    damaged: int
    quality_control: int
    safety_stock: int

    @property
    def available(self) -> int:
        value: int = available_units(
            self.on_hand, self.reserved, self.damaged, self.quality_control, self.safety_stock
        )
        return value


def snapshots_at(at: datetime, *conditions: ColumnElement[bool]) -> Select[Any]:
    """Each level matching ``conditions`` as of ``at``: the columns of ``Snapshot``."""
    row = aliased(StockMovement, name="earlier")
    last = (
        select(row.id)
        .where(
            row.item_id == StockLevel.item_id,
            row.warehouse_id == StockLevel.warehouse_id,
            row.created_at <= at,
        )
        .order_by(row.created_at.desc(), row.id.desc())
        .limit(1)
        .correlate(StockLevel)
        .scalar_subquery()
    )
    levels = (
        select(
            StockLevel.id.label("level_id"),
            StockLevel.item_id.label("item_id"),
            StockLevel.warehouse_id.label("warehouse_id"),
            last.label("movement_id"),
        )
        .where(*conditions)
        # OFFSET 0 keeps the subquery whole, so PostgreSQL probes the ledger once per level
        # instead of once more for the join that follows (SQLite reads it the same way).
        .offset(0)
        .subquery("levels")
    )
    found = StockMovement
    return (
        select(
            levels.c.level_id,
            levels.c.item_id,
            levels.c.warehouse_id,
            *(
                func.coalesce(column, 0).label(name)
                for name, column in (
                    ("on_hand", found.on_hand_after),
                    ("reserved", found.reserved_after),
                    ("damaged", found.damaged_after),
                    ("quality_control", found.quality_control_after),
                    ("safety_stock", found.safety_stock_after),
                )
            ),
        )
        .select_from(levels)
        .outerjoin(found, found.id == levels.c.movement_id)
    )


def item_totals_at(at: datetime, warehouse_id: int | None = None) -> Subquery:
    """``item_totals`` as of ``at``: per item, summed ``on_hand`` and ``available``."""
    conditions = [] if warehouse_id is None else [StockLevel.warehouse_id == warehouse_id]
    snaps = snapshots_at(at, *conditions).subquery("snapshots")
    available = available_units(
        snaps.c.on_hand,
        snaps.c.reserved,
        snaps.c.damaged,
        snaps.c.quality_control,
        snaps.c.safety_stock,
    )
    return (
        select(
            snaps.c.item_id.label("item_id"),
            func.sum(snaps.c.on_hand).label("on_hand"),
            func.sum(available).label("available"),
        )
        .group_by(snaps.c.item_id)
        .subquery("totals")
    )


async def snapshots(
    session: AsyncSession, at: datetime, *conditions: ColumnElement[bool]
) -> list[Snapshot]:
    """Levels matching ``conditions`` as of ``at``."""
    rows = await session.execute(snapshots_at(at, *conditions))
    return [Snapshot(*row) for row in rows]


async def snapshots_by_item(
    session: AsyncSession, keys: Sequence[tuple[datetime, int]]
) -> list[list[Snapshot]]:
    """Per (instant, item id): the item's levels at that instant, by warehouse."""
    wanted: dict[datetime, set[int]] = defaultdict(set)
    for at, item_id in keys:
        wanted[at].add(item_id)
    found: dict[tuple[datetime, int], list[Snapshot]] = defaultdict(list)
    for at, item_ids in wanted.items():
        for snap in await snapshots(session, at, StockLevel.item_id.in_(item_ids)):
            found[(at, snap.item_id)].append(snap)
    for group in found.values():
        group.sort(key=lambda snap: snap.warehouse_id)
    return [found.get(key, []) for key in keys]
