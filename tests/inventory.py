"""GraphQL documents and helpers for the inventory-depth tests (states, orders, transfers)."""

from __future__ import annotations

from typing import Any

from tests.seeded import seeded_ids

LEVEL_FIELDS = "onHand reserved damaged qualityControl safetyStock available incoming inTransit"
MOVEMENT_FIELDS = """kind delta onHandAfter reservedAfter damagedAfter qualityControlAfter
  safetyStockAfter fromState toState reason reference"""

LEVEL = f"""query($id: ID!, $w: ID) {{ item(id: $id) {{ totalOnHand totalAvailable lowStock
  incoming stockLevels(warehouseId: $w) {{ {LEVEL_FIELDS} }} }} }}"""
COUNT = """mutation($input: StockCountInput!) { setStockCount(input: $input) {
  stockLevel { onHand } errors { code field message } } }"""
ADJUST = """mutation($input: AdjustStockInput!) { adjustStock(input: $input) {
  stockLevel { onHand available } errors { code field message } } }"""
RESERVE = """mutation($input: ReserveStockInput!) { reserveStock(input: $input) {
  reservation { id } errors { code field message } } }"""
MOVE = f"""mutation($input: MoveStockStateInput!) {{ moveStockState(input: $input) {{
  stockLevel {{ {LEVEL_FIELDS} }} movement {{ id {MOVEMENT_FIELDS} }}
  errors {{ code field message }} }} }}"""
SAFETY = f"""mutation($item: ID!, $wh: ID!, $q: Int!) {{
  setSafetyStock(itemId: $item, warehouseId: $wh, quantity: $q) {{
    stockLevel {{ {LEVEL_FIELDS} }} movement {{ {MOVEMENT_FIELDS} }}
    errors {{ code field message }} }} }}"""
MOVES = f"""query($id: ID!) {{ item(id: $id) {{ movements(first: 100) {{ totalCount
  edges {{ node {{ id {MOVEMENT_FIELDS} warehouse {{ id }} }} }} }} }} }}"""

PO_FIELDS = """id number supplier status expectedAt orderedAt createdAt warehouse { id code }
  lines { item { id } quantityOrdered quantityReceived quantityOutstanding }"""
PO_ERRORS = "errors { code field message }"
CREATE_PO = f"""mutation($input: PurchaseOrderInput!) {{ createPurchaseOrder(input: $input) {{
  purchaseOrder {{ {PO_FIELDS} }} {PO_ERRORS} }} }}"""
UPDATE_PO = f"""mutation($id: ID!, $input: PurchaseOrderInput!) {{
  updatePurchaseOrder(id: $id, input: $input) {{
    purchaseOrder {{ {PO_FIELDS} }} {PO_ERRORS} }} }}"""
ORDER_PO = f"""mutation($id: ID!) {{ orderPurchaseOrder(id: $id) {{
  purchaseOrder {{ {PO_FIELDS} }} {PO_ERRORS} }} }}"""
CANCEL_PO = f"""mutation($id: ID!) {{ cancelPurchaseOrder(id: $id) {{
  purchaseOrder {{ {PO_FIELDS} }} {PO_ERRORS} }} }}"""
RECEIVE_PO = f"""mutation($id: ID!, $lines: [PurchaseOrderLineInput!]!, $key: String,
                 $over: Boolean) {{
  receivePurchaseOrder(id: $id, lines: $lines, idempotencyKey: $key, allowOverReceipt: $over) {{
    purchaseOrder {{ {PO_FIELDS} }} movements {{ id {MOVEMENT_FIELDS} }} {PO_ERRORS} }} }}"""

TRANSFER_FIELDS = """id status reference shippedAt receivedAt cancelledAt from { id } to { id }
  lines { item { id } quantity quantityReceived quantityDamaged quantityLost shortReason }"""
SHIP = f"""mutation($input: ShipTransferInput!) {{ shipTransfer(input: $input) {{
  transfer {{ {TRANSFER_FIELDS} }} movements {{ id {MOVEMENT_FIELDS} }}
  errors {{ code field message }} }} }}"""
RECEIVE_TRANSFER = f"""mutation($id: ID!, $lines: [TransferReceiptLineInput!], $key: String) {{
  receiveTransfer(id: $id, lines: $lines, idempotencyKey: $key) {{
    transfer {{ {TRANSFER_FIELDS} }} movements {{ id {MOVEMENT_FIELDS} }}
    errors {{ code field message }} }} }}"""
CANCEL_TRANSFER = f"""mutation($id: ID!) {{ cancelTransfer(id: $id) {{
  transfer {{ {TRANSFER_FIELDS} }} movements {{ id {MOVEMENT_FIELDS} }}
  errors {{ code field message }} }} }}"""


# Seeded rows the tests work on, named by their natural keys (see tests/seeded.py).
SKUS = ("SKU-00001", "SKU-00002", "SKU-00003", "SKU-00004", "SKU-00005")
CODES = ("BER-1", "HAM-1", "MUC-1")


async def ids(client: Any) -> tuple[list[str], list[str]]:
    """IDs of five seeded items and the three seeded warehouses."""
    return await seeded_ids(client.data, SKUS, CODES)


async def level(client: Any, item: str, warehouse: str) -> dict[str, int]:
    data = await client.data(LEVEL, {"id": item, "w": warehouse})
    found: dict[str, int] = data["item"]["stockLevels"][0]
    return found


async def set_count(client: Any, item: str, warehouse: str, counted: int) -> None:
    data = await client.data(
        COUNT, {"input": {"itemId": item, "warehouseId": warehouse, "counted": counted}}
    )
    assert data["setStockCount"]["errors"] == [], data


def move_input(item: str, warehouse: str, source: str, target: str, quantity: int,
               **extra: Any) -> dict[str, Any]:
    return {"input": {"itemId": item, "warehouseId": warehouse, "from": source, "to": target,
                      "quantity": quantity, **extra}}


def errors(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    """A payload's errors as (code, field) pairs."""
    return [(e["code"], e["field"]) for e in payload["errors"]]
