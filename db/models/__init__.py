"""All models, imported so ``Base.metadata`` knows every table."""

from db.models.base import Base, utcnow
from db.models.catalog import Category, Item
from db.models.events import EventRecord
from db.models.imports import ImportJob, ImportKind, ImportPhase, ImportRowError, ImportStatus
from db.models.purchasing import (
    OPEN_PURCHASE_ORDER,
    PurchaseOrder,
    PurchaseOrderLine,
    PurchaseOrderStatus,
)
from db.models.stock import (
    IdempotencyRecord,
    MovementKind,
    Reservation,
    ReservationStatus,
    StockLevel,
    StockMovement,
    StockState,
    available_units,
)
from db.models.transfers import Transfer, TransferLine, TransferStatus
from db.models.uploads import Image
from db.models.users import RefreshToken, Role, User
from db.models.warehouses import Warehouse
from db.models.webhooks import (
    DeliveryOrigin,
    DeliveryStatus,
    Webhook,
    WebhookCursor,
    WebhookDelivery,
    WebhookEventType,
)

__all__ = [
    "OPEN_PURCHASE_ORDER",
    "Base",
    "Category",
    "DeliveryOrigin",
    "DeliveryStatus",
    "EventRecord",
    "IdempotencyRecord",
    "Image",
    "ImportJob",
    "ImportKind",
    "ImportPhase",
    "ImportRowError",
    "ImportStatus",
    "Item",
    "MovementKind",
    "PurchaseOrder",
    "PurchaseOrderLine",
    "PurchaseOrderStatus",
    "RefreshToken",
    "Reservation",
    "ReservationStatus",
    "Role",
    "StockLevel",
    "StockMovement",
    "StockState",
    "Transfer",
    "TransferLine",
    "TransferStatus",
    "User",
    "Warehouse",
    "Webhook",
    "WebhookCursor",
    "WebhookDelivery",
    "WebhookEventType",
    "available_units",
    "utcnow",
]
