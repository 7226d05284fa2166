"""Stock: levels, the ledger, reservations and idempotent operations on them.

Split by job: ``expressions`` (the shared rules), ``requests``/``results`` (what operations
take and give), ``levels`` (find, lock, change, ledger), ``idempotency`` (the keyed-operation
skeleton), ``operations`` and ``reservations`` (the services), ``queries`` (the read side).
"""

from db.stock.operations import (
    MAX_BULK_ROWS,
    adjust_stock,
    bulk_adjust_stock,
    set_stock_count,
    transfer_stock,
)
from db.stock.requests import (
    MAX_QUANTITY,
    AdjustRequest,
    CountRequest,
    ErrorPolicy,
    ReserveRequest,
    TransferRequest,
)
from db.stock.reservations import (
    expire_due_reservations,
    fulfill_reservation,
    release_reservation,
    reserve_stock,
)
from db.stock.results import (
    BulkRejected,
    BulkRow,
    ReservationResult,
    StockResult,
    TransferResult,
)

__all__ = [
    "MAX_BULK_ROWS",
    "MAX_QUANTITY",
    "AdjustRequest",
    "BulkRejected",
    "BulkRow",
    "CountRequest",
    "ErrorPolicy",
    "ReservationResult",
    "ReserveRequest",
    "StockResult",
    "TransferRequest",
    "TransferResult",
    "adjust_stock",
    "bulk_adjust_stock",
    "expire_due_reservations",
    "fulfill_reservation",
    "release_reservation",
    "reserve_stock",
    "set_stock_count",
    "transfer_stock",
]
