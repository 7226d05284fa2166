"""Stock in GraphQL: ``types`` (levels, ledger rows, reservations, snapshots), ``queries``,
``mutations`` and ``states`` (quantity states and safety stock)."""

from schema.stock.mutations import StockMutation
from schema.stock.queries import StockQuery
from schema.stock.states import StockStateMutation
from schema.stock.types import (
    InventorySummary,
    MovementKind,
    Reservation,
    ReservationStatus,
    StockLevel,
    StockMovement,
    StockSnapshot,
    StockState,
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
    "StockSnapshot",
    "StockState",
    "StockStateMutation",
]
