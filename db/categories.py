"""Category tree queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import CTE, select
from sqlalchemy.ext.asyncio import AsyncSession

from db import batch
from db.models import Category
from db.pagination import Page, PageArgs, SortKey, count, paginate


def descendant_ids_cte(category_id: int) -> CTE:
    """The category and every category below it (recursive, both backends)."""
    tree = select(Category.id).where(Category.id == category_id).cte("subtree", recursive=True)
    return tree.union_all(select(Category.id).where(Category.parent_id == tree.c.id))


def _roots_or_children(parent_id: int | None) -> Any:
    stmt = select(Category)
    if parent_id is None:
        return stmt.where(Category.parent_id.is_(None))
    return stmt.where(Category.parent_id == parent_id)


async def list_categories(
    session: AsyncSession, parent_id: int | None, args: PageArgs
) -> Page[Category]:
    keys = [SortKey(Category.name), SortKey(Category.id)]
    return await paginate(session, _roots_or_children(parent_id), keys, args)


async def count_categories(session: AsyncSession, parent_id: int | None) -> int:
    return await count(session, _roots_or_children(parent_id))


async def categories_by_id(session: AsyncSession, ids: Sequence[int]) -> list[Category | None]:
    return await batch.by_ids(session, Category, ids)


async def children_by_parent_id(
    session: AsyncSession, parent_ids: Sequence[int]
) -> list[list[Category]]:
    return await batch.grouped_by(
        session, Category, Category.parent_id, parent_ids, Category.name, Category.id
    )
