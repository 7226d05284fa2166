"""Fan-out and resumable subscriptions over a real server: groups, cursors, slow sockets."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import timedelta
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from db.eventlog import Position
from db.models import utcnow
from tests import wsclient
from tests.seeded import seeded_ids
from tests.server import serve
from tests.test_subscriptions import expect_close, gql_http, login

pytestmark = pytest.mark.e2e

STOCK = """subscription($item: ID, $after: String) {
  stockChanged(itemId: $item, after: $after) {
    cursor committedAt movement { id delta onHandAfter } stockLevel { onHand } } }"""
ITEM_COST = """subscription { itemChanged { kind item { name unitCost } cursor } }"""
ADJUST = """mutation($input: AdjustStockInput!) { adjustStock(input: $input) {
  movement { id } errors { code } } }"""
BULK = """mutation($inputs: [AdjustStockInput!]!) { bulkAdjustStock(inputs: $inputs) {
  errors { code } } }"""


def change(item: str, wh: str, delta: int = 1) -> dict[str, Any]:
    return {"input": {"itemId": item, "warehouseId": wh, "delta": delta, "kind": "RECEIPT"}}


async def raw_next(ws: ClientConnection, timeout: float = 10) -> str:
    """The next data-carrying frame, as the server wrote it."""
    while True:
        text = await asyncio.wait_for(ws.recv(), timeout)
        assert isinstance(text, str)
        if json.loads(text)["type"] in ("next", "data", "error", "complete"):
            return text


async def nothing_more(ws: ClientConnection, wait: float = 1) -> None:
    try:
        text = await raw_next(ws, timeout=wait)
    except TimeoutError:
        return
    pytest.fail(f"expected nothing more, got {text}")


async def next_payload(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    message = json.loads(await raw_next(ws, timeout))
    assert message["type"] in ("next", "data"), message
    return message["payload"]


async def subscriber(server, token: str, query: str, variables: dict[str, Any],
                     protocol: str = wsclient.TRANSPORT_WS, sub_id: str = "s",
                     **connect: Any) -> ClientConnection:
    ws = await wsclient.connect(server.ws_url, protocol, **connect)
    assert (await wsclient.init(ws, token))["type"] == "connection_ack"
    if protocol == wsclient.TRANSPORT_WS:
        await wsclient.subscribe(ws, sub_id, query, variables)
    else:
        await wsclient.send(ws, {"id": sub_id, "type": "start",
                                 "payload": {"query": query, "variables": variables}})
    return ws


async def metric(server, name: str) -> float:
    import httpx

    async with httpx.AsyncClient(base_url=server.url) as http:
        text = (await http.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


# Seeded rows by natural key (tests/seeded.py): five items, the three warehouses.
SKUS = ("SKU-00001", "SKU-00002", "SKU-00003", "SKU-00004", "SKU-00005")
CODES = ("BER-1", "HAM-1", "MUC-1")


async def targets(server, token: str) -> tuple[list[str], list[str]]:
    async def run(query: str, variables: dict[str, Any]) -> Any:
        return await gql_http(server, query, variables, token=token)

    return await seeded_ids(run, SKUS, CODES)


@pytest.fixture
def server(seeded_db, tmp_path):
    with serve(seeded_db.url, tmp_path, ws_init_timeout="2") as running:
        yield running


async def settle() -> None:
    await asyncio.sleep(0.5)  # let subscriptions reach their groups


async def test_one_execution_per_group_and_the_same_bytes_to_each_socket(server):
    clerk, manager = await login(server, "clerk"), await login(server, "manager")
    items, whs = await targets(server, clerk)
    # given three clerks and a manager on the same document and variables, and a clerk
    # watching another item
    same = {"item": items[0]}
    clerks = [await subscriber(server, clerk, STOCK, same, sub_id=str(n)) for n in range(3)]
    boss = await subscriber(server, manager, STOCK, same, sub_id="m")
    other = await subscriber(server, clerk, STOCK, {"item": items[1]})
    await settle()
    assert await metric(server, "stockroom_subscription_groups") == 3
    events_before = await metric(server, "stockroom_subscription_events_total")
    runs_before = await metric(server, "stockroom_subscription_executions_total")
    # when one stock level of the first item changes
    await gql_http(server, ADJUST, change(items[0], whs[0], 4), token=clerk)
    # then the clerks' frames carry byte-identical payloads (only the operation id differs)
    frames = [await raw_next(ws) for ws in clerks]
    payloads = {f.split(',"type":"next","payload":', 1)[1] for f in frames}
    assert len(payloads) == 1
    assert [json.loads(f)["id"] for f in frames] == ["0", "1", "2"]
    assert json.loads(frames[0])["payload"]["data"]["stockChanged"]["movement"]["delta"] == 4
    # and the manager got it from its own group, the other item's watcher not at all
    assert (await next_payload(boss))["data"]["stockChanged"]["movement"]["delta"] == 4
    await nothing_more(other)
    # and the event ran once per matching group: twice, not once per subscriber
    assert await metric(server, "stockroom_subscription_events_total") == events_before + 1
    assert await metric(server, "stockroom_subscription_executions_total") == runs_before + 2
    for ws in [*clerks, boss, other]:
        await ws.close()
    await asyncio.sleep(0.5)
    assert await metric(server, "stockroom_subscription_groups") == 0


async def test_groups_keep_role_permissions_apart(server):
    manager, viewer = await login(server, "manager"), await login(server, "viewer")
    items, _ = await targets(server, manager)
    seen_by = {name: await subscriber(server, token, ITEM_COST, {})
               for name, token in (("manager", manager), ("viewer", viewer))}
    await settle()
    await gql_http(server, """mutation($id: ID!) { updateItem(id: $id, input: {name: "Grouped"})
        { errors { code } } }""", {"id": items[2]}, token=manager)
    as_manager = await next_payload(seen_by["manager"])
    as_viewer = await next_payload(seen_by["viewer"])
    assert as_manager["data"]["itemChanged"]["item"]["unitCost"] is not None
    assert "errors" not in as_manager
    assert as_viewer["data"]["itemChanged"]["item"]["unitCost"] is None
    assert as_viewer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert as_viewer["data"]["itemChanged"]["cursor"] == as_manager["data"]["itemChanged"][
        "cursor"]
    for ws in seen_by.values():
        await ws.close()


@pytest.mark.parametrize("protocol", [wsclient.TRANSPORT_WS, wsclient.LEGACY_WS])
async def test_resume_replays_what_was_missed_then_continues_live(server, protocol):
    clerk = await login(server, "clerk")
    items, whs = await targets(server, clerk)
    item, wh = items[3], whs[0]
    # given a subscriber that received one event and then dropped off
    ws = await subscriber(server, clerk, STOCK, {"item": item}, protocol)
    await settle()
    await gql_http(server, ADJUST, change(item, wh, 1), token=clerk)
    first = (await next_payload(ws))["data"]["stockChanged"]
    await ws.close()
    # when three changes happen while it is away (and one to another item)
    for delta in (2, 3, 4):
        await gql_http(server, ADJUST, change(item, wh, delta), token=clerk)
    await gql_http(server, ADJUST, change(items[4], wh, 9), token=clerk)
    # then resuming with its last cursor replays exactly those three, in order
    ws = await subscriber(server, clerk, STOCK, {"item": item, "after": first["cursor"]},
                          protocol)
    replayed = [(await next_payload(ws))["data"]["stockChanged"] for _ in range(3)]
    assert [e["movement"]["delta"] for e in replayed] == [2, 3, 4]
    assert [e["movement"]["onHandAfter"] for e in replayed] == [
        first["movement"]["onHandAfter"] + n for n in (2, 5, 9)]
    # and live events follow, with nothing repeated at the seam
    await gql_http(server, ADJUST, change(item, wh, 5), token=clerk)
    live = (await next_payload(ws))["data"]["stockChanged"]
    assert live["movement"]["delta"] == 5
    await nothing_more(ws)
    await ws.close()
    # and the last cursor resumes to nothing new
    ws = await subscriber(server, clerk, STOCK, {"item": item, "after": live["cursor"]},
                          protocol)
    await nothing_more(ws)
    await ws.close()


async def test_resume_while_changes_keep_coming_misses_nothing(server):
    clerk = await login(server, "clerk")
    items, whs = await targets(server, clerk)
    item, wh = items[0], whs[1]
    received: list[str] = []
    cursor: str | None = None
    stop = asyncio.Event()
    committed: list[str] = []

    async def writer() -> None:
        while not stop.is_set():
            done = await gql_http(server, ADJUST, change(item, wh), token=clerk)
            committed.append(done["adjustStock"]["movement"]["id"])

    task = asyncio.create_task(writer())
    # a subscriber that reconnects five times with its last cursor while writes continue
    for _ in range(5):
        ws = await subscriber(server, clerk, STOCK, {"item": item, "after": cursor})
        for _ in range(3):
            event = (await next_payload(ws))["data"]["stockChanged"]
            received.append(event["movement"]["id"])
            cursor = event["cursor"]
        await ws.close()
    stop.set()
    await task
    ws = await subscriber(server, clerk, STOCK, {"item": item, "after": cursor})
    while committed[-1] not in received:
        received.append((await next_payload(ws))["data"]["stockChanged"]["movement"]["id"])
    await ws.close()
    # every movement that committed since the first event arrived exactly once, in order
    start = committed.index(received[0])
    assert received == committed[start:]


async def test_cursors_past_retention_or_not_ours_are_refused(server):
    clerk = await login(server, "clerk")
    expired = Position(1).token(utcnow() - timedelta(days=8))
    for after, code in ((expired, "CURSOR_EXPIRED"), ("not-a-cursor", "BAD_USER_INPUT")):
        ws = await subscriber(server, clerk, STOCK, {"after": after})
        message = json.loads(await raw_next(ws))
        assert message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == code
        # the socket stays usable
        await wsclient.send(ws, {"type": "ping"})
        assert (await asyncio.wait_for(wsclient.receive(ws, skip=()), 5))["type"] == "pong"
        await ws.close()


async def test_subscription_cap_counts_grouped_subscriptions(seeded_db, tmp_path):
    with serve(seeded_db.url, tmp_path, subscription_cap="2") as server:
        clerk = await login(server, "clerk")
        ws = await wsclient.connect(server.ws_url)
        await wsclient.init(ws, clerk)
        for sub_id in ("a", "b", "c"):
            await wsclient.subscribe(ws, sub_id, STOCK, {})
        refused = json.loads(await raw_next(ws))
        assert refused["id"] == "c" and refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
        # the two counted ones are live (each has an event), so ending one is not a race
        # with its own start
        items, whs = await targets(server, clerk)
        await gql_http(server, ADJUST, change(items[0], whs[0], 1), token=clerk)
        live = [json.loads(await raw_next(ws)) for _ in range(2)]
        assert sorted((m["id"], m["type"]) for m in live) == [("a", "next"), ("b", "next")]
        # ending one makes room for another
        await wsclient.send(ws, {"id": "a", "type": "complete"})
        await asyncio.sleep(0.2)
        await wsclient.subscribe(ws, "d", STOCK, {})
        await nothing_more(ws)
        await ws.close()


async def drain(ws: ClientConnection) -> None:
    for _ in range(200):
        await asyncio.wait_for(ws.recv(), 30)


def _small_window_socket(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    return sock


async def test_a_slow_socket_is_closed_4499_and_the_rest_of_its_group_gets_everything(
    seeded_db, tmp_path
):
    with serve(seeded_db.url, tmp_path, subscriber_queue_size="4") as server:
        manager = await login(server, "manager")
        items, whs = await targets(server, manager)
        item = items[4]
        await gql_http(server, """mutation($id: ID!, $d: String) { updateItem(id: $id,
            input: {description: $d}) { errors { code } } }""", {"id": item, "d": "x" * 4000},
            token=manager)
        fat = "subscription($item: ID) { stockChanged(itemId: $item) { cursor " + " ".join(
            f"a{n}: movement {{ item {{ description }} }}" for n in range(20)) + " } }"
        # given a subscriber that reads nothing through a tiny window, and one that keeps up
        slow = await subscriber(server, manager, fat, {"item": item},
                                sock=_small_window_socket(server.port))
        fast = await subscriber(server, manager, fat, {"item": item})
        await settle()
        # when a bulk change sends a hundred big events to both
        rows = [{"itemId": item, "warehouseId": whs[0], "delta": 1, "kind": "RECEIPT"}] * 100
        await gql_http(server, BULK, {"inputs": rows}, token=manager)
        # then the one that keeps up receives all of them
        got = [await next_payload(fast, timeout=30) for _ in range(100)]
        assert len({p["data"]["stockChanged"]["cursor"] for p in got}) == 100
        # and the slow one is cut off with 4499 (after whatever its buffers held)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await drain(slow)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4499
        await fast.close()


async def test_legacy_stop_and_restart_of_a_grouped_subscription(server):
    clerk = await login(server, "clerk")
    items, whs = await targets(server, clerk)
    ws = await subscriber(server, clerk, STOCK, {"item": items[1]}, wsclient.LEGACY_WS, "1")
    await settle()
    await gql_http(server, ADJUST, change(items[1], whs[0]), token=clerk)
    assert (await next_payload(ws))["data"]["stockChanged"]["movement"]["delta"] == 1
    # stop: the server answers complete and sends nothing more for it
    await wsclient.send(ws, {"id": "1", "type": "stop"})
    assert json.loads(await raw_next(ws)) == {"type": "complete", "id": "1"}
    await gql_http(server, ADJUST, change(items[1], whs[0]), token=clerk)
    await nothing_more(ws)
    # the same id may start again
    await wsclient.send(ws, {"id": "1", "type": "start",
                             "payload": {"query": STOCK, "variables": {"item": items[1]}}})
    await settle()
    await gql_http(server, ADJUST, change(items[1], whs[0], 2), token=clerk)
    assert (await next_payload(ws))["data"]["stockChanged"]["movement"]["delta"] == 2
    await ws.close()


async def test_expiry_close_still_applies_to_grouped_subscribers(seeded_db, tmp_path):
    with serve(seeded_db.url, tmp_path, access_token_ttl="3") as server:
        token = await login(server, "viewer")
        ws = await subscriber(server, token, STOCK, {})
        await expect_close(ws, 4403)
