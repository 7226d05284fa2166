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
    target: type[Any]
    local: str  # the parent's attribute holding the key
    remote: str  # the target row's attribute it matches
    many: bool
    order_by: tuple[Any, ...]


_RELATIONSHIPS: dict[tuple[type[Any], str], _Relationship] = {}


def _relationship(model: type[Any], name: str) -> _Relationship:
    found = _RELATIONSHIPS.get((model, name))
    if found is None:
        prop = inspect(model).relationships[name]
        ((local, remote),) = prop.local_remote_pairs
        order = tuple(prop.order_by) if prop.order_by else ()
        found = _Relationship(prop.mapper.class_, local.key, remote.key, prop.uselist, order)
        _RELATIONSHIPS[model, name] = found
    return found


def _columns(rel: _Relationship, relations: Relations) -> list[str]:
    """The target's columns a fetch reads: those asked for, its key, the keys it joins on."""
    wanted = set(relations.columns) | {"id", rel.remote}
    wanted.update(_relationship(rel.target, child).local for child in relations.below)
    table = rel.target.__table__
    return [column.key for column in table.columns if column.key in wanted]


def _joinable(rel: _Relationship, relations: Relations) -> bool:
    """Whether every relationship below is to-one and a leaf: one join then loads them."""
    return (
        bool(relations.below)
        and not relations.pages
        and all(
            not below.below and not below.pages and not _relationship(rel.target, name).many
            for name, below in relations.below.items()
        )
    )


# A statement per shape, and how to cut its rows: (relationship, row type, width, key index).
_Part = tuple[str, Any, int, int]
_STATEMENTS: dict[tuple[Any, ...], tuple[Select[Any], list[_Part]]] = {}


def _shape(relations: Relations) -> tuple[Any, ...]:
    return (
        relations.columns,
        tuple((name, _shape(child)) for name, child in relations.below.items()),
    )


def _statement(
    model: type[Any], name: str, relations: Relations, joined: bool
) -> tuple[Select[Any], list[_Part]]:
    """``name``'s rows for a set of keys, reading only the columns needed; with ``joined``,
    its to-one leaves come in the same statement (rows are cut per table after)."""
    shape = (model, name, joined, _shape(relations))
    found = _STATEMENTS.get(shape)
    if found is None:
        rel = _relationship(model, name)
        table = rel.target.__table__
        own = _columns(rel, relations)
        stmt = select(*(table.c[c] for c in own)).where(
            table.c[rel.remote].in_(bindparam("keys", expanding=True))
        )
        if rel.order_by:
            stmt = stmt.order_by(*rel.order_by)
        parts: list[_Part] = [("", _row_type(table.name, own), len(own), 0)]
        for child in relations.below if joined else ():
            child_rel = _relationship(rel.target, child)
            child_table = child_rel.target.__table__.alias(f"_{child}")
            names = _columns(child_rel, relations.below[child])
            stmt = stmt.add_columns(*(child_table.c[c] for c in names)).outerjoin(
                child_table, child_table.c[child_rel.remote] == table.c[child_rel.local]
            )
            row_type = _row_type(child_rel.target.__table__.name, names)
            parts.append((child, row_type, len(names), names.index(child_rel.remote)))
        found = _STATEMENTS[shape] = (stmt, parts)
    return found


def _row_type(table: str, names: list[str]) -> Any:
    return namedtuple(f"{table}_row", names)


async def load_relations(
    session: AsyncSession, model: type[Any], records: Sequence[Record], relations: Relations
) -> None:
    """Fill ``record.rel`` for every relationship in ``relations``, level by level."""
    for name, below in relations.below.items():
        rel = _relationship(model, name)
        keys = {getattr(r.row, rel.local) for r in records}
        keys.discard(None)
        joined = _joinable(rel, below)
        rows: list[Record] = []
        if keys:
            rows = await _fetch(session, model, name, below, joined, keys)
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
        if (below.below or below.pages) and rows and not joined:
            await load_relations(session, rel.target, rows, below)
    for key, spec in relations.pages.items():
        target, children = await nested.load_pages(session, records, key, spec)
        if children and (spec.below.below or spec.below.pages):
            await load_relations(session, target, children, spec.below)


async def _fetch(
    session: AsyncSession,
    model: type[Any],
    name: str,
    below: Relations,
    joined: bool,
    keys: set[Any],
) -> list[Record]:
    stmt, parts = _statement(model, name, below, joined)
    (_, own_type, own_width, _), children = parts[0], parts[1:]
    result = await session.execute(stmt, {"keys": list(keys)})
    if not children:
        return [Record(own_type._make(row)) for row in result]
    records = []
    for row in result:
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
