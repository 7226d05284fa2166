"""Stock in GraphQL: ``types`` (levels, ledger rows, reservations), ``queries``, ``mutations``."""

from schema.stock.mutations import StockMutation
from schema.stock.queries import StockQuery
from schema.stock.types import (
    InventorySummary,
    MovementKind,
    Reservation,
    ReservationStatus,
    StockLevel,
    StockMovement,
)

__all__ = [
    "InventorySummary",
    "MovementKind",
    "Reservation",
    "ReservationStatus",
    "StockLevel",
    "StockMovement",
    "StockMutation",
    "StockQuery",
]
