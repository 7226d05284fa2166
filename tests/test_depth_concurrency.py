"""Concurrent receipts, state moves, transfers and order changes over real HTTP to a real
uvicorn server: nothing received twice, nothing oversold, every change in the ledger."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from db.migrate import upgrade
from tests.conftest import SEED_ITEMS
from tests.conftest import _seed as seed_database
from tests.inventory import (
    ADJUST,
    CANCEL_PO,
    CANCEL_TRANSFER,
    CODES,
    COUNT,
    CREATE_PO,
    LEVEL,
    MOVE,
    MOVES,
    ORDER_PO,
    RECEIVE_PO,
    RECEIVE_TRANSFER,
    RESERVE,
    SAFETY,
    SHIP,
    SKUS,
    UPDATE_PO,
    move_input,
)
from tests.seeded import seeded_ids
from tests.server import serve

pytestmark = pytest.mark.e2e


class Api:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.tokens: dict[str, str] = {}

    async def login(self, role: str) -> None:
        data = await self.run(
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) "
            "{ accessToken } }", {"e": f"{role}@example.com", "p": role}, role=None)
        self.tokens[role] = data["login"]["accessToken"]

    async def run(self, query: str, variables: dict | None = None,
                  role: str | None = "clerk") -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert not body.get("errors"), body
        return body["data"]

    async def level(self, item: str, warehouse: str) -> dict[str, int]:
        data = await self.run(LEVEL, {"id": item, "w": warehouse})
        found: dict[str, int] = data["item"]["stockLevels"][0]
        return found

    async def count(self, item: str, warehouse: str, counted: int) -> None:
        data = await self.run(COUNT, {"input": {"itemId": item, "warehouseId": warehouse,
                                                "counted": counted}})
        assert data["setStockCount"]["errors"] == []

    async def newest_movements(self, item: str, n: int) -> list[dict[str, Any]]:
        edges = (await self.run(MOVES, {"id": item}))["item"]["movements"]["edges"]
        return [e["node"] for e in edges[:n]]


@pytest.fixture(scope="module")
async def server(backend, templates, tmp_path_factory):
    """One seeded database and server per backend for the whole module: each test works on
    its own items, and starting a server per test cost more than the tests themselves."""
    url = templates.template(backend, f"depth_concurrency_{backend}")
    await asyncio.to_thread(upgrade, url)
    await seed_database(url, SEED_ITEMS)
    with serve(url, tmp_path_factory.mktemp("depth")) as running:
        yield running


@pytest.fixture
async def api(server):
    # A client per test: pooled connections idle between tests would meet the server's
    # keep-alive timeout half-closed.
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=120) as http:
        client = Api(http)
        for role in ("clerk", "manager"):
            await client.login(role)
        yield client


async def _ids(api: Api) -> tuple[list[str], list[str]]:
    return await seeded_ids(api.run, SKUS, CODES)


def _codes(results: list[dict[str, Any]], field: str) -> list[str | None]:
    return [r[field]["errors"][0]["code"] if r[field]["errors"] else None for r in results]


async def _ordered_po(api: Api, item: str, warehouse: str, quantity: int) -> dict[str, Any]:
    created = await api.run(CREATE_PO, {"input": {
        "supplier": "Acme", "warehouseId": warehouse,
        "lines": [{"itemId": item, "quantity": quantity}]}}, role="manager")
    order = created["createPurchaseOrder"]["purchaseOrder"]
    await api.run(ORDER_PO, {"id": order["id"]}, role="manager")
    return order


async def test_30_receipts_against_20_outstanding_receive_each_unit_once(api):
    (item, *_), (wh, *_) = await _ids(api)
    await api.count(item, wh, 0)
    order = await _ordered_po(api, item, wh, 20)
    body = {"id": order["id"], "lines": [{"itemId": item, "quantity": 1}]}
    results = await asyncio.gather(*(api.run(RECEIVE_PO, body) for _ in range(30)))
    codes = _codes(results, "receivePurchaseOrder")
    assert codes.count(None) == 20 and set(codes) == {None, "INVALID"}
    after = await api.level(item, wh)
    assert (after["onHand"], after["incoming"]) == (20, 0)
    rows = await api.newest_movements(item, 20)
    assert sorted(r["onHandAfter"] for r in rows) == list(range(1, 21))
    assert {(r["kind"], r["reference"]) for r in rows} == {("RECEIPT", order["number"])}
    final = await api.run("query($id: ID!) { purchaseOrder(id: $id) { status } }",
                          {"id": order["id"]})
    assert final["purchaseOrder"]["status"] == "RECEIVED"


async def test_shipments_and_damage_never_take_more_than_available(api):
    (_, item, *_), (wh, *_) = await _ids(api)
    await api.count(item, wh, 50)
    ship = {"input": {"itemId": item, "warehouseId": wh, "delta": -1, "kind": "SHIPMENT"}}
    damage = move_input(item, wh, "AVAILABLE", "DAMAGED", 1)
    calls = [api.run(ADJUST, ship) for _ in range(40)] + [api.run(MOVE, damage) for _ in range(30)]
    results = await asyncio.gather(*calls)
    shipped = _codes(results[:40], "adjustStock").count(None)
    damaged = _codes(results[40:], "moveStockState").count(None)
    assert shipped + damaged == 50
    assert set(_codes(results[:40], "adjustStock")) <= {None, "INSUFFICIENT_STOCK"}
    after = await api.level(item, wh)
    assert (after["onHand"], after["damaged"], after["available"]) == (50 - shipped, damaged, 0)
    rows = await api.newest_movements(item, 50)
    assert sum(1 for r in rows if r["kind"] == "STATE_CHANGE") == damaged
    assert sorted(r["damagedAfter"] for r in rows if r["kind"] == "STATE_CHANGE") == list(
        range(1, damaged + 1))


async def test_shipping_transfers_never_oversell_and_receive_or_cancel_wins_once(api):
    (_, _, item, *_), (a, b, *_) = await _ids(api)
    await api.count(item, a, 20)
    await api.count(item, b, 0)
    one = {"input": {"itemId": item, "fromWarehouseId": a, "toWarehouseId": b, "quantity": 1}}
    results = await asyncio.gather(*(api.run(SHIP, one) for _ in range(30)))
    assert _codes(results, "shipTransfer").count(None) == 20
    assert (await api.level(item, b))["inTransit"] == 20
    # receipts and cancellations race for each transfer: exactly one of them wins
    transfers = [r["shipTransfer"]["transfer"]["id"] for r in results
                 if not r["shipTransfer"]["errors"]]
    calls = []
    for transfer in transfers[:10]:
        calls += [api.run(RECEIVE_TRANSFER, {"id": transfer}) for _ in range(3)]
        calls += [api.run(CANCEL_TRANSFER, {"id": transfer}) for _ in range(3)]
    raced = await asyncio.gather(*calls)
    for n in range(10):
        group = raced[n * 6: n * 6 + 6]
        wins = _codes(group[:3], "receiveTransfer") + _codes(group[3:], "cancelTransfer")
        assert wins.count(None) == 1, group
    received = sum(_codes(raced[n * 6: n * 6 + 3], "receiveTransfer").count(None)
                   for n in range(10))
    source, target = await api.level(item, a), await api.level(item, b)
    assert target["onHand"] == received
    assert target["inTransit"] == 10
    assert source["onHand"] + target["onHand"] + target["inTransit"] == 20


async def test_safety_stock_and_reservations_race_without_losing_either(api):
    (_, _, _, item, *_), (wh, *_) = await _ids(api)
    await api.count(item, wh, 30)
    reserve = {"input": {"itemId": item, "warehouseId": wh, "quantity": 1}}
    calls = [api.run(RESERVE, reserve) for _ in range(30)]
    calls.insert(10, api.run(SAFETY, {"item": item, "wh": wh, "q": 20}, role="manager"))
    results = await asyncio.gather(*calls)
    reserved = _codes([r for r in results if "reserveStock" in r], "reserveStock").count(None)
    # at least the 10 units above the safety stock, at most everything before it was set
    assert 10 <= reserved <= 30
    after = await api.level(item, wh)
    assert (after["reserved"], after["safetyStock"]) == (reserved, 20)
    assert after["available"] == max(30 - reserved - 20, 0)
    newest = (await api.newest_movements(item, 1))[0]
    assert (newest["reservedAfter"], newest["safetyStockAfter"]) == (reserved, 20)


async def test_order_changes_race_to_one_outcome(api):
    (*_, other, item), (wh, *_) = await _ids(api)
    # the same number twice at once: one order, one DUPLICATE per loser
    make = {"input": {"supplier": "Acme", "warehouseId": wh, "number": "RACE-1",
                      "lines": [{"itemId": item, "quantity": 5}]}}
    made = await asyncio.gather(*(api.run(CREATE_PO, make, role="manager") for _ in range(8)))
    codes = _codes(made, "createPurchaseOrder")
    assert codes.count(None) == 1 and set(codes) == {None, "DUPLICATE"}
    order = next(r for r in made if not r["createPurchaseOrder"]["errors"])
    order_id = order["createPurchaseOrder"]["purchaseOrder"]["id"]
    # numbers generated at once are all distinct
    plain = {"input": {**make["input"], "number": None}}
    numbered = await asyncio.gather(*(api.run(CREATE_PO, plain, role="manager")
                                      for _ in range(8)))
    numbers = {r["createPurchaseOrder"]["purchaseOrder"]["number"] for r in numbered}
    assert len(numbers) == 8
    # updates racing an order: those before it apply, those after it are refused
    change = {"id": order_id, "input": {**make["input"], "lines": [
        {"itemId": other, "quantity": 7}]}}
    calls = [api.run(UPDATE_PO, change, role="manager") for _ in range(6)]
    calls.insert(3, api.run(ORDER_PO, {"id": order_id}, role="manager"))
    calls += [api.run(ORDER_PO, {"id": order_id}, role="manager") for _ in range(3)]
    raced = await asyncio.gather(*calls)
    orders = _codes([r for r in raced if "orderPurchaseOrder" in r], "orderPurchaseOrder")
    assert orders.count(None) == 1 and set(orders) == {None, "INVALID"}
    updates = _codes([r for r in raced if "updatePurchaseOrder" in r], "updatePurchaseOrder")
    assert set(updates) <= {None, "INVALID"}
    # cancelling at once: one cancellation
    cancels = await asyncio.gather(*(api.run(CANCEL_PO, {"id": order_id}, role="manager")
                                     for _ in range(5)))
    assert _codes(cancels, "cancelPurchaseOrder").count(None) == 1
