"""Where every planned (GraphQL type, field) takes its value from, and the role it needs.

A field absent from `REGISTRY` is not planned: an operation selecting it runs through the
resolvers, and `FALLBACK` says why. `tests/test_plan_coverage.py` fails when a field of the
read schema is in neither.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from db.models import Role
from db.models import StockLevel as StockLevelRow
from db.plan.tree import Record
from db.stock.expressions import is_low
from schema.ids import to_global_id


class Kind(Enum):
    COLUMN = "column"  # an attribute of the row
    GLOBAL_ID = "global_id"  # the Relay ID from the row's primary key
    TO_ONE = "to_one"  # a model relationship to one row (or none)
    TO_MANY = "to_many"  # a model relationship to a list of rows
    COMPUTED = "computed"  # a value computed from the record and its relations
    EDGES = "edges"  # a connection's page of edges
    PAGE_INFO = "page_info"
    TOTAL_COUNT = "total_count"
    CURSOR = "cursor"  # an edge's cursor, from the row's sort-key values
    EDGE_NODE = "edge_node"  # an edge's node
    PAGE_FLAG = "page_flag"  # a PageInfo field, from the page
    CONNECTION = "connection"  # a nested connection (`db.plan.nested.SOURCES`)


@dataclass(frozen=True, slots=True)
class Entry:
    kind: Kind
    source: str = ""  # attribute, relationship or PageInfo attribute name
    role: Role | None = None  # below the root's own check; None: any signed-in viewer
    compute: Callable[[Record], Any] | None = None
    arguments: frozenset[str] = frozenset()  # arguments the plan knows how to honour
    # The resolver awaits it (a dataloader), so errors below it may come in another order.
    deferred: bool = False
    only: Only | None = None
    needs: tuple[str, ...] = ()  # columns of its own row a computed value reads
    below: tuple[str, ...] = ()  # columns of the `source` relationship's rows it reads


def _levels(record: Record) -> list[Record]:
    levels: list[Record] = record.rel["stock_levels"]
    return levels


_AVAILABLE = StockLevelRow.available.fget  # the one definition, applied to plain rows
# What `available` reads (db.models.stock.available_units).
_STOCK = ("on_hand", "reserved", "damaged", "quality_control", "safety_stock")


def _on_hand(record: Record) -> int:
    return sum(level.row.on_hand for level in _levels(record))


def _available(record: Record) -> int:
    return sum(_AVAILABLE(level.row) for level in _levels(record))


def _low(record: Record) -> bool:
    return bool(is_low(_available(record), record.row.reorder_point))


def _image_url(record: Record) -> str:
    return f"/uploads/{to_global_id('Image', record.row.id)}"


@dataclass(frozen=True, slots=True)
class Only:
    """A to-many field's argument keeping the related rows whose ``attribute`` is the
    primary key of the ``type_name`` ID it names (``stockLevels(warehouseId:)``)."""

    argument: str
    type_name: str
    attribute: str


_WAREHOUSE = Only("warehouseId", "Warehouse", "warehouse_id")


def _columns(*names: str) -> dict[str, Entry]:
    return {_camel(name): Entry(Kind.COLUMN, name) for name in names}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_STAMPS = ("created_at", "updated_at")

_CONNECTION = {
    "edges": Entry(Kind.EDGES),
    "pageInfo": Entry(Kind.PAGE_INFO),
    "totalCount": Entry(Kind.TOTAL_COUNT),
}
_EDGE = {"cursor": Entry(Kind.CURSOR), "node": Entry(Kind.EDGE_NODE)}

REGISTRY: dict[str, dict[str, Entry]] = {
    "Item": {
        "id": Entry(Kind.GLOBAL_ID, "Item"),
        **_columns(
            "sku",
            "name",
            "description",
            "unit_price",
            "reorder_point",
            "archived",
            "version",
            *_STAMPS,
        ),
        "unitCost": Entry(Kind.COLUMN, "unit_cost", role=Role.MANAGER),
        "category": Entry(Kind.TO_ONE, "category"),
        "image": Entry(Kind.TO_ONE, "image", deferred=True),
        "movements": Entry(
            Kind.CONNECTION,
            "item_movements",
            arguments=frozenset({"first", "after"}),
            deferred=True,
        ),
        "stockLevels": Entry(
            Kind.TO_MANY, "stock_levels", arguments=frozenset({"warehouseId"}), only=_WAREHOUSE
        ),
        "totalOnHand": Entry(Kind.COMPUTED, "stock_levels", compute=_on_hand, below=_STOCK),
        "totalAvailable": Entry(Kind.COMPUTED, "stock_levels", compute=_available, below=_STOCK),
        "lowStock": Entry(
            Kind.COMPUTED, "stock_levels", compute=_low, needs=("reorder_point",), below=_STOCK
        ),
    },
    "Category": {
        "id": Entry(Kind.GLOBAL_ID, "Category"),
        **_columns("name", "description", *_STAMPS),
        "parent": Entry(Kind.TO_ONE, "parent", deferred=True),
        "children": Entry(Kind.TO_MANY, "children", deferred=True),
        "items": Entry(
            Kind.CONNECTION,
            "category_items",
            arguments=frozenset({"first", "after"}),
            deferred=True,
        ),
    },
    "Warehouse": {
        "id": Entry(Kind.GLOBAL_ID, "Warehouse"),
        **_columns("code", "name", "address", *_STAMPS),
        "stockLevels": Entry(
            Kind.CONNECTION,
            "warehouse_levels",
            arguments=frozenset({"first", "after", "lowStockOnly"}),
            deferred=True,
        ),
    },
    "StockLevel": {
        "id": Entry(Kind.GLOBAL_ID, "StockLevel"),
        **_columns("on_hand", "reserved", "updated_at"),
        "available": Entry(Kind.COMPUTED, compute=lambda r: _AVAILABLE(r.row), needs=_STOCK),
        "warehouse": Entry(Kind.TO_ONE, "warehouse"),
        "item": Entry(Kind.TO_ONE, "item", deferred=True),
    },
    "StockMovement": {
        "id": Entry(Kind.GLOBAL_ID, "StockMovement"),
        **_columns(
            "kind", "delta", "on_hand_after", "reserved_after", "reason", "reference", "created_at"
        ),
        "item": Entry(Kind.TO_ONE, "item", deferred=True),
        "warehouse": Entry(Kind.TO_ONE, "warehouse", deferred=True),
        "actor": Entry(Kind.TO_ONE, "actor", deferred=True),
    },
    "Reservation": {
        "id": Entry(Kind.GLOBAL_ID, "Reservation"),
        **_columns("quantity", "status", "reference", "expires_at", "created_at"),
        "item": Entry(Kind.TO_ONE, "item", deferred=True),
        "warehouse": Entry(Kind.TO_ONE, "warehouse", deferred=True),
    },
    "User": {
        "id": Entry(Kind.GLOBAL_ID, "User"),
        **_columns("email", "role", "is_active", "created_at"),
    },
    "Image": {
        "id": Entry(Kind.GLOBAL_ID, "Image"),
        "url": Entry(Kind.COMPUTED, compute=_image_url, needs=("id",)),
        **_columns("content_type", "size", "width", "height", "sha256"),
    },
    "InventorySummary": _columns("item_count", "total_on_hand", "total_value", "low_stock_count"),
    "ItemConnection": _CONNECTION,
    "ItemEdge": _EDGE,
    "StockMovementConnection": _CONNECTION,
    "StockMovementEdge": _EDGE,
    "ReservationConnection": _CONNECTION,
    "ReservationEdge": _EDGE,
    "StockLevelConnection": _CONNECTION,
    "StockLevelEdge": _EDGE,
    "UserConnection": _CONNECTION,
    "UserEdge": _EDGE,
    "CategoryConnection": _CONNECTION,
    "CategoryEdge": _EDGE,
    "WarehouseConnection": _CONNECTION,
    "WarehouseEdge": _EDGE,
    "PageInfo": {
        "hasNextPage": Entry(Kind.PAGE_FLAG, "has_next_page"),
        "hasPreviousPage": Entry(Kind.PAGE_FLAG, "has_previous_page"),
        "startCursor": Entry(Kind.PAGE_FLAG, "start_cursor"),
        "endCursor": Entry(Kind.PAGE_FLAG, "end_cursor"),
    },
}

# Roots the planner runs (see `schema.plan.roots`); every other root falls back.
PLANNED_ROOTS = frozenset(
    {
        "items",
        "item",
        "node",
        "categories",
        "warehouses",
        "movements",
        "reservations",
        "users",
        "me",
        "inventorySummary",
        "__typename",
    }
)

# Fields that run through the resolvers, and why (the operation selecting one falls back).
_LATER = "not planned yet: purchase orders, transfers, quantity states and imports"
_AS_OF = "stock as of a date is rebuilt from the ledger by its own query"
_WEBHOOKS = "webhook settings and their delivery log: ADMIN-only reads, rare and small"
FALLBACK: dict[str, dict[str, str]] = {
    "Query": {
        **dict.fromkeys(
            ("importJob", "importJobs", "purchaseOrder", "purchaseOrders", "transfer",
             "transfers"),
            _LATER,
        ),
        "webhooks": _WEBHOOKS,
    },
    "Webhook": dict.fromkeys(
        ("createdAt", "deliveries", "description", "disabledReason", "events", "id",
         "isActive", "secretHint", "updatedAt", "url"),
        _WEBHOOKS,
    ),
    "WebhookDelivery": dict.fromkeys(
        ("attempts", "createdAt", "deliveredAt", "event", "eventId", "id", "lastError",
         "nextAttemptAt", "redelivery", "responseStatus", "status"),
        _WEBHOOKS,
    ),
    **{
        f"{name}Connection": dict.fromkeys(("edges", "pageInfo", "totalCount"), _WEBHOOKS)
        for name in ("Webhook", "WebhookDelivery")
    },
    **{
        f"{name}Edge": dict.fromkeys(("cursor", "node"), _WEBHOOKS)
        for name in ("Webhook", "WebhookDelivery")
    },
    "Item": {"incoming": _LATER, "stockAt": _AS_OF},
    "Warehouse": {"stockAt": _AS_OF},
    "StockLevel": dict.fromkeys(
        ("damaged", "inTransit", "incoming", "qualityControl", "safetyStock"), _LATER
    ),
    "StockMovement": dict.fromkeys(
        ("damagedAfter", "fromState", "qualityControlAfter", "safetyStockAfter", "toState"),
        _LATER,
    ),
    **{
        name: dict.fromkeys(fields, _LATER)
        for name, fields in (
            (
                "ImportJob",
                (
                    "created",
                    "createdAt",
                    "dryRun",
                    "errorPolicy",
                    "errors",
                    "failed",
                    "failureReason",
                    "finishedAt",
                    "id",
                    "kind",
                    "phase",
                    "processed",
                    "startedAt",
                    "status",
                    "total",
                    "unchanged",
                    "updated",
                ),
            ),
            ("ImportRowError", ("code", "column", "line", "message")),
            (
                "PurchaseOrder",
                (
                    "createdAt",
                    "expectedAt",
                    "id",
                    "lines",
                    "number",
                    "orderedAt",
                    "status",
                    "supplier",
                    "updatedAt",
                    "warehouse",
                ),
            ),
            (
                "PurchaseOrderLine",
                ("item", "quantityOrdered", "quantityOutstanding", "quantityReceived"),
            ),
            (
                "Transfer",
                (
                    "cancelledAt",
                    "from",
                    "id",
                    "lines",
                    "receivedAt",
                    "reference",
                    "shippedAt",
                    "status",
                    "to",
                ),
            ),
            (
                "TransferLine",
                (
                    "item",
                    "quantity",
                    "quantityDamaged",
                    "quantityLost",
                    "quantityReceived",
                    "shortReason",
                ),
            ),
            (
                "StockSnapshot",
                (
                    "available",
                    "damaged",
                    "item",
                    "onHand",
                    "qualityControl",
                    "reserved",
                    "safetyStock",
                    "warehouse",
                ),
            ),
        )
    },
    **{
        f"{name}Connection": dict.fromkeys(("edges", "pageInfo", "totalCount"), _LATER)
        for name in ("ImportJob", "ImportRowError", "PurchaseOrder", "StockSnapshot", "Transfer")
    },
    **{
        f"{name}Edge": dict.fromkeys(("cursor", "node"), _LATER)
        for name in ("ImportJob", "ImportRowError", "PurchaseOrder", "StockSnapshot", "Transfer")
    },
}


# Arguments of planned fields that make the operation fall back: "Type.field(argument)".
FALLBACK_ARGUMENTS: dict[str, str] = {"Query.inventorySummary(at)": _AS_OF}


def entry(type_name: str, field_name: str) -> Entry | None:
    """The registered source of a field, or None when it is not planned."""
    return REGISTRY.get(type_name, {}).get(field_name)
