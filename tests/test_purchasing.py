"""Purchase orders: drafts, ordering, receipts and incoming stock, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.inventory import (
    CANCEL_PO,
    CREATE_PO,
    MOVES,
    ORDER_PO,
    RECEIVE_PO,
    UPDATE_PO,
    errors,
    ids,
    level,
    set_count,
)


def po_input(warehouse: str, lines: list[tuple[str, int]], **extra) -> dict:
    return {"input": {"supplier": "Acme Tools", "warehouseId": warehouse,
                      "lines": [{"itemId": i, "quantity": q} for i, q in lines], **extra}}


async def create(client, warehouse: str, lines: list[tuple[str, int]], **extra) -> dict:
    data = (await client.data(CREATE_PO, po_input(warehouse, lines, **extra)))
    assert data["createPurchaseOrder"]["errors"] == [], data
    return data["createPurchaseOrder"]["purchaseOrder"]


async def receive(client, order: str, lines: list[tuple[str, int]], **variables) -> dict:
    data = await client.data(RECEIVE_PO, {
        "id": order, "lines": [{"itemId": i, "quantity": q} for i, q in lines], **variables})
    return data["receivePurchaseOrder"]


async def test_order_receive_in_part_then_in_full(client):
    await client.login_as("manager")
    (a, b, *_), (wh, *_) = await ids(client)
    await set_count(client, a, wh, 2)
    # given a draft for 10 of a and 4 of b, changed once while still a draft
    draft = await create(client, wh, [(a, 8)], expectedAt="2027-01-15T09:00:00+00:00")
    assert draft["status"] == "DRAFT" and draft["number"].startswith("PO-")
    assert draft["orderedAt"] is None and draft["expectedAt"] == "2027-01-15T09:00:00+00:00"
    changed = (await client.data(UPDATE_PO, {"id": draft["id"], **po_input(wh, [(a, 10), (b, 4)])}))
    order = changed["updatePurchaseOrder"]["purchaseOrder"]
    assert order["number"] == draft["number"]  # an update without a number keeps it
    assert [(ln["quantityOrdered"], ln["quantityReceived"]) for ln in order["lines"]] == [
        (10, 0), (4, 0)]
    # a draft is not incoming yet
    assert (await level(client, a, wh))["incoming"] == 0
    # when ordered, its lines are incoming at the level and for the item
    ordered = (await client.data(ORDER_PO, {"id": order["id"]}))["orderPurchaseOrder"]
    assert ordered["purchaseOrder"]["status"] == "ORDERED"
    assert ordered["purchaseOrder"]["orderedAt"] is not None
    assert (await level(client, a, wh))["incoming"] == 10
    assert (await level(client, b, wh))["incoming"] == 4
    # and a clerk receives part of it
    await client.login_as("clerk")
    part = await receive(client, order["id"], [(a, 6)])
    assert part["errors"] == []
    assert part["purchaseOrder"]["status"] == "PARTIALLY_RECEIVED"
    rows = [(m["kind"], m["delta"], m["onHandAfter"], m["reference"]) for m in part["movements"]]
    assert rows == [("RECEIPT", 6, 8, order["number"])]
    after = await level(client, a, wh)
    assert (after["onHand"], after["incoming"], after["available"]) == (8, 4, 8)
    # then the rest: RECEIVED, nothing incoming, nothing more to receive
    rest = await receive(client, order["id"], [(b, 4), (a, 4)])
    assert rest["purchaseOrder"]["status"] == "RECEIVED"
    assert [ln["quantityOutstanding"] for ln in rest["purchaseOrder"]["lines"]] == [0, 0]
    assert (await level(client, a, wh))["incoming"] == 0
    assert (await level(client, b, wh))["incoming"] == 0
    again = await receive(client, order["id"], [(a, 1)])
    assert errors(again) == [("INVALID", ["id"])]
    # and the ledger shows every receipt with the order's number
    moves = (await client.data(MOVES, {"id": a}))["item"]["movements"]["edges"]
    assert [(n["node"]["kind"], n["node"]["delta"], n["node"]["reference"]) for n in moves[:2]] == [
        ("RECEIPT", 4, order["number"]), ("RECEIPT", 6, order["number"])]


async def test_over_receipt_only_when_allowed(client):
    await client.login_as("manager")
    (a, *_), (wh, *_) = await ids(client)
    order = await create(client, wh, [(a, 5)])
    await client.data(ORDER_PO, {"id": order["id"]})
    before = await level(client, a, wh)
    refused = await receive(client, order["id"], [(a, 6)])
    assert errors(refused) == [("INVALID", ["lines", "0", "quantity"])]
    assert await level(client, a, wh) == before
    allowed = await receive(client, order["id"], [(a, 6)], over=True)
    assert allowed["purchaseOrder"]["status"] == "RECEIVED"
    assert allowed["purchaseOrder"]["lines"][0]["quantityReceived"] == 6
    assert allowed["purchaseOrder"]["lines"][0]["quantityOutstanding"] == 0
    after = await level(client, a, wh)
    assert (after["onHand"], after["incoming"]) == (before["onHand"] + 6, 0)


async def test_purchase_order_input_errors_name_their_fields(client):
    await client.login_as("manager")
    (a, b, *_), (wh, *_) = await ids(client)
    taken = await create(client, wh, [(a, 1)], number="SUPPLIER-77")
    cases = [
        (po_input(wh, [(a, 1)], number="SUPPLIER-77"), ("DUPLICATE", ["input", "number"])),
        (po_input(wh, [(a, 1), (a, 2)]), ("DUPLICATE", ["input", "lines", "1", "itemId"])),
        (po_input(wh, [(wh, 1)]), ("NOT_FOUND", ["input", "lines", "0", "itemId"])),
        (po_input(wh, [(b, 0)]), ("INVALID", ["input", "lines", "0", "quantity"])),
        (po_input(wh, []), ("INVALID", ["input", "lines"])),
        (po_input(a, [(b, 1)]), ("NOT_FOUND", ["input", "warehouseId"])),
        ({"input": {**po_input(wh, [(a, 1)])["input"], "supplier": " "}},
         ("INVALID", ["input", "supplier"])),
    ]
    for variables, expected in cases:
        data = (await client.data(CREATE_PO, variables))["createPurchaseOrder"]
        assert data["purchaseOrder"] is None
        assert errors(data) == [expected], variables
    # receipts: a draft cannot be received; an item must be on the order
    draft = await receive(client, taken["id"], [(a, 1)])
    assert errors(draft) == [("INVALID", ["id"])]
    await client.data(ORDER_PO, {"id": taken["id"]})
    stranger = await receive(client, taken["id"], [(b, 1)])
    assert errors(stranger) == [("INVALID", ["lines", "0", "itemId"])]
    unknown = await receive(client, "UHVyY2hhc2VPcmRlcjo5OTk5", [(a, 1)])
    assert errors(unknown) == [("NOT_FOUND", ["id"])]
    # an ordered purchase order no longer changes
    late = (await client.data(UPDATE_PO, {"id": taken["id"], **po_input(wh, [(a, 3)])}))
    assert errors(late["updatePurchaseOrder"]) == [("INVALID", ["id"])]


async def test_receipts_replay_by_key(client):
    await client.login_as("manager")
    (a, *_), (wh, *_) = await ids(client)
    order = await create(client, wh, [(a, 9)])
    await client.data(ORDER_PO, {"id": order["id"]})
    first = await receive(client, order["id"], [(a, 3)], key="dock-7")
    again = await receive(client, order["id"], [(a, 3)], key="dock-7")
    assert [m["id"] for m in again["movements"]] == [m["id"] for m in first["movements"]]
    assert again["purchaseOrder"]["lines"][0]["quantityReceived"] == 3
    misuse = await receive(client, order["id"], [(a, 4)], key="dock-7")
    assert errors(misuse) == [("INVALID", ["idempotencyKey"])]


async def test_cancel_stops_incoming_and_keeps_what_arrived(client):
    await client.login_as("manager")
    (a, *_), (wh, *_) = await ids(client)
    order = await create(client, wh, [(a, 9)])
    await client.data(ORDER_PO, {"id": order["id"]})
    await receive(client, order["id"], [(a, 2)])
    on_hand = (await level(client, a, wh))["onHand"]
    cancelled = (await client.data(CANCEL_PO, {"id": order["id"]}))["cancelPurchaseOrder"]
    assert cancelled["purchaseOrder"]["status"] == "CANCELLED"
    assert cancelled["purchaseOrder"]["lines"][0]["quantityReceived"] == 2
    assert (await level(client, a, wh))["incoming"] == 0
    assert (await level(client, a, wh))["onHand"] == on_hand
    twice = (await client.data(CANCEL_PO, {"id": order["id"]}))["cancelPurchaseOrder"]
    assert errors(twice) == [("INVALID", ["id"])]
    assert errors(await receive(client, order["id"], [(a, 1)])) == [("INVALID", ["id"])]


async def test_roles_and_queries(client):
    await client.login_as("clerk")
    (a, *_), (wh, other, *_) = await ids(client)
    body = await client.execute(CREATE_PO, po_input(wh, [(a, 1)]))
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await client.login_as("manager")
    first = await create(client, wh, [(a, 1)])
    second = await create(client, other, [(a, 2)])
    await client.data(ORDER_PO, {"id": second["id"]})
    await client.login_as("viewer")
    body = await client.execute(RECEIVE_PO, {"id": second["id"], "lines": [
        {"itemId": a, "quantity": 1}]})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    listed = await client.data("""query($wh: ID) {
      drafts: purchaseOrders(status: DRAFT) { totalCount edges { node { id } } }
      here: purchaseOrders(first: 1, warehouseId: $wh) { totalCount
        edges { node { id supplier warehouse { id } } } }
      all: purchaseOrders(first: 10) { edges { node { id } } } }""", {"wh": other})
    assert listed["drafts"]["totalCount"] == 1
    assert listed["drafts"]["edges"][0]["node"]["id"] == first["id"]
    assert listed["here"]["edges"][0]["node"] == {
        "id": second["id"], "supplier": "Acme Tools", "warehouse": {"id": other}}
    assert [e["node"]["id"] for e in listed["all"]["edges"]] == [second["id"], first["id"]]
    node = await client.data("""query($id: ID!) { node(id: $id) { ... on PurchaseOrder {
      number status } } purchaseOrder(id: $id) { number } }""", {"id": second["id"]})
    assert node["node"] == {"number": second["number"], "status": "ORDERED"}
    assert node["purchaseOrder"] == {"number": second["number"]}
    item = await client.data("query($id: ID!) { item(id: $id) { incoming } }", {"id": a})
    assert item["item"]["incoming"] == 2


async def test_items_and_warehouses_on_orders_are_not_deleted(client):
    # given a new item and a new warehouse, with no stock history, on a draft order
    await client.login_as("manager")
    item = (await client.data("""mutation { createItem(input: {sku: "PO-ONLY", name: "On order",
      unitPrice: "1.00"}) { item { id } } }"""))["createItem"]["item"]["id"]
    warehouse = (await client.data("""mutation { createWarehouse(input: {code: "NEW-1",
      name: "New"}) { warehouse { id } } }"""))["createWarehouse"]["warehouse"]["id"]
    await create(client, warehouse, [(item, 3)])
    # then neither can be deleted: they are IN_USE, as items with history are
    gone = await client.data("mutation($id: ID!) { deleteItem(id: $id) { deletedId "
                             "errors { code field } } }", {"id": item})
    assert gone["deleteItem"] == {"deletedId": None, "errors": [
        {"code": "IN_USE", "field": ["id"]}]}
    gone = await client.data("mutation($id: ID!) { deleteWarehouse(id: $id) { deletedId "
                             "errors { code field } } }", {"id": warehouse})
    assert gone["deleteWarehouse"] == {"deletedId": None, "errors": [
        {"code": "IN_USE", "field": ["id"]}]}
