"""Run a fetch tree: the root rows, then each relationship for all parents in one statement.

The statement count depends on the tree's shape only, never on how many rows a level holds.
Relationships are read from the models' declarations (``lazy="raise"`` ones, declared for
this), so a join is written once, in the model.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from db import items, users
from db.models import Item
from db.pagination import Page
from db.plan import nested
from db.plan.tree import PageResult, Record, Relations


@dataclass(frozen=True, slots=True)
class _Relationship:
    statement: Select[Any]
    local: str  # the parent's attribute holding the key
    remote: str  # the target row's attribute it matches
    many: bool


_RELATIONSHIPS: dict[tuple[type[Any], str], tuple[type[Any], _Relationship]] = {}


def _relationship(model: type[Any], name: str) -> tuple[type[Any], _Relationship]:
    found = _RELATIONSHIPS.get((model, name))
    if found is None:
        found = _RELATIONSHIPS[model, name] = _read_relationship(model, name)
    return found


def _read_relationship(model: type[Any], name: str) -> tuple[type[Any], _Relationship]:
    prop = inspect(model).relationships[name]
    target = prop.mapper.class_
    ((local, remote),) = prop.local_remote_pairs
    stmt = select(target.__table__).where(remote.in_(bindparam("keys", expanding=True)))
    if prop.order_by:
        stmt = stmt.order_by(*prop.order_by)
    return target, _Relationship(stmt, local.key, remote.key, prop.uselist)


def _joinable(model: type[Any], relations: Relations) -> bool:
    """Whether every relationship below is to-one and a leaf: one join then loads them."""
    return (
        bool(relations.below)
        and not relations.pages
        and all(
            not below.below and not below.pages and not _relationship(model, name)[1].many
            for name, below in relations.below.items()
        )
    )


_JOINED: dict[tuple[Any, ...], tuple[Select[Any], list[tuple[str, Any, int, int]]]] = {}


def _joined(model: type[Any], name: str, relations: Relations) -> tuple[Select[Any], Any]:
    """``name``'s statement with its to-one children joined: rows split per table after."""
    shape = (model, name, tuple(relations.below))
    found = _JOINED.get(shape)
    if found is None:
        target, rel = _relationship(model, name)
        table = target.__table__
        stmt = rel.statement.add_columns()
        parts: list[tuple[str, Any, int, int]] = [("", _row_type(table), len(table.columns), 0)]
        for child in relations.below:
            child_target, child_rel = _relationship(target, child)
            child_table = child_target.__table__.alias(f"_{child}")
            stmt = stmt.add_columns(*child_table.columns).outerjoin(
                child_table,
                child_table.c[child_rel.remote] == table.c[child_rel.local],
            )
            key = list(child_table.columns.keys()).index(child_rel.remote)
            parts.append((child, _row_type(child_table), len(child_table.columns), key))
        found = _JOINED[shape] = (stmt, parts)
    return found


def _row_type(table: Any) -> Any:
    return namedtuple(f"{table.name}_row", [c.key for c in table.columns])


async def load_relations(
    session: AsyncSession, model: type[Any], records: Sequence[Record], relations: Relations
) -> None:
    """Fill ``record.rel`` for every relationship in ``relations``, level by level."""
    for name, below in relations.below.items():
        target, rel = _relationship(model, name)
        keys = {getattr(r.row, rel.local) for r in records}
        keys.discard(None)
        rows: list[Record] = []
        if keys:
            if _joinable(target, below):
                rows = await _fetch_joined(session, model, name, below, keys)
            else:
                result = await session.execute(rel.statement, {"keys": list(keys)})
                rows = [Record(row) for row in result]
        if rel.many:
            groups: dict[Any, list[Record]] = {}
            for child in rows:
                groups.setdefault(getattr(child.row, rel.remote), []).append(child)
            for record in records:
                record.rel[name] = groups.get(getattr(record.row, rel.local), [])
        else:
            found = {getattr(child.row, rel.remote): child for child in rows}
            for record in records:
                record.rel[name] = found.get(getattr(record.row, rel.local))
        if (below.below or below.pages) and rows and not _joinable(target, below):
            await load_relations(session, target, rows, below)
    for key, spec in relations.pages.items():
        target, children = await nested.load_pages(session, records, key, spec)
        if children and (spec.below.below or spec.below.pages):
            await load_relations(session, target, children, spec.below)


async def _fetch_joined(
    session: AsyncSession, model: type[Any], name: str, below: Relations, keys: set[Any]
) -> list[Record]:
    stmt, parts = _joined(model, name, below)
    (_, own_type, own_width, _), children = parts[0], parts[1:]
    records = []
    for row in await session.execute(stmt, {"keys": list(keys)}):
        record = Record(own_type._make(row[:own_width]))
        start = own_width
        for child, child_type, width, key in children:
            values = row[start : start + width]
            start += width
            # An outer join's missing row comes back as all NULLs, its key included.
            record.rel[child] = None if values[key] is None else Record(child_type._make(values))
        records.append(record)
    return records


ListFn = Callable[..., Awaitable[Page[Any]]]
CountFn = Callable[..., Awaitable[int]]


async def page(
    session: AsyncSession,
    model: type[Any],
    rows: tuple[ListFn, tuple[Any, ...]],
    count: tuple[CountFn, tuple[Any, ...]],
    *,
    total: bool,
    relations: Relations,
) -> PageResult:
    """A root page by the list function that serves the resolvers, then its relations.

    ``rows`` and ``count`` are the db functions (``db.items.list_items``...) with their
    arguments after the session, so filters, sorting and keyset paging stay written once.
    The page runs even when only the total is selected: its cursors are checked there.
    """
    list_fn, list_args = rows
    found = await list_fn(session, *list_args)
    records = [Record(row) for row in found.nodes]
    if records:
        await load_relations(session, model, records, relations)
    result = Page(records, found.positions, found.has_next_page, found.has_previous_page)
    count_fn, count_args = count
    return PageResult(result, await count_fn(session, *count_args) if total else None)


async def users_by_id(
    session: AsyncSession, ids: Sequence[int], relations: Relations
) -> list[Record | None]:
    rows = await users.users_by_id(session, ids)
    return [None if row is None else Record(row) for row in rows]


async def items_by_key(
    session: AsyncSession, ids: Sequence[int], skus: Sequence[str], relations: Relations
) -> list[Record | None]:
    """Items by primary key, then by SKU, in that order; None where none matched."""
    rows: list[Item | None] = []
    if ids:
        rows.extend(await items.items_by_id(session, ids))
    if skus:
        rows.extend(await items.items_by_sku(session, skus))
    records = [None if row is None else Record(row) for row in rows]
    present = [r for r in records if r is not None]
    if present:
        await load_relations(session, Item, present, relations)
    return records
