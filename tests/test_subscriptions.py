"""Subscriptions over a real uvicorn server with real WebSocket clients."""

from __future__ import annotations

import asyncio
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from tests import wsclient
from tests.queries import ADJUST, COUNT, LOGIN, STOCK_CHANGED, UPDATE_ITEM
from tests.seeded import seeded_ids
from tests.server import serve

pytestmark = pytest.mark.e2e

LOW_STOCK = """subscription { lowStock { item { sku reorderPoint } warehouse { code }
  available reorderPoint } }"""
ITEM_CHANGED = """subscription { itemChanged { kind itemId item { name unitCost } } }"""


async def gql_http(server, query: str, variables: dict | None = None, token: str = "") -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.post("/graphql", json={"query": query,
                                                     "variables": variables or {}},
                                   headers=headers)
    body = response.json()
    assert not body.get("errors"), body
    return body["data"]


async def login(server, role: str) -> str:
    data = await gql_http(server, LOGIN, {"e": f"{role}@example.com", "p": role})
    return data["login"]["accessToken"]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@pytest.fixture
def server(seeded_db, tmp_path):
    with serve(seeded_db.url, tmp_path, ws_init_timeout="2") as running:
        yield running


async def ids(server, token, skus, codes=()):
    return await seeded_ids(partial(gql_http, server, token=token), skus, codes)


def adjust(item, wh, delta, kind="RECEIPT"):
    return {"input": {"itemId": item, "warehouseId": wh, "delta": delta, "kind": kind}}


@pytest.mark.parametrize("protocol", [wsclient.TRANSPORT_WS, wsclient.LEGACY_WS])
async def test_gql_client_receives_stock_changed(server, protocol):
    clerk = await login(server, "clerk")
    items, [wh] = await ids(server, clerk, ["SKU-00001", "SKU-00002"], ["BER-1"])
    transport = WebsocketsTransport(
        url=server.ws_url, init_payload={"Authorization": f"Bearer {clerk}"},
        subprotocols=[protocol],
    )
    async with Client(transport=transport) as session:
        received: list[dict] = []

        async def listen() -> None:
            request = GraphQLRequest(STOCK_CHANGED, variable_values={"item": items[0]})
            async for event in session.subscribe(request):
                received.append(event)
                return

        task = asyncio.create_task(listen())
        await asyncio.sleep(0.3)  # let the subscription register
        # a change to another item is filtered out; a refused change publishes nothing
        await gql_http(server, ADJUST, adjust(items[1], wh, 2), token=clerk)
        refused = await gql_http(server, ADJUST, adjust(items[0], wh, -99999, "SHIPMENT"),
                                 token=clerk)
        assert refused["adjustStock"]["errors"][0]["code"] == "INSUFFICIENT_STOCK"
        await gql_http(server, ADJUST, adjust(items[0], wh, 4), token=clerk)
        await asyncio.wait_for(task, 10)
    event = received[0]["stockChanged"]
    assert event["movement"]["kind"] == "RECEIPT"
    assert event["movement"]["delta"] == 4
    assert event["stockLevel"]["warehouse"]["code"] == "BER-1"
    assert event["stockLevel"]["onHand"] == event["movement"]["onHandAfter"]


async def test_low_stock_fires_on_crossing_only(server):
    manager = await login(server, "manager")
    [item], [wh] = await ids(server, manager, ["SKU-00001"], ["BER-1"])
    await gql_http(server, UPDATE_ITEM, {"id": item, "input": {"reorderPoint": 5}},
                   token=manager)
    await gql_http(server, COUNT, {"input": {"itemId": item, "warehouseId": wh, "counted": 7}},
                   token=manager)
    ws = await wsclient.connect(server.ws_url)
    assert (await wsclient.init(ws, manager))["type"] == "connection_ack"
    await wsclient.subscribe(ws, "low", LOW_STOCK)
    await asyncio.sleep(0.3)
    for delta in (-1, -1, -1, -1):  # 6, 5 (crossing), 4, 3
        await gql_http(server, ADJUST, adjust(item, wh, delta, "SHIPMENT"), token=manager)
    first = await asyncio.wait_for(wsclient.receive(ws), 5)
    assert first["payload"]["data"]["lowStock"]["available"] == 5
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(wsclient.receive(ws), 1)
    await ws.close()


async def test_item_changed_respects_unit_cost_permission(server):
    manager, viewer = await login(server, "manager"), await login(server, "viewer")
    items, _ = await ids(server, manager, ["SKU-00001"])
    sockets = {}
    for name, token in (("manager", manager), ("viewer", viewer)):
        ws = await wsclient.connect(server.ws_url)
        await wsclient.init(ws, token)
        await wsclient.subscribe(ws, "i", ITEM_CHANGED)
        sockets[name] = ws
    await asyncio.sleep(0.3)
    await gql_http(server, UPDATE_ITEM, {"id": items[0], "input": {"name": "Live"}},
                   token=manager)
    seen_by_manager = await asyncio.wait_for(wsclient.receive(sockets["manager"]), 5)
    seen_by_viewer = await asyncio.wait_for(wsclient.receive(sockets["viewer"]), 5)
    assert seen_by_manager["payload"]["data"]["itemChanged"]["item"]["unitCost"] is not None
    assert seen_by_viewer["payload"]["data"]["itemChanged"]["item"]["unitCost"] is None
    assert seen_by_viewer["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert seen_by_viewer["payload"]["data"]["itemChanged"]["kind"] == "UPDATED"
    for ws in sockets.values():
        await ws.close()


async def _drain(ws) -> None:
    for _ in range(10):
        await asyncio.wait_for(ws.recv(), 5)


async def expect_close(ws, code: int) -> None:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await _drain(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code


async def test_protocol_compliance_close_codes(server):
    token = await login(server, "viewer")
    # 4403: connection_init with a bad token
    ws = await wsclient.connect(server.ws_url)
    await wsclient.send(ws, {"type": "connection_init", "payload": {"Authorization": "Bearer x"}})
    await expect_close(ws, 4403)
    # 4403: no token at all
    ws = await wsclient.connect(server.ws_url)
    await wsclient.send(ws, {"type": "connection_init", "payload": {}})
    await expect_close(ws, 4403)
    # 4401: subscribe before the ack
    ws = await wsclient.connect(server.ws_url)
    await wsclient.subscribe(ws, "1", STOCK_CHANGED)
    await expect_close(ws, 4401)
    # 4400: not a protocol message
    ws = await wsclient.connect(server.ws_url)
    await ws.send('{"type": "nonsense"}')
    await expect_close(ws, 4400)
    # 4429: a second connection_init
    ws = await wsclient.connect(server.ws_url)
    await wsclient.init(ws, token)
    await wsclient.send(ws, {"type": "connection_init", "payload": {}})
    await expect_close(ws, 4429)
    # 4409: a duplicate subscription id
    ws = await wsclient.connect(server.ws_url)
    await wsclient.init(ws, token)
    await wsclient.subscribe(ws, "dup", STOCK_CHANGED)
    await wsclient.subscribe(ws, "dup", STOCK_CHANGED)
    await expect_close(ws, 4409)
    # 4408: no connection_init in time
    ws = await wsclient.connect(server.ws_url)
    await expect_close(ws, 4408)
    # complete from the client ends one subscription cleanly; the socket stays open
    ws = await wsclient.connect(server.ws_url)
    await wsclient.init(ws, token)
    await wsclient.subscribe(ws, "a", STOCK_CHANGED)
    await wsclient.send(ws, {"id": "a", "type": "complete"})
    await wsclient.send(ws, {"type": "ping"})
    assert (await asyncio.wait_for(wsclient.receive(ws, skip=()), 5))["type"] == "pong"
    await ws.close()


async def test_header_auth_and_token_expiry_closes_socket(seeded_db, tmp_path):
    with serve(seeded_db.url, tmp_path, access_token_ttl="3") as server:
        token = await login(server, "viewer")
        started = time.monotonic()
        ws = await wsclient.connect(server.ws_url,
                                    additional_headers={"Authorization": f"Bearer {token}"})
        assert (await wsclient.init(ws, None))["type"] == "connection_ack"
        await wsclient.subscribe(ws, "s", STOCK_CHANGED)
        await expect_close(ws, 4403)
        assert time.monotonic() - started < 15


async def test_500_subscribers_all_receive(server, record_property):
    clerk = await login(server, "clerk")
    items, [wh] = await ids(server, clerk, ["SKU-00001"], ["BER-1"])
    rss_before = _rss_kib(server.process.pid)
    sockets = []
    for n in range(500):
        ws = await wsclient.connect(server.ws_url)
        await wsclient.init(ws, clerk)
        await wsclient.subscribe(ws, str(n), STOCK_CHANGED, {"item": items[0]})
        sockets.append(ws)
    await asyncio.sleep(1)
    per_socket = (_rss_kib(server.process.pid) - rss_before) / 500
    record_property("kib_per_subscriber", round(per_socket, 1))
    print(f"500 subscribers: {per_socket:.1f} KiB of server RSS each")
    started = time.perf_counter()
    await gql_http(server, ADJUST, adjust(items[0], wh, 1), token=clerk)
    events = await asyncio.gather(*(asyncio.wait_for(wsclient.receive(ws), 60) for ws in sockets))
    elapsed = time.perf_counter() - started
    record_property("fanout_500_seconds", round(elapsed, 3))
    print(f"500 subscribers: last delivery {elapsed * 1000:.0f} ms after the mutation returned")
    assert all(e["payload"]["data"]["stockChanged"]["movement"]["delta"] == 1 for e in events)
    await asyncio.gather(*(ws.close() for ws in sockets))
