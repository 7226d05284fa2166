"""All models, imported so ``Base.metadata`` knows every table."""

from db.models.base import Base, utcnow
from db.models.catalog import Category, Item
from db.models.events import EventRecord
from db.models.stock import (
    IdempotencyRecord,
    MovementKind,
    Reservation,
    ReservationStatus,
    StockLevel,
    StockMovement,
)
from db.models.uploads import Image
from db.models.users import RefreshToken, Role, User
from db.models.warehouses import Warehouse

__all__ = [
    "Base",
    "Category",
    "EventRecord",
    "IdempotencyRecord",
    "Image",
    "Item",
    "MovementKind",
    "RefreshToken",
    "Reservation",
    "ReservationStatus",
    "Role",
    "StockLevel",
    "StockMovement",
    "User",
    "Warehouse",
    "utcnow",
]
