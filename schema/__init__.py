"""Schema assembly: the per-domain roots merged into one Strawberry schema."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from schema.auth import AuthMutation
from schema.cache import LRU
from schema.categories import CategoryMutation, CategoryQuery
from schema.imports import ImportMutation, ImportQuery, ImportSubscription
from schema.items import ItemMutation, ItemQuery
from schema.limits import Limits, Measure, MeasureKey, QueryLimits
from schema.masking import MaskUnexpectedErrors
from schema.node import NodeQuery
from schema.persisted import PersistedQueries, PersistedQueryStore
from schema.purchasing import PurchaseOrderMutation, PurchaseOrderQuery
from schema.relay import Node
from schema.runner import Schema
from schema.stock import StockMutation, StockQuery, StockStateMutation
from schema.subscriptions import Subscription as LiveSubscription
from schema.transfers import TransferMutation, TransferQuery
from schema.uploads import UploadMutation
from schema.users import UserMutation, UserQuery
from schema.warehouses import WarehouseMutation, WarehouseQuery
from schema.webhooks import WebhookMutation, WebhookQuery

Mutation = merge_types(
    "Mutation",
    (
        AuthMutation,
        ItemMutation,
        CategoryMutation,
        WarehouseMutation,
        StockMutation,
        StockStateMutation,
        PurchaseOrderMutation,
        TransferMutation,
        UploadMutation,
        UserMutation,
        ImportMutation,
        WebhookMutation,
    ),
)

Query = merge_types(
    "Query",
    (
        NodeQuery,
        UserQuery,
        ItemQuery,
        CategoryQuery,
        WarehouseQuery,
        StockQuery,
        PurchaseOrderQuery,
        TransferQuery,
        ImportQuery,
        WebhookQuery,
    ),
)

Subscription = merge_types("Subscription", (LiveSubscription, ImportSubscription))


def build_schema(
    *,
    limits: Limits | None = None,
    persisted: PersistedQueryStore | None = None,
    production: bool = False,
    introspection: bool = True,
    cache_size: int = 1000,
    extra_extensions: Sequence[Callable[[], SchemaExtension]] = (),
    max_batch: int = 10,
    planner: Callable[[], SchemaExtension] | None = None,
) -> Any:
    """The Stockroom schema; ``api/`` passes its limits and production switches."""
    from schema.categories import Category
    from schema.items import Item
    from schema.purchasing import PurchaseOrder
    from schema.stock import Reservation, StockLevel, StockMovement
    from schema.transfers import Transfer
    from schema.users import User
    from schema.warehouses import Warehouse
    from schema.webhooks import Webhook, WebhookDelivery

    validations: LRU[str, list[GraphQLError]] = LRU(cache_size)
    measures: LRU[MeasureKey, Measure] = LRU(cache_size)
    chosen = limits or Limits()
    # ParserCache first: a parse error leaves no earlier extension's on_parse half-entered.
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: ParserCache(maxsize=cache_size),
        lambda: MaxTokensLimiter(chosen.max_tokens),
    ]
    if persisted is not None:
        store = persisted
        extensions.append(lambda: PersistedQueries(store))
    extensions.append(lambda: QueryLimits(chosen, validations, measures))
    if not introspection:
        extensions.append(DisableIntrospection)
    if production:
        extensions.append(MaskUnexpectedErrors)
    extensions.extend(extra_extensions)
    if planner is not None:
        # Innermost: every other extension sees the planned result as an executed one.
        extensions.append(planner)
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[
            Node,
            Item,
            Category,
            Warehouse,
            StockLevel,
            StockMovement,
            Reservation,
            PurchaseOrder,
            Transfer,
            User,
            Webhook,
            WebhookDelivery,
        ],
        extensions=extensions,
        config=StrawberryConfig(
            disable_field_suggestions=production,
            batching_config={"max_operations": max_batch},
        ),
    )
