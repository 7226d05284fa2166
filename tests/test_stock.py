"""Stock operations and catalogue mutations, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tests.queries import ADJUST, COUNT, TRANSFER, UPDATE_ITEM
from tests.seeded import seeded_ids

RESERVE = """mutation($input: ReserveStockInput!) { reserveStock(input: $input) {
  reservation { id status quantity expiresAt } errors { code field message } } }"""
RELEASE = """mutation($id: ID!) { releaseReservation(id: $id) {
  reservation { status } errors { code field } } }"""
FULFILL = """mutation($id: ID!) { fulfillReservation(id: $id) {
  reservation { status } errors { code field } } }"""
BULK = """mutation($inputs: [AdjustStockInput!]!, $policy: ErrorPolicy) {
  bulkAdjustStock(inputs: $inputs, errorPolicy: $policy) {
    results { index stockLevel { onHand } movement { delta } errors { code field } }
    errors { code field } } }"""
LEVEL = """query($id: ID!, $w: ID) { item(id: $id) { totalOnHand totalAvailable
  stockLevels(warehouseId: $w) { onHand reserved available } } }"""
MOVES = """query($id: ID!) { item(id: $id) { movements(first: 100) { totalCount
  edges { node { kind delta onHandAfter reservedAfter } } } } }"""


async def level(client, item, warehouse):
    data = await client.data(LEVEL, {"id": item, "w": warehouse})
    return data["item"]["stockLevels"][0]


async def set_count(client, item, warehouse, counted):
    data = await client.data(
        COUNT, {"input": {"itemId": item, "warehouseId": warehouse, "counted": counted}}
    )
    return data["setStockCount"]


def adjust_input(item, warehouse, delta, kind, **extra):
    return {"input": {"itemId": item, "warehouseId": warehouse, "delta": delta, "kind": kind,
                      **extra}}


async def test_adjust_writes_level_and_ledger(client):
    await client.login_as("clerk")
    [item], [wh] = await seeded_ids(client.data, ["SKU-00001"], ["BER-1"])
    assert (await set_count(client, item, wh, 10))["errors"] == []
    data = await client.data(
        ADJUST, adjust_input(item, wh, 5, "RECEIPT", reason="PO", reference="PO-1")
    )
    result = data["adjustStock"]
    assert result["errors"] == []
    assert result["stockLevel"]["onHand"] == 15
    assert result["movement"] == {
        "id": result["movement"]["id"], "kind": "RECEIPT", "delta": 5, "onHandAfter": 15,
        "reservedAfter": 0, "reason": "PO", "reference": "PO-1",
        "actor": {"email": "clerk@example.com"},
    }


@pytest.mark.parametrize(
    ("delta", "kind", "code", "field"),
    [
        (0, "ADJUSTMENT", "INVALID", ["input", "delta"]),
        (1_000_000_001, "RECEIPT", "INVALID", ["input", "delta"]),
        (-1, "RECEIPT", "INVALID", ["input", "delta"]),
        (1, "SHIPMENT", "INVALID", ["input", "delta"]),
        (1, "COUNT", "INVALID", ["input", "kind"]),
        (-1000, "SHIPMENT", "INSUFFICIENT_STOCK", ["input", "delta"]),
    ],
)
async def test_adjust_refusals_change_nothing(client, delta, kind, code, field):
    await client.login_as("clerk")
    [item], [wh] = await seeded_ids(client.data, ["SKU-00001"], ["BER-1"])
    before = await level(client, item, wh)
    data = await client.data(ADJUST, adjust_input(item, wh, delta, kind))
    assert data["adjustStock"]["stockLevel"] is None
    assert [(e["code"], e["field"]) for e in data["adjustStock"]["errors"]] == [(code, field)]
    assert await level(client, item, wh) == before


async def test_unknown_ids_are_not_found(client):
    await client.login_as("clerk")
    _, [wh] = await seeded_ids(client.data, codes=["BER-1"])
    data = await client.data(ADJUST, adjust_input(wh, wh, 1, "RECEIPT"))  # a warehouse ID as item
    assert data["adjustStock"]["errors"][0]["code"] == "NOT_FOUND"
    data = await client.data(RELEASE, {"id": "UmVzZXJ2YXRpb246OTk5OQ=="})
    assert data["releaseReservation"]["errors"][0]["code"] == "NOT_FOUND"


async def test_count_compare_and_swap(client):
    await client.login_as("clerk")
    [item], [wh] = await seeded_ids(client.data, ["SKU-00001"], ["BER-1"])
    assert (await set_count(client, item, wh, 7))["errors"] == []
    stale = await client.data(COUNT, {"input": {"itemId": item, "warehouseId": wh, "counted": 3,
                                                "expectedOnHand": 6}})
    assert stale["setStockCount"]["errors"][0]["code"] == "VERSION_CONFLICT"
    assert (await level(client, item, wh))["onHand"] == 7
    fresh = await client.data(COUNT, {"input": {"itemId": item, "warehouseId": wh, "counted": 3,
                                                "expectedOnHand": 7}})
    assert fresh["setStockCount"]["movement"] == {"kind": "COUNT", "delta": -4, "onHandAfter": 3}


async def test_transfer_moves_units_with_two_ledger_rows(client):
    await client.login_as("clerk")
    [item], [a, b] = await seeded_ids(client.data, ["SKU-00001"], ["BER-1", "HAM-1"])
    assert (await set_count(client, item, a, 10))["errors"] == []
    assert (await set_count(client, item, b, 0))["errors"] == []
    data = await client.data(TRANSFER, {"input": {"itemId": item, "fromWarehouseId": a,
                                                  "toWarehouseId": b, "quantity": 4}})
    result = data["transferStock"]
    assert result["errors"] == []
    assert (result["from"]["onHand"], result["to"]["onHand"]) == (6, 4)
    assert [(m["kind"], m["delta"]) for m in result["movements"]] == [
        ("TRANSFER_OUT", -4), ("TRANSFER_IN", 4)]
    too_much = await client.data(TRANSFER, {"input": {"itemId": item, "fromWarehouseId": a,
                                                      "toWarehouseId": b, "quantity": 7}})
    assert too_much["transferStock"]["errors"][0]["code"] == "INSUFFICIENT_STOCK"
    same = await client.data(TRANSFER, {"input": {"itemId": item, "fromWarehouseId": a,
                                                  "toWarehouseId": a, "quantity": 1}})
    assert same["transferStock"]["errors"][0]["code"] == "INVALID"


async def test_reservations_release_and_fulfil(client):
    await client.login_as("clerk")
    [item], [wh] = await seeded_ids(client.data, ["SKU-00001"], ["BER-1"])
    assert (await set_count(client, item, wh, 10))["errors"] == []
    reserve = {"input": {"itemId": item, "warehouseId": wh, "quantity": 6}}
    r1 = (await client.data(RESERVE, reserve))["reserveStock"]["reservation"]
    assert (await level(client, item, wh)) == {"onHand": 10, "reserved": 6, "available": 4}
    # reserved units are not available: to others, or to shipping
    refused = await client.data(RESERVE, {"input": {**reserve["input"], "quantity": 5}})
    assert refused["reserveStock"]["errors"][0]["code"] == "INSUFFICIENT_STOCK"
    ship = await client.data(ADJUST, adjust_input(item, wh, -5, "SHIPMENT"))
    assert ship["adjustStock"]["errors"][0]["code"] == "INSUFFICIENT_STOCK"
    counted = await client.data(COUNT, {"input": {"itemId": item, "warehouseId": wh,
                                                  "counted": 5}})
    assert counted["setStockCount"]["errors"][0]["code"] == "INSUFFICIENT_STOCK"
    # fulfilment takes the units out of stock; a closed reservation stays closed
    done = await client.data(FULFILL, {"id": r1["id"]})
    assert done["fulfillReservation"]["reservation"]["status"] == "FULFILLED"
    assert (await level(client, item, wh)) == {"onHand": 4, "reserved": 0, "available": 4}
    again = await client.data(RELEASE, {"id": r1["id"]})
    assert again["releaseReservation"]["errors"][0]["code"] == "INVALID"
    r2 = (await client.data(RESERVE, {"input": {**reserve["input"], "quantity": 3}}))
    r2_id = r2["reserveStock"]["reservation"]["id"]
    released = await client.data(RELEASE, {"id": r2_id})
    assert released["releaseReservation"]["reservation"]["status"] == "RELEASED"
    assert (await level(client, item, wh)) == {"onHand": 4, "reserved": 0, "available": 4}
    kinds = [e["node"]["kind"] for e in
             (await client.data(MOVES, {"id": item}))["item"]["movements"]["edges"]][:4]
    assert kinds == ["RELEASE", "RESERVATION", "FULFILLMENT", "RESERVATION"]


async def test_expired_reservations_release_themselves(client):
    await client.login_as("clerk")
    [item, other], [wh] = await seeded_ids(client.data, ["SKU-00001", "SKU-00002"], ["BER-1"])
    assert (await set_count(client, item, wh, 10))["errors"] == []
    assert (await set_count(client, other, wh, 10))["errors"] == []
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    for target in (item, other):
        data = await client.data(RESERVE, {"input": {"itemId": target, "warehouseId": wh,
                                                     "quantity": 8, "expiresAt": soon}})
        assert data["reserveStock"]["errors"] == []
    # lazily: touching the level releases it at once
    await asyncio.sleep(1.2)
    touched = await client.data(ADJUST, adjust_input(item, wh, 1, "RECEIPT"))
    assert touched["adjustStock"]["stockLevel"] == {
        "id": touched["adjustStock"]["stockLevel"]["id"], "onHand": 11, "reserved": 0,
        "available": 11}
    # and by the sweeper, with nobody asking
    for _ in range(50):
        if (await level(client, other, wh))["reserved"] == 0:
            break
        await asyncio.sleep(0.1)
    assert await level(client, other, wh) == {"onHand": 10, "reserved": 0, "available": 10}
    data = await client.data("{ reservations(first: 5, status: EXPIRED) { totalCount } }")
    assert data["reservations"]["totalCount"] == 2
    first = (await client.data(MOVES, {"id": other}))["item"]["movements"]["edges"][0]["node"]
    assert first == {"kind": "RELEASE", "delta": -8, "onHandAfter": 10, "reservedAfter": 0}
    past = await client.data(RESERVE, {"input": {"itemId": item, "warehouseId": wh,
                                                 "quantity": 1, "expiresAt": soon}})
    assert past["reserveStock"]["errors"][0]["code"] == "INVALID"


async def test_bulk_reject_everything_is_all_or_nothing(client):
    await client.login_as("clerk")
    [a, b], [wh] = await seeded_ids(client.data, ["SKU-00001", "SKU-00002"], ["BER-1"])
    assert (await set_count(client, a, wh, 5))["errors"] == []
    assert (await set_count(client, b, wh, 5))["errors"] == []
    rows = [
        adjust_input(a, wh, 2, "RECEIPT")["input"],
        adjust_input(b, wh, -9, "SHIPMENT")["input"],
    ]
    data = (await client.data(BULK, {"inputs": rows}))["bulkAdjustStock"]
    assert [(e["code"], e["field"]) for e in data["errors"]] == [
        ("INSUFFICIENT_STOCK", ["inputs", "1", "delta"])]
    assert data["results"][0]["stockLevel"] is None
    assert (await level(client, a, wh))["onHand"] == 5
    # REJECT_FAILED_ROWS keeps the good rows
    data = (await client.data(BULK, {"inputs": rows, "policy": "REJECT_FAILED_ROWS"}))
    result = data["bulkAdjustStock"]
    assert result["results"][0]["stockLevel"] == {"onHand": 7}
    assert result["results"][1]["errors"][0]["code"] == "INSUFFICIENT_STOCK"
    assert (await level(client, a, wh))["onHand"] == 7
    assert (await level(client, b, wh))["onHand"] == 5


async def test_idempotency_replay_and_misuse(client):
    await client.login_as("clerk")
    [item], [wh] = await seeded_ids(client.data, ["SKU-00001"], ["BER-1"])
    assert (await set_count(client, item, wh, 5))["errors"] == []
    body = adjust_input(item, wh, 3, "RECEIPT", idempotencyKey="k-1")
    first = (await client.data(ADJUST, body))["adjustStock"]
    again = (await client.data(ADJUST, body))["adjustStock"]
    assert again["movement"]["id"] == first["movement"]["id"]
    assert (await level(client, item, wh))["onHand"] == 8
    other = adjust_input(item, wh, 4, "RECEIPT", idempotencyKey="k-1")
    misuse = (await client.data(ADJUST, other))["adjustStock"]
    assert misuse["errors"][0] == {"code": "INVALID", "field": ["input", "idempotencyKey"],
                                   "message": misuse["errors"][0]["message"]}
    # keys are scoped per user
    await client.login_as("manager")
    mine = (await client.data(ADJUST, body))["adjustStock"]
    assert mine["movement"]["id"] != first["movement"]["id"]


CREATE_ITEM = """mutation($input: CreateItemInput!) { createItem(input: $input) {
  item { id sku version unitPrice unitCost } errors { code field } } }"""


async def test_item_crud(client):
    await client.login_as("manager")
    created = (await client.data(CREATE_ITEM, {"input": {
        "sku": "NEW-1", "name": "New", "unitPrice": "12.50", "unitCost": "7.25"}}))["createItem"]
    assert created["errors"] == []
    assert created["item"]["unitPrice"] == "12.50"
    item = created["item"]["id"]
    dup = await client.data(CREATE_ITEM, {"input": {"sku": "NEW-1", "name": "X",
                                                    "unitPrice": "1"}})
    assert dup["createItem"]["errors"][0] == {"code": "DUPLICATE", "field": ["input", "sku"]}
    bad = await client.data(CREATE_ITEM, {"input": {"sku": " ", "name": "X", "unitPrice": "-1"}})
    assert bad["createItem"]["errors"][0]["code"] == "INVALID"
    ok = await client.data(UPDATE_ITEM, {"id": item, "input": {"name": "Renamed",
                                                               "description": "d"}, "v": 1})
    assert ok["updateItem"]["item"] == {"name": "Renamed", "version": 2, "description": "d"}
    stale = await client.data(UPDATE_ITEM, {"id": item, "input": {"name": "Lost"}, "v": 1})
    assert stale["updateItem"]["errors"][0]["code"] == "VERSION_CONFLICT"
    cleared = await client.data(UPDATE_ITEM, {"id": item, "input": {"description": None}})
    assert cleared["updateItem"]["item"]["description"] is None
    deleted = await client.data("mutation($id: ID!) { deleteItem(id: $id) { deletedId errors "
                                "{ code } } }", {"id": item})
    assert deleted["deleteItem"] == {"deletedId": item, "errors": []}
    [used], _ = await seeded_ids(client.data, ["SKU-00001"])  # seeded with stock history
    in_use = await client.data("mutation($id: ID!) { deleteItem(id: $id) { deletedId errors "
                               "{ code } } }", {"id": used})
    assert in_use["deleteItem"]["errors"][0]["code"] == "IN_USE"
    archived = await client.data("mutation($id: ID!) { archiveItem(id: $id) { item "
                                 "{ archived } errors { code } } }", {"id": used})
    assert archived["archiveItem"]["item"]["archived"] is True
    hidden = await client.data('{ items(first: 1, filter: {archived: true}) { totalCount } }')
    assert hidden["items"]["totalCount"] == 1


async def test_category_and_warehouse_rules(client):
    await client.login_as("manager")
    make = """mutation($input: CategoryInput!) { createCategory(input: $input) {
      category { id } errors { code } } }"""
    top = (await client.data(make, {"input": {"name": "Top"}}))["createCategory"]["category"]["id"]
    child = (await client.data(make, {"input": {"name": "Child", "parentId": top}}))
    child_id = child["createCategory"]["category"]["id"]
    cycle = await client.data(
        """mutation($id: ID!, $input: CategoryInput!) { updateCategory(id: $id, input: $input)
           { errors { code field } } }""",
        {"id": top, "input": {"name": "Top", "parentId": child_id}},
    )
    assert cycle["updateCategory"]["errors"][0] == {"code": "INVALID", "field": ["input",
                                                                                 "parentId"]}
    delete_cat = "mutation($id: ID!) { deleteCategory(id: $id) { deletedId errors { code } } }"
    assert (await client.data(delete_cat, {"id": top}))["deleteCategory"]["errors"][0][
        "code"] == "IN_USE"
    assert (await client.data(delete_cat, {"id": child_id}))["deleteCategory"]["errors"] == []
    _, [wh] = await seeded_ids(client.data, codes=["BER-1"])  # seeded with stock
    delete_wh = "mutation($id: ID!) { deleteWarehouse(id: $id) { deletedId errors { code } } }"
    assert (await client.data(delete_wh, {"id": wh}))["deleteWarehouse"]["errors"][0][
        "code"] == "IN_USE"
    new = await client.data("""mutation { createWarehouse(input: {code: "NEW", name: "N"})
        { warehouse { id } errors { code } } }""")
    dup = await client.data("""mutation { createWarehouse(input: {code: "NEW", name: "N"})
        { warehouse { id } errors { code } } }""")
    assert dup["createWarehouse"]["errors"][0]["code"] == "DUPLICATE"
    gone = await client.data(delete_wh, {"id": new["createWarehouse"]["warehouse"]["id"]})
    assert gone["deleteWarehouse"]["errors"] == []


async def test_weak_roles_are_forbidden(client):
    await client.login_as("viewer")
    [item], [wh] = await seeded_ids(client.data, ["SKU-00001"], ["BER-1"])
    body = await client.execute(ADJUST, adjust_input(item, wh, 1, "RECEIPT"))
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await client.login_as("clerk")
    body = await client.execute(CREATE_ITEM, {"input": {"sku": "Z", "name": "Z",
                                                        "unitPrice": "1"}})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await client.execute("query($id: ID!) { item(id: $id) { sku unitCost } }",
                                {"id": item})
    assert body["data"]["item"]["unitCost"] is None
    assert body["data"]["item"]["sku"]
    assert body["errors"][0]["path"] == ["item", "unitCost"]
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
