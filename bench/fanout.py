"""W4: N WebSocket subscribers on one server; time from the commit to each delivery.

Each delivery is timed twice: from the ``committedAt`` the server stamped on the event as its
transaction wrote it (the target's measure: the mutation's HTTP round trip is not in it), and
from sending the mutation (as before). Executions per event come from the server's
``/metrics``: one per subscriber group that the event matches, not one per subscriber.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

from bench.servers import Server
from tests import wsclient
from tests.queries import W4_ADJUST, W4_STOCK_CHANGED

EVENTS_METRIC = "stockroom_subscription_events_total"
EXECUTIONS_METRIC = "stockroom_subscription_executions_total"


@dataclass(frozen=True)
class FanoutResult:
    subscribers: int
    events: int
    p50_ms: float
    p99_ms: float
    last_ms: float
    kib_per_subscriber: float
    commit_p50_ms: float  # from the event's committedAt to its delivery
    commit_p99_ms: float
    executions_per_event: float


async def graphql(url: str, query: str, variables: dict[str, Any], token: str) -> Any:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{url}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


async def _open(ws_url: str, token: str, item: str, n: int) -> ClientConnection:
    ws = await wsclient.connect(ws_url, max_size=2**20)
    ack = await wsclient.init(ws, token)
    if ack.get("type") != "connection_ack":
        raise RuntimeError(f"subscriber {n}: no connection_ack: {ack}")
    await wsclient.subscribe(ws, str(n), W4_STOCK_CHANGED, {"item": item})
    return ws


async def _delivered(ws: ClientConnection, started: float) -> tuple[float, float]:
    """Seconds since ``started`` and since the event's commit, when it reached ``ws``."""
    message = await asyncio.wait_for(wsclient.receive(ws), 60)
    now, wall = time.perf_counter(), time.time()
    if message.get("type") != "next" or message["payload"].get("errors"):
        raise RuntimeError(f"unexpected subscription message: {message}")
    committed = datetime.fromisoformat(message["payload"]["data"]["stockChanged"]["committedAt"])
    return now - started, wall - committed.timestamp()


async def _metrics(url: str) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=30) as client:
        text = (await client.get(f"{url}/metrics")).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in (EVENTS_METRIC, EXECUTIONS_METRIC):
            found[name] = float(value)
    return found


def _percentile(ordered: list[float], share: float) -> float:
    return ordered[max(0, int(len(ordered) * share) - 1)]


async def measure(
    server: Server, token: str, item: str, warehouse: str, subscribers: int, events: int
) -> FanoutResult:
    ws_url = f"ws://127.0.0.1:{server.port}/graphql"
    rss_before = server.rss_mib()
    sockets: list[ClientConnection] = []
    try:
        # Open in batches: a thousand simultaneous handshakes measure the accept queue.
        for start in range(0, subscribers, 100):
            batch = range(start, min(start + 100, subscribers))
            sockets += await asyncio.gather(*(_open(ws_url, token, item, n) for n in batch))
        await asyncio.sleep(1.0)  # let every subscription reach the broker
        per_subscriber = (server.rss_mib() - rss_before) * 1024 / subscribers
        p50s, p99s, lasts, commit_p50s, commit_p99s = [], [], [], [], []
        before = await _metrics(server.url)
        change = {
            "input": {"itemId": item, "warehouseId": warehouse, "delta": 1, "kind": "RECEIPT"}
        }
        for _ in range(events):
            started = time.perf_counter()
            waiting = [asyncio.ensure_future(_delivered(ws, started)) for ws in sockets]
            await graphql(server.url, W4_ADJUST, change, token)
            delivered = await asyncio.gather(*waiting)
            times = sorted(since_request for since_request, _ in delivered)
            since_commit = sorted(since for _, since in delivered)
            p50s.append(times[len(times) // 2])
            p99s.append(_percentile(times, 0.99))
            lasts.append(times[-1])
            commit_p50s.append(since_commit[len(since_commit) // 2])
            commit_p99s.append(_percentile(since_commit, 0.99))
            await asyncio.sleep(0.2)
        after = await _metrics(server.url)
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    dispatched = after.get(EVENTS_METRIC, 0.0) - before.get(EVENTS_METRIC, 0.0)
    executed = after.get(EXECUTIONS_METRIC, 0.0) - before.get(EXECUTIONS_METRIC, 0.0)
    return FanoutResult(
        subscribers=subscribers,
        events=events,
        p50_ms=statistics.median(p50s) * 1000,
        p99_ms=statistics.median(p99s) * 1000,
        last_ms=statistics.median(lasts) * 1000,
        kib_per_subscriber=per_subscriber,
        commit_p50_ms=statistics.median(commit_p50s) * 1000,
        commit_p99_ms=statistics.median(commit_p99s) * 1000,
        executions_per_event=executed / dispatched if dispatched else 0.0,
    )
