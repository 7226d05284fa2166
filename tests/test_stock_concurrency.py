"""Concurrent writers over real HTTP to a real uvicorn server: nothing lost, nothing oversold."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.queries import ADJUST, COUNT, LOGIN, TRANSFER
from tests.seeded import seeded_ids
from tests.server import serve

pytestmark = pytest.mark.e2e

LEDGER = """query($id: ID!, $after: String) { item(id: $id) { totalOnHand
  stockLevels { onHand warehouse { id } }
  movements(first: 100, after: $after) { pageInfo { hasNextPage endCursor }
    edges { node { kind onHandAfter warehouse { id } } } } } }"""


class Api:
    def __init__(self, http: httpx.AsyncClient, token: str = "") -> None:
        self.http, self.token = http, token

    async def run(self, query: str, variables: dict | None = None) -> dict:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {self.token}"} if self.token else {},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert not body.get("errors"), body
        return body["data"]

    async def login(self, role: str) -> None:
        data = await self.run(LOGIN, {"e": f"{role}@example.com", "p": role})
        self.token = data["login"]["accessToken"]

    async def ledger(self, item: str) -> tuple[int, list[dict]]:
        rows, after = [], None
        while True:
            data = (await self.run(LEDGER, {"id": item, "after": after}))["item"]
            rows += [e["node"] for e in data["movements"]["edges"]]
            if not data["movements"]["pageInfo"]["hasNextPage"]:
                return data["totalOnHand"], rows
            after = data["movements"]["pageInfo"]["endCursor"]


@pytest.fixture
async def api(seeded_db, tmp_path):
    with serve(seeded_db.url, tmp_path) as server:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=120) as http:
            client = Api(http)
            await client.login("clerk")
            yield client


async def test_120_shipments_on_50_units_never_oversell(api, record_property):
    [item], [wh] = await seeded_ids(api.run, ["SKU-00001"], ["BER-1"])
    await api.run(COUNT, {"input": {"itemId": item, "warehouseId": wh, "counted": 50}})
    ship = {"input": {"itemId": item, "warehouseId": wh, "delta": -1, "kind": "SHIPMENT"}}
    _, rows_before = await api.ledger(item)
    started = time.perf_counter()
    results = await asyncio.gather(*(api.run(ADJUST, ship) for _ in range(120)))
    elapsed = time.perf_counter() - started
    record_property("seconds_for_120_writers", round(elapsed, 2))
    print(f"120 concurrent shipments took {elapsed:.2f}s")
    ok = [r for r in results if not r["adjustStock"]["errors"]]
    refused = [r for r in results if r["adjustStock"]["errors"]]
    assert len(ok) == 50
    assert {r["adjustStock"]["errors"][0]["code"] for r in refused} == {"INSUFFICIENT_STOCK"}
    _, rows = await api.ledger(item)
    new_rows = rows[: len(rows) - len(rows_before)]  # newest first
    assert len(new_rows) == 50
    assert {r["kind"] for r in new_rows} == {"SHIPMENT"}
    assert sorted(r["onHandAfter"] for r in new_rows) == list(range(50))  # 49..0, no gap/repeat
    levels = (await api.run(LEDGER, {"id": item}))["item"]["stockLevels"]
    assert next(lv["onHand"] for lv in levels if lv["warehouse"]["id"] == wh) == 0


async def test_100_receipts_add_up(api):
    [item], [wh] = await seeded_ids(api.run, ["SKU-00002"], ["BER-1"])
    await api.run(COUNT, {"input": {"itemId": item, "warehouseId": wh, "counted": 0}})
    receive = {"input": {"itemId": item, "warehouseId": wh, "delta": 3, "kind": "RECEIPT"}}
    results = await asyncio.gather(*(api.run(ADJUST, receive) for _ in range(100)))
    assert all(r["adjustStock"]["errors"] == [] for r in results)
    after = sorted(r["adjustStock"]["movement"]["onHandAfter"] for r in results)
    assert after == list(range(3, 301, 3))
    levels = (await api.run(LEDGER, {"id": item}))["item"]["stockLevels"]
    assert next(lv["onHand"] for lv in levels if lv["warehouse"]["id"] == wh) == 300


async def test_20_concurrent_replays_make_one_movement(api):
    [item], [wh] = await seeded_ids(api.run, ["SKU-00003"], ["BER-1"])
    total_before, rows_before = await api.ledger(item)
    body = {"input": {"itemId": item, "warehouseId": wh, "delta": 7, "kind": "RECEIPT",
                      "idempotencyKey": "order-42"}}
    results = await asyncio.gather(*(api.run(ADJUST, body) for _ in range(20)))
    assert {r["adjustStock"]["movement"]["id"] for r in results} != {None}
    assert len({r["adjustStock"]["movement"]["id"] for r in results}) == 1
    total_after, rows_after = await api.ledger(item)
    assert total_after == total_before + 7
    assert len(rows_after) == len(rows_before) + 1


async def test_opposite_transfers_never_deadlock_and_conserve(api):
    [item], [a, b] = await seeded_ids(api.run, ["SKU-00004"], ["BER-1", "HAM-1"])
    for wh in (a, b):
        await api.run(COUNT, {"input": {"itemId": item, "warehouseId": wh, "counted": 100}})
    total_before, _ = await api.ledger(item)

    def move(src: str, dst: str) -> dict:
        return {"input": {"itemId": item, "fromWarehouseId": src, "toWarehouseId": dst,
                          "quantity": 1}}

    calls = [api.run(TRANSFER, move(a, b) if n % 2 else move(b, a)) for n in range(80)]
    results = await asyncio.wait_for(asyncio.gather(*calls), timeout=120)
    assert all(r["transferStock"]["errors"] == [] for r in results)
    total_after, _ = await api.ledger(item)
    assert total_after == total_before
    levels = (await api.run(LEDGER, {"id": item}))["item"]["stockLevels"]
    by_wh = {lv["warehouse"]["id"]: lv["onHand"] for lv in levels}
    assert by_wh[a] == by_wh[b] == 100
