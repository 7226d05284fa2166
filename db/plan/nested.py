"""Nested connections for all parents at once: one windowed statement plus one grouped count.

Each source gives the statement of the resolvers' list with the parent as a column
(``plan_parent``) and the same sort keys; ``row_number() over (partition by parent ...)`` then
cuts every parent's page in the one statement, after the cursor if there is one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.items import ItemOrderSpec, page_keys
from db.models import Category, Item, StockLevel, StockMovement
from db.pagination import Page, PaginationError, SortKey, keyset_after
from db.plan.tree import NestedPage, NestedPageError, PageResult, Record
from db.stock import queries
from db.stock.expressions import is_low

# A source: (parent ids, options) -> (target model, statement with `plan_parent`, its expression,
# sort keys).
Source = Callable[
    [Sequence[int], tuple[Any, ...]],
    tuple[type[Any], Select[Any], ColumnElement[Any], list[SortKey]],
]


def _category_items(parents: Sequence[int], options: tuple[Any, ...]) -> Any:
    # Live items in each category or below it, as db.items.list_items_in_category lists them.
    tree = (
        select(Category.id.label("root"), Category.id.label("id"))
        .where(Category.id.in_(parents))
        .cte("subtree", recursive=True)
    )
    tree = tree.union_all(select(tree.c.root, Category.id).where(Category.parent_id == tree.c.id))
    stmt = (
        select(Item.__table__, tree.c.root.label("plan_parent"))
        .join(tree, Item.category_id == tree.c.id)
        .where(Item.archived.is_(False))
    )
    return Item, stmt, tree.c.root, page_keys(ItemOrderSpec())


def _item_movements(parents: Sequence[int], options: tuple[Any, ...]) -> Any:
    stmt = select(StockMovement.__table__, StockMovement.item_id.label("plan_parent")).where(
        StockMovement.item_id.in_(parents)
    )
    return StockMovement, stmt, StockMovement.item_id, queries.MOVEMENT_ORDER


def _warehouse_levels(parents: Sequence[int], options: tuple[Any, ...]) -> Any:
    (low_stock_only,) = options
    stmt = select(StockLevel.__table__, StockLevel.warehouse_id.label("plan_parent")).where(
        StockLevel.warehouse_id.in_(parents)
    )
    if low_stock_only:
        stmt = stmt.join(Item, Item.id == StockLevel.item_id).where(
            is_low(StockLevel.available, Item.reorder_point)
        )
    return StockLevel, stmt, StockLevel.warehouse_id, queries.WAREHOUSE_LEVEL_ORDER


SOURCES: dict[str, Source] = {
    "category_items": _category_items,
    "item_movements": _item_movements,
    "warehouse_levels": _warehouse_levels,
}


async def load_pages(
    session: AsyncSession, records: Sequence[Record], key: str, spec: NestedPage
) -> tuple[type[Any], list[Record]]:
    """Set ``record.rel[key]`` to each parent's `PageResult`; the target model and every
    child record come back, for the relations below them."""
    parents = sorted({r.row.id for r in records})
    target, base, parent, keys = SOURCES[spec.source](parents, spec.options)
    args, size = spec.args, spec.args.size
    order = [k.expression.desc() if k.descending else k.expression.asc() for k in keys]
    windowed = base.add_columns(
        *(k.expression.label(f"plan_sort{i}") for i, k in enumerate(keys)),
        func.row_number().over(partition_by=parent, order_by=order).label("plan_row"),
    )
    if args.after is not None:
        try:
            windowed = windowed.where(keyset_after(keys, args.after))
        except PaginationError as exc:
            raise NestedPageError(str(exc)) from None
    cut = windowed.subquery("page")
    stmt = select(cut).where(cut.c.plan_row <= size + 1).order_by(cut.c.plan_parent, cut.c.plan_row)
    grouped: dict[int, list[Any]] = {}
    for row in await session.execute(stmt):
        grouped.setdefault(row.plan_parent, []).append(row)
    totals: dict[int, int] = {}
    if spec.total:
        counted = base.subquery("counted")
        by_parent = select(counted.c.plan_parent, func.count()).group_by(counted.c.plan_parent)
        totals = {p: int(n) for p, n in await session.execute(by_parent)}
    arity = len(keys)
    children: list[Record] = []
    for record in records:
        rows = grouped.get(record.row.id, [])
        more = len(rows) > size
        page_rows = rows[:size]
        nodes = [Record(row) for row in page_rows]
        children.extend(nodes)
        positions = [[getattr(row, f"plan_sort{i}") for i in range(arity)] for row in page_rows]
        page = Page(nodes, positions, has_next_page=more, has_previous_page=args.after is not None)
        record.rel[key] = PageResult(page, totals.get(record.row.id, 0) if spec.total else None)
    return target, children
