"""``node(id:)``: fetch any object by its global ID."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import strawberry

from db.models import Role
from schema.categories import Category
from schema.context import Context
from schema.errors import bad_input
from schema.ids import from_global_id
from schema.imports import resolve_node as resolve_import_job
from schema.items import Item
from schema.permissions import IsViewer
from schema.purchasing import PurchaseOrder
from schema.relay import Node
from schema.stock import Reservation, StockLevel, StockMovement
from schema.transfers import Transfer
from schema.users import User
from schema.warehouses import Warehouse
from schema.webhooks import resolve_delivery_node, resolve_webhook_node

Resolver = Callable[[Context, int], Awaitable[Node | None]]


def _via(loader_name: str, convert: Callable[[Any], Node]) -> Resolver:
    async def resolve(context: Context, pk: int) -> Node | None:
        row = await getattr(context.loaders, loader_name).load(pk)
        return None if row is None else convert(row)

    return resolve


NODE_TYPES: dict[str, Resolver] = {
    "Item": _via("item", Item.from_row),
    "Category": _via("category", Category.from_row),
    "Warehouse": _via("warehouse", Warehouse.from_row),
    "StockLevel": _via("stock_level", StockLevel.from_row),
    "StockMovement": _via("movement", StockMovement.from_row),
    "Reservation": _via("reservation", Reservation.from_row),
    "PurchaseOrder": _via("purchase_order", PurchaseOrder.from_row),
    "Transfer": _via("transfer", Transfer.from_row),
    "User": _via("user", User.from_row),
    "ImportJob": resolve_import_job,
    "Webhook": resolve_webhook_node,
    "WebhookDelivery": resolve_delivery_node,
}


@strawberry.type
class NodeQuery:
    @strawberry.field(
        description="Any object by its global ID; null when it does not exist.",
        permission_classes=[IsViewer],
    )
    async def node(
        self,
        info: strawberry.Info[Context],
        id: Annotated[strawberry.ID, strawberry.argument(description="A global ID.")],
    ) -> Node | None:
        try:
            type_name, pk = from_global_id(id)
        except ValueError:
            raise bad_input(f"Malformed ID {id!r}") from None
        resolve = NODE_TYPES.get(type_name)
        if resolve is None:
            raise bad_input(f"ID {id!r} names no known type")
        viewer = info.context.user
        if type_name == "User" and viewer is not None:
            # Users see themselves; only ADMIN sees other users.
            if pk != viewer.id and not viewer.role.includes(Role.ADMIN):
                return None
        return await resolve(info.context, pk)
