"""Category type (a tree) and queries."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from db import categories, items
from db.models import Category as CategoryRow
from schema.context import Context
from schema.errors import UserError
from schema.ids import decode_optional, optional_pk_of, pk_of
from schema.mutations import DeletePayload, run
from schema.permissions import IsManager, IsViewer
from schema.relay import After, Before, Connection, First, Last, Node, global_id, page_args, paged

if TYPE_CHECKING:
    from schema.items import Item

ItemRef = Annotated["Item", strawberry.lazy("schema.items")]


@strawberry.type(description="A node of the category tree.")
class Category(Node):
    id: strawberry.ID = global_id("Category")
    name: str = strawberry.field(description="Display name.")
    description: str | None = strawberry.field(description="Longer text.")
    created_at: datetime = strawberry.field(description="When it was created (UTC).")
    updated_at: datetime = strawberry.field(description="When it last changed (UTC).")
    pk: strawberry.Private[int]
    parent_pk: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: CategoryRow) -> Category:
        return cls(
            name=row.name,
            description=row.description,
            created_at=row.created_at,
            updated_at=row.updated_at,
            pk=row.id,
            parent_pk=row.parent_id,
        )

    @strawberry.field(description="The category above this one; null at the top.")
    async def parent(self, info: strawberry.Info[Context]) -> Category | None:
        if self.parent_pk is None:
            return None
        row = await info.context.loaders.category.load(self.parent_pk)
        return None if row is None else Category.from_row(row)

    @strawberry.field(description="Categories directly below this one, by name.")
    async def children(self, info: strawberry.Info[Context]) -> list[Category]:
        rows = await info.context.loaders.category_children.load(self.pk)
        return [Category.from_row(row) for row in rows]

    @strawberry.field(description="Live items in this category and the categories below it.")
    async def items(
        self, info: strawberry.Info[Context], first: First = None, after: After = None
    ) -> Connection[ItemRef]:
        from db.items import ItemFilterSpec
        from schema.items import Item

        reader, args = info.context.reader, page_args(first, after)
        return await paged(
            lambda: reader(items.list_items_in_category, self.pk, args),
            Item.from_row,
            lambda: reader(items.count_items, ItemFilterSpec(category_id=self.pk)),
        )


@strawberry.type
class CategoryQuery:
    @strawberry.field(
        description="Categories under `parentId`, or the top-level ones.",
        permission_classes=[IsViewer],
    )
    async def categories(
        self,
        info: strawberry.Info[Context],
        first: First = None,
        after: After = None,
        parent_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="List the children of this category."),
        ] = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Category]:
        reader, args = info.context.reader, page_args(first, after, last, before)
        parent = decode_optional(parent_id, "Category")
        return await paged(
            lambda: reader(categories.list_categories, parent, args),
            Category.from_row,
            lambda: reader(categories.count_categories, parent),
        )


@strawberry.input(description="A category's fields.")
class CategoryInput:
    name: str = strawberry.field(description="Display name.")
    description: str | None = strawberry.field(default=None, description="Longer text.")
    parent_id: strawberry.ID | None = strawberry.field(
        default=None, description="Parent category; null for a top-level one."
    )

    def parent(self) -> int | None:
        return optional_pk_of(self.parent_id, "Category", "parent_id", "parent category")


@strawberry.type(description="Result of a category mutation.")
class CategoryPayload:
    category: Category | None = strawberry.field(description="The category as stored now.")
    errors: list[UserError] = strawberry.field(description="Why it failed, when it did.")

    @classmethod
    def of(cls, row: CategoryRow | None, errors: list[UserError]) -> CategoryPayload:
        return cls(category=None if row is None else Category.from_row(row), errors=errors)


@strawberry.type
class CategoryMutation:
    @strawberry.mutation(description="Create a category (MANAGER).", permission_classes=[IsManager])
    async def create_category(
        self,
        info: strawberry.Info[Context],
        input: Annotated[CategoryInput, strawberry.argument(description="Its fields.")],
    ) -> CategoryPayload:
        row, errors = await run(
            info.context,
            lambda s: categories.create_category(s, input.name, input.description, input.parent()),
        )
        return CategoryPayload.of(row, errors)

    @strawberry.mutation(
        description="Change a category (MANAGER); moving it below itself is INVALID.",
        permission_classes=[IsManager],
    )
    async def update_category(
        self,
        info: strawberry.Info[Context],
        id: Annotated[strawberry.ID, strawberry.argument(description="The category.")],
        input: Annotated[CategoryInput, strawberry.argument(description="Its new fields.")],
    ) -> CategoryPayload:
        row, errors = await run(
            info.context,
            lambda s: categories.update_category(
                s, pk_of(id, "Category", "id"), input.name, input.description, input.parent()
            ),
        )
        return CategoryPayload.of(row, errors)

    @strawberry.mutation(
        description="Delete an empty category (MANAGER); IN_USE with items or children.",
        permission_classes=[IsManager],
    )
    async def delete_category(
        self,
        info: strawberry.Info[Context],
        id: Annotated[strawberry.ID, strawberry.argument(description="The category.")],
    ) -> DeletePayload:
        deleted, errors = await run(
            info.context, lambda s: categories.delete_category(s, pk_of(id, "Category", "id"))
        )
        return DeletePayload(deleted_id=None if deleted is None else id, errors=errors)
