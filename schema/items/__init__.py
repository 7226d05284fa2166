"""Items in GraphQL: ``types`` (Item), ``queries`` (item, items), ``mutations``."""

from schema.items.mutations import ItemMutation, ItemPayload
from schema.items.queries import ItemFilter, ItemOrder, ItemQuery, OrderDirection
from schema.items.types import Item

__all__ = [
    "Item",
    "ItemFilter",
    "ItemMutation",
    "ItemOrder",
    "ItemPayload",
    "ItemQuery",
    "OrderDirection",
]
