"""Category tree queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import CTE, select
from sqlalchemy.ext.asyncio import AsyncSession

from db import batch, validation
from db.errors import ErrorCode, ServiceError
from db.models import Category, Item, utcnow
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


async def _check(
    session: AsyncSession,
    category_id: int | None,
    name: str,
    description: str | None,
    parent_id: int | None,
) -> tuple[str, str | None]:
    clean_name = validation.text(name, ["name"], max_length=200, label="Name")
    clean_description = validation.optional_text(
        description, ["description"], max_length=10_000, label="Description"
    )
    if parent_id is not None:
        if await session.get(Category, parent_id) is None:
            raise ServiceError(ErrorCode.NOT_FOUND, "No such parent category", ["parent_id"])
        if category_id is not None:
            subtree = descendant_ids_cte(category_id)
            below = set((await session.scalars(select(subtree.c.id))).all())
            if parent_id in below:
                raise ServiceError(
                    ErrorCode.INVALID,
                    "A category cannot sit below itself or its own descendants",
                    ["parent_id"],
                )
    return clean_name, clean_description


async def create_category(
    session: AsyncSession, name: str, description: str | None, parent_id: int | None
) -> Category:
    clean_name, clean_description = await _check(session, None, name, description, parent_id)
    category = Category(name=clean_name, description=clean_description, parent_id=parent_id)
    session.add(category)
    await session.flush()
    return category


async def update_category(
    session: AsyncSession,
    category_id: int,
    name: str,
    description: str | None,
    parent_id: int | None,
) -> Category:
    category = await session.get(Category, category_id)
    if category is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such category", ["id"])
    category.name, category.description = await _check(
        session, category.id, name, description, parent_id
    )
    category.parent_id = parent_id
    category.updated_at = utcnow()
    await session.flush()
    return category


async def delete_category(session: AsyncSession, category_id: int) -> int:
    category = await session.get(Category, category_id)
    if category is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such category", ["id"])
    if await session.scalar(select(Category.id).where(Category.parent_id == category.id).limit(1)):
        raise ServiceError(ErrorCode.IN_USE, "The category has subcategories", ["id"])
    if await session.scalar(select(Item.id).where(Item.category_id == category.id).limit(1)):
        raise ServiceError(ErrorCode.IN_USE, "Items belong to this category", ["id"])
    await session.delete(category)
    await session.flush()
    return category.id
