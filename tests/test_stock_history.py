"""Stock as of any instant, rebuilt from the ledger, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.inventory import ADJUST, MOVE, RESERVE, SAFETY, ids, move_input, set_count

ITEM_AT = """query($id: ID!, $at: DateTime!, $wh: ID) { item(id: $id) {
  stockAt(at: $at, warehouseId: $wh) { warehouse { id } item { id } onHand reserved damaged
    qualityControl safetyStock available } } }"""
WAREHOUSE_AT = """query($id: ID!, $at: DateTime!, $first: Int, $after: String) { node(id: $id) {
  ... on Warehouse {
    stockAt(at: $at, first: $first, after: $after) { totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { onHand reserved item { sku } warehouse { code } } } }
    stockLevels(first: $first, after: $after) { edges { node { onHand item { sku } } } } } } }"""
SUMMARY = """query($wh: ID, $at: DateTime) { inventorySummary(warehouseId: $wh, at: $at) {
  itemCount totalOnHand totalValue lowStockCount } }"""


def now() -> str:
    return datetime.now(UTC).isoformat()


async def item_at(client, item: str, at: str, warehouse: str) -> dict:
    data = await client.data(ITEM_AT, {"id": item, "at": at, "wh": warehouse})
    (snapshot,) = data["item"]["stockAt"]
    return {k: v for k, v in snapshot.items() if k not in {"warehouse", "item"}}


def snap(on_hand, reserved, damaged=0, quality_control=0, safety_stock=0, available=None):
    free = on_hand - reserved - damaged - quality_control - safety_stock
    return {"onHand": on_hand, "reserved": reserved, "damaged": damaged,
            "qualityControl": quality_control, "safetyStock": safety_stock,
            "available": max(free, 0) if available is None else available}


async def test_item_stock_at_each_instant_of_its_history(client):
    await client.login_as("manager")
    (item, *_), (a, b, *_) = await ids(client)
    # given a history with an instant recorded after each step
    await set_count(client, item, a, 10)
    after_count = now()
    await client.data(RESERVE, {"input": {"itemId": item, "warehouseId": a, "quantity": 3}})
    after_reserve = now()
    await client.data(ADJUST, {"input": {"itemId": item, "warehouseId": a, "delta": -4,
                                         "kind": "SHIPMENT"}})
    after_ship = now()
    await client.data(MOVE, move_input(item, a, "AVAILABLE", "DAMAGED", 2))
    await client.data(SAFETY, {"item": item, "wh": a, "q": 5})
    after_states = now()
    # then each instant shows the level as it was then
    assert await item_at(client, item, after_count, a) == snap(10, 0)
    assert await item_at(client, item, after_reserve, a) == snap(10, 3)
    assert await item_at(client, item, after_ship, a) == snap(6, 3)
    assert await item_at(client, item, after_states, a) == snap(6, 3, damaged=2, safety_stock=5)
    # before any ledger row the level held nothing
    assert await item_at(client, item, "2000-01-01T00:00:00Z", a) == snap(0, 0)
    # without a warehouse: one snapshot per level, by warehouse, matching today's levels
    data = await client.data(ITEM_AT, {"id": item, "at": now()})
    snapshots = data["item"]["stockAt"]
    levels = (await client.data("""query($id: ID!) { item(id: $id) { stockLevels {
      onHand reserved warehouse { id } } } }""", {"id": item}))["item"]["stockLevels"]
    assert [(s["warehouse"]["id"], s["onHand"], s["reserved"]) for s in snapshots] == [
        (lv["warehouse"]["id"], lv["onHand"], lv["reserved"]) for lv in levels]
    assert {s["item"]["id"] for s in snapshots} == {item}
    assert b in {s["warehouse"]["id"] for s in snapshots}


async def test_rebuilt_ledger_matches_todays_levels(reader_client):
    # given the seeded data, whose ledger adds up to its levels
    await reader_client.login_as("manager")
    _, (wh, *_) = await ids(reader_client)
    # then the summary as of now equals the live one, overall and per warehouse
    for warehouse in (None, wh):
        live = await reader_client.data(SUMMARY, {"wh": warehouse})
        rebuilt = await reader_client.data(SUMMARY, {"wh": warehouse, "at": now()})
        assert rebuilt == live
        assert live["inventorySummary"]["totalOnHand"] > 0
    # and long ago there was nothing, though the items are counted (and all low)
    past = (await reader_client.data(SUMMARY, {"at": "2000-01-01T00:00:00Z"}))["inventorySummary"]
    live = (await reader_client.data(SUMMARY, {}))["inventorySummary"]
    assert (past["totalOnHand"], past["totalValue"]) == (0, "0.00")
    assert past["itemCount"] == past["lowStockCount"] == live["itemCount"]
    # a warehouse page as of now is its stock levels page, page after page
    after = None
    for _ in range(2):
        variables = {"id": wh, "at": now(), "first": 7, "after": after}
        node = (await reader_client.data(WAREHOUSE_AT, variables))["node"]
        history, levels = node["stockAt"], node["stockLevels"]
        assert [(e["node"]["item"]["sku"], e["node"]["onHand"]) for e in history["edges"]] == [
            (e["node"]["item"]["sku"], e["node"]["onHand"]) for e in levels["edges"]]
        assert history["pageInfo"]["hasNextPage"] is True
        assert history["totalCount"] > 14
        after = history["pageInfo"]["endCursor"]


async def test_warehouse_stock_at_reads_in_a_fixed_number_of_statements(reader_client):
    await reader_client.login_as("viewer")
    _, (wh, *_) = await ids(reader_client)
    counts = []
    for first in (5, 50):
        with reader_client.count_statements() as statements:
            await reader_client.data(WAREHOUSE_AT, {"id": wh, "at": now(), "first": first})
        counts.append(len(statements))
    assert counts[0] == counts[1]
