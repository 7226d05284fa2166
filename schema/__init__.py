"""Schema assembly: the per-domain roots merged into one Strawberry schema."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.tools import merge_types

from schema.auth import AuthMutation
from schema.categories import CategoryMutation, CategoryQuery
from schema.items import ItemMutation, ItemQuery
from schema.node import NodeQuery
from schema.relay import Node
from schema.stock import StockMutation, StockQuery
from schema.subscriptions import Subscription
from schema.users import UserMutation, UserQuery
from schema.warehouses import WarehouseMutation, WarehouseQuery

Mutation = merge_types(
    "Mutation",
    (
        AuthMutation,
        ItemMutation,
        CategoryMutation,
        WarehouseMutation,
        StockMutation,
        UserMutation,
    ),
)

Query = merge_types(
    "Query", (NodeQuery, UserQuery, ItemQuery, CategoryQuery, WarehouseQuery, StockQuery)
)


def build_schema(extensions: Sequence[type[SchemaExtension]] = ()) -> Any:
    """The Stockroom schema; ``api/`` adds its extensions (limits, metrics, masking)."""
    from schema.categories import Category
    from schema.items import Item
    from schema.stock import Reservation, StockLevel, StockMovement
    from schema.users import User
    from schema.warehouses import Warehouse

    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Node, Item, Category, Warehouse, StockLevel, StockMovement, Reservation, User],
        extensions=list(extensions),
    )
