"""Stock: levels, the ledger, reservations and idempotent operations on them.

Split by job: ``expressions`` (the shared rules), ``requests``/``results`` (what operations
take and give), ``levels`` (find, lock, change, ledger), ``idempotency`` (the keyed-operation
skeleton), ``operations`` and ``reservations`` (the services), ``states`` (damaged, quality
control, safety stock), ``purchasing`` (purchase orders), ``transfers`` (transfers in
transit), ``lines`` (their line items), ``queries``, ``pipeline`` and ``history`` (the read
side: levels and ledger, stock on its way, stock as of an instant).
"""

from db.stock.lines import Line
from db.stock.operations import (
    MAX_BULK_ROWS,
    adjust_stock,
    bulk_adjust_stock,
    set_stock_count,
    transfer_stock,
)
from db.stock.purchasing import (
    PurchaseOrderDraft,
    PurchaseOrderReceipt,
    ReceiveRequest,
    cancel_purchase_order,
    create_purchase_order,
    order_purchase_order,
    receive_purchase_order,
    update_purchase_order,
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
from db.stock.states import (
    MoveStateRequest,
    SafetyStockRequest,
    SafetyStockResult,
    move_stock_state,
    set_safety_stock,
)
from db.stock.transfers import (
    ReceiptLine,
    ReceiveTransferRequest,
    ShipRequest,
    ShortState,
    TransferShipment,
    cancel_transfer,
    receive_transfer,
    ship_transfer,
)

__all__ = [
    "MAX_BULK_ROWS",
    "MAX_QUANTITY",
    "AdjustRequest",
    "BulkRejected",
    "BulkRow",
    "CountRequest",
    "ErrorPolicy",
    "Line",
    "MoveStateRequest",
    "PurchaseOrderDraft",
    "PurchaseOrderReceipt",
    "ReceiptLine",
    "ReceiveRequest",
    "ReceiveTransferRequest",
    "ReservationResult",
    "ReserveRequest",
    "SafetyStockRequest",
    "SafetyStockResult",
    "ShipRequest",
    "ShortState",
    "StockResult",
    "TransferRequest",
    "TransferResult",
    "TransferShipment",
    "adjust_stock",
    "bulk_adjust_stock",
    "cancel_purchase_order",
    "cancel_transfer",
    "create_purchase_order",
    "expire_due_reservations",
    "fulfill_reservation",
    "move_stock_state",
    "order_purchase_order",
    "receive_purchase_order",
    "receive_transfer",
    "release_reservation",
    "reserve_stock",
    "set_safety_stock",
    "set_stock_count",
    "ship_transfer",
    "transfer_stock",
    "update_purchase_order",
]
