"""Transfers in transit: ship, receive in full or short, cancel; on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.inventory import (
    CANCEL_TRANSFER,
    RECEIVE_TRANSFER,
    SHIP,
    errors,
    ids,
    level,
    set_count,
)


def ship_input(item: str, source: str, target: str, quantity: int, **extra) -> dict:
    return {"input": {"itemId": item, "fromWarehouseId": source, "toWarehouseId": target,
                      "quantity": quantity, **extra}}


async def ship(client, item: str, source: str, target: str, quantity: int, **extra) -> dict:
    data = (await client.data(SHIP, ship_input(item, source, target, quantity, **extra)))
    assert data["shipTransfer"]["errors"] == [], data
    return data["shipTransfer"]


async def given_stock(client, item: str, source: str, target: str) -> None:
    await set_count(client, item, source, 20)
    await set_count(client, item, target, 5)


async def test_shipped_units_are_in_transit_until_received(client):
    await client.login_as("clerk")
    (item, *_), (a, b, *_) = await ids(client)
    await given_stock(client, item, a, b)
    # when 8 units are shipped from a to b
    shipped = await ship(client, item, a, b, 8, reference="TR-1")
    transfer = shipped["transfer"]
    # then they leave a at once, and b sees them in transit
    assert transfer["status"] == "IN_TRANSIT" and transfer["receivedAt"] is None
    assert (transfer["from"]["id"], transfer["to"]["id"], transfer["reference"]) == (a, b, "TR-1")
    assert [(m["kind"], m["delta"], m["onHandAfter"]) for m in shipped["movements"]] == [
        ("TRANSFER_OUT", -8, 12)]
    assert (await level(client, item, a))["onHand"] == 12
    target = await level(client, item, b)
    assert (target["onHand"], target["inTransit"], target["available"]) == (5, 8, 5)
    listed = await client.data("""query($wh: ID) { transfers(status: IN_TRANSIT, warehouseId: $wh)
      { totalCount edges { node { id } } } }""", {"wh": b})
    assert listed["transfers"]["totalCount"] == 1
    # when received without lines: everything arrived
    received = (await client.data(RECEIVE_TRANSFER, {"id": transfer["id"]}))["receiveTransfer"]
    assert received["transfer"]["status"] == "RECEIVED"
    assert received["transfer"]["receivedAt"] is not None
    assert received["transfer"]["lines"][0]["quantityReceived"] == 8
    assert [(m["kind"], m["delta"], m["onHandAfter"], m["reference"])
            for m in received["movements"]] == [("TRANSFER_IN", 8, 13, "TR-1")]
    target = await level(client, item, b)
    assert (target["onHand"], target["inTransit"]) == (13, 0)
    # and a transfer is received once
    again = (await client.data(RECEIVE_TRANSFER, {"id": transfer["id"]}))["receiveTransfer"]
    assert errors(again) == [("INVALID", ["id"])]


async def test_short_receipts_record_damaged_and_lost_units(client):
    await client.login_as("clerk")
    (item, *_), (a, b, *_) = await ids(client)
    await given_stock(client, item, a, b)
    first = (await ship(client, item, a, b, 10))["transfer"]
    second = (await ship(client, item, a, b, 6))["transfer"]
    # when 7 of 10 arrive in good condition and 3 arrive damaged
    damaged = (await client.data(RECEIVE_TRANSFER, {"id": first["id"], "lines": [
        {"itemId": item, "quantity": 7, "shortReason": "Crushed pallet",
         "shortState": "DAMAGED"}]}))["receiveTransfer"]
    # then all 10 are on hand at b, 3 of them damaged
    assert damaged["errors"] == []
    line = damaged["transfer"]["lines"][0]
    assert (line["quantityReceived"], line["quantityDamaged"], line["quantityLost"],
            line["shortReason"]) == (7, 3, 0, "Crushed pallet")
    assert [(m["kind"], m["delta"], m["fromState"], m["toState"], m["damagedAfter"])
            for m in damaged["movements"]] == [
        ("TRANSFER_IN", 10, None, None, 0), ("STATE_CHANGE", 3, "AVAILABLE", "DAMAGED", 3)]
    target = await level(client, item, b)
    assert (target["onHand"], target["damaged"], target["available"], target["inTransit"]) == (
        15, 3, 12, 6)
    # when 4 of 6 arrive and 2 were lost on the way (LOST is the default)
    lost = (await client.data(RECEIVE_TRANSFER, {"id": second["id"], "lines": [
        {"itemId": item, "quantity": 4, "shortReason": "Fell off the truck"}]}))["receiveTransfer"]
    line = lost["transfer"]["lines"][0]
    assert (line["quantityReceived"], line["quantityDamaged"], line["quantityLost"]) == (4, 0, 2)
    assert [(m["kind"], m["delta"]) for m in lost["movements"]] == [("TRANSFER_IN", 4)]
    assert "2 lost in transit: Fell off the truck" in lost["movements"][0]["reason"]
    target = await level(client, item, b)
    assert (target["onHand"], target["damaged"], target["inTransit"]) == (19, 3, 0)
    assert (await level(client, item, a))["onHand"] == 4


async def test_receipt_and_shipment_errors_name_their_fields(client):
    await client.login_as("clerk")
    (item, other, *_), (a, b, *_) = await ids(client)
    await given_stock(client, item, a, b)
    transfer = (await ship(client, item, a, b, 5))["transfer"]
    cases = [
        ([{"itemId": item, "quantity": 3}], ("INVALID", ["lines", "0", "shortReason"])),
        ([{"itemId": item, "quantity": 6}], ("INVALID", ["lines", "0", "quantity"])),
        ([{"itemId": other, "quantity": 1}], ("INVALID", ["lines", "0", "itemId"])),
        ([{"itemId": item, "quantity": -1}], ("INVALID", ["lines", "0", "quantity"])),
        ([{"itemId": item, "quantity": 4, "shortReason": " "}],
         ("INVALID", ["lines", "0", "shortReason"])),
    ]
    for lines, expected in cases:
        data = (await client.data(RECEIVE_TRANSFER, {"id": transfer["id"], "lines": lines}))
        assert errors(data["receiveTransfer"]) == [expected], lines
    assert (await level(client, item, b))["inTransit"] == 5
    too_many = (await client.data(SHIP, ship_input(item, a, b, 16)))["shipTransfer"]
    assert errors(too_many) == [("INSUFFICIENT_STOCK", ["input", "quantity"])]
    same = (await client.data(SHIP, ship_input(item, a, a, 1)))["shipTransfer"]
    assert errors(same) == [("INVALID", ["input", "toWarehouseId"])]
    nowhere = (await client.data(SHIP, ship_input(item, a, item, 1)))["shipTransfer"]
    assert errors(nowhere) == [("NOT_FOUND", ["input", "toWarehouseId"])]
    await client.login_as("viewer")
    body = await client.execute(CANCEL_TRANSFER, {"id": transfer["id"]})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_cancel_returns_units_to_the_source(client):
    await client.login_as("clerk")
    (item, *_), (a, b, *_) = await ids(client)
    await given_stock(client, item, a, b)
    transfer = (await ship(client, item, a, b, 7, reference="TR-9"))["transfer"]
    cancelled = (await client.data(CANCEL_TRANSFER, {"id": transfer["id"]}))["cancelTransfer"]
    assert cancelled["transfer"]["status"] == "CANCELLED"
    assert cancelled["transfer"]["cancelledAt"] is not None
    assert [(m["kind"], m["delta"], m["onHandAfter"], m["reference"])
            for m in cancelled["movements"]] == [("TRANSFER_IN", 7, 20, "TR-9")]
    assert (await level(client, item, a))["onHand"] == 20
    assert (await level(client, item, b))["inTransit"] == 0
    twice = (await client.data(CANCEL_TRANSFER, {"id": transfer["id"]}))["cancelTransfer"]
    assert errors(twice) == [("INVALID", ["id"])]
    late = (await client.data(RECEIVE_TRANSFER, {"id": transfer["id"]}))["receiveTransfer"]
    assert errors(late) == [("INVALID", ["id"])]


async def test_shipments_and_receipts_replay_by_key(client):
    await client.login_as("clerk")
    (item, *_), (a, b, *_) = await ids(client)
    await given_stock(client, item, a, b)
    first = await ship(client, item, a, b, 3, idempotencyKey="ship-1")
    again = await ship(client, item, a, b, 3, idempotencyKey="ship-1")
    assert again["transfer"]["id"] == first["transfer"]["id"]
    assert again["movements"][0]["id"] == first["movements"][0]["id"]
    assert (await level(client, item, a))["onHand"] == 17
    variables = {"id": first["transfer"]["id"], "key": "recv-1"}
    got = (await client.data(RECEIVE_TRANSFER, variables))["receiveTransfer"]
    replay = (await client.data(RECEIVE_TRANSFER, variables))["receiveTransfer"]
    assert replay["errors"] == [] and replay["movements"] == got["movements"]
    assert (await level(client, item, b))["onHand"] == 8
    node = await client.data("""query($id: ID!) { node(id: $id) { ... on Transfer { status } }
      transfer(id: $id) { lines { quantity } } }""", {"id": first["transfer"]["id"]})
    assert node == {"node": {"status": "RECEIVED"}, "transfer": {"lines": [{"quantity": 3}]}}
