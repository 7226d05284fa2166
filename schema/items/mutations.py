"""Item mutations: create, update, archive, delete, and attach an image."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from db import items
from db.models import Item as ItemRow
from schema.context import Context
from schema.errors import InputPaths, UserError
from schema.ids import optional_pk_of, pk_of
from schema.items.types import Item
from schema.mutations import DeletePayload, run
from schema.permissions import IsManager


def _kept(value: Any) -> Any:
    """An input field left out keeps the item's value."""
    return items.KEEP if value is strawberry.UNSET else value


@strawberry.input(description="A new item.")
class CreateItemInput:
    sku: str = strawberry.field(description="Stock-keeping unit code, unique.")
    name: str = strawberry.field(description="Display name.")
    unit_price: Decimal = strawberry.field(description="Selling price per unit (2 decimals).")
    description: str | None = strawberry.field(default=None, description="Longer text.")
    category_id: strawberry.ID | None = strawberry.field(default=None, description="Category.")
    unit_cost: Decimal | None = strawberry.field(default=None, description="Purchase cost.")
    reorder_point: int | None = strawberry.field(
        default=None, description="Low-stock threshold (default 0)."
    )

    def to_draft(self) -> items.ItemDraft:
        return items.ItemDraft(
            sku=self.sku,
            name=self.name,
            unit_price=self.unit_price,
            description=self.description,
            category_id=optional_pk_of(self.category_id, "Category", "category_id"),
            unit_cost=self.unit_cost,
            reorder_point=self.reorder_point,
        )


@strawberry.input(description="Changes to an item; fields left out keep their value.")
class UpdateItemInput:
    sku: str | None = strawberry.field(default=strawberry.UNSET, description="New SKU.")
    name: str | None = strawberry.field(default=strawberry.UNSET, description="New name.")
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="New text; null clears it."
    )
    category_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="New category; null removes it."
    )
    unit_price: Decimal | None = strawberry.field(
        default=strawberry.UNSET, description="New price."
    )
    unit_cost: Decimal | None = strawberry.field(
        default=strawberry.UNSET, description="New cost; null clears it."
    )
    reorder_point: int | None = strawberry.field(
        default=strawberry.UNSET, description="New low-stock threshold."
    )

    def to_patch(self) -> items.ItemPatch:
        category = self.category_id
        return items.ItemPatch(
            sku=_kept(self.sku),
            name=_kept(self.name),
            description=_kept(self.description),
            category_id=items.KEEP
            if category is strawberry.UNSET
            else optional_pk_of(category, "Category", "category_id"),
            unit_price=_kept(self.unit_price),
            unit_cost=_kept(self.unit_cost),
            reorder_point=_kept(self.reorder_point),
        )


@strawberry.type(description="Result of an item mutation.")
class ItemPayload:
    item: Item | None = strawberry.field(description="The item as stored now.")
    errors: list[UserError] = strawberry.field(description="Why it failed, when it did.")

    @classmethod
    def of(cls, row: ItemRow | None, errors: list[UserError]) -> ItemPayload:
        return cls(item=None if row is None else Item.from_row(row), errors=errors)


@strawberry.type
class ItemMutation:
    @strawberry.mutation(description="Create an item (MANAGER).", permission_classes=[IsManager])
    async def create_item(
        self,
        info: strawberry.Info[Context],
        input: Annotated[CreateItemInput, strawberry.argument(description="The new item.")],
    ) -> ItemPayload:
        row, errors = await run(info.context, lambda s: items.create_item(s, input.to_draft()))
        return ItemPayload.of(row, errors)

    @strawberry.mutation(
        description="Change an item (MANAGER); `expectedVersion` guards against lost updates.",
        permission_classes=[IsManager],
    )
    async def update_item(
        self,
        info: strawberry.Info[Context],
        id: Annotated[strawberry.ID, strawberry.argument(description="The item.")],
        input: Annotated[UpdateItemInput, strawberry.argument(description="What to change.")],
        expected_version: Annotated[
            int | None,
            strawberry.argument(description="Refuse with VERSION_CONFLICT unless at this version."),
        ] = None,
    ) -> ItemPayload:
        async def work(session: AsyncSession) -> ItemRow:
            pk = pk_of(id, "Item", "id")
            return await items.update_item(session, pk, input.to_patch(), expected_version)

        row, errors = await run(info.context, work)
        return ItemPayload.of(row, errors)

    @strawberry.mutation(
        description="Hide an item from lists, keeping its history (MANAGER).",
        permission_classes=[IsManager],
    )
    async def archive_item(
        self,
        info: strawberry.Info[Context],
        id: Annotated[strawberry.ID, strawberry.argument(description="The item.")],
    ) -> ItemPayload:
        row, errors = await run(
            info.context, lambda s: items.archive_item(s, pk_of(id, "Item", "id"))
        )
        return ItemPayload.of(row, errors)

    @strawberry.mutation(
        description="Delete an item without stock history (MANAGER); else IN_USE.",
        permission_classes=[IsManager],
    )
    async def delete_item(
        self,
        info: strawberry.Info[Context],
        id: Annotated[strawberry.ID, strawberry.argument(description="The item.")],
    ) -> DeletePayload:
        deleted, errors = await run(
            info.context, lambda s: items.delete_item(s, pk_of(id, "Item", "id"))
        )
        return DeletePayload(deleted_id=None if deleted is None else id, errors=errors)

    @strawberry.mutation(
        description="Attach an uploaded image to an item (MANAGER).",
        permission_classes=[IsManager],
    )
    async def set_item_image(
        self,
        info: strawberry.Info[Context],
        item_id: Annotated[strawberry.ID, strawberry.argument(description="The item.")],
        upload_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="ID from `POST /uploads`; null removes the image."),
        ],
    ) -> ItemPayload:
        async def work(session: AsyncSession) -> ItemRow:
            pk = pk_of(item_id, "Item", "id", "item")
            image = optional_pk_of(upload_id, "Image", "upload_id", "upload")
            return await items.set_item_image(session, pk, image)

        row, errors = await run(info.context, work, SET_IMAGE_PATHS)
        return ItemPayload.of(row, errors)


# setItemImage takes its IDs as arguments; the item is `itemId` there, not `id`.
SET_IMAGE_PATHS = InputPaths(prefix=(), rename={"id": "itemId"})
