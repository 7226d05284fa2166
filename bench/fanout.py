"""W4: N WebSocket subscribers on one server; time from the mutation to each delivery."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

from bench.servers import Server
from tests import wsclient
from tests.queries import STOCK_CHANGED, W4_ADJUST


@dataclass(frozen=True)
class FanoutResult:
    subscribers: int
    events: int
    p50_ms: float
    p99_ms: float
    last_ms: float
    kib_per_subscriber: float


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
    await wsclient.subscribe(ws, str(n), STOCK_CHANGED, {"item": item})
    return ws


async def _delivered(ws: ClientConnection, started: float) -> float:
    message = await asyncio.wait_for(wsclient.receive(ws), 60)
    if message.get("type") != "next" or message["payload"].get("errors"):
        raise RuntimeError(f"unexpected subscription message: {message}")
    return time.perf_counter() - started


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
        p50s, p99s, lasts = [], [], []
        change = {
            "input": {"itemId": item, "warehouseId": warehouse, "delta": 1, "kind": "RECEIPT"}
        }
        for _ in range(events):
            started = time.perf_counter()
            waiting = [asyncio.ensure_future(_delivered(ws, started)) for ws in sockets]
            await graphql(server.url, W4_ADJUST, change, token)
            times = sorted(await asyncio.gather(*waiting))
            p50s.append(times[len(times) // 2])
            p99s.append(times[max(0, int(len(times) * 0.99) - 1)])
            lasts.append(times[-1])
            await asyncio.sleep(0.2)
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return FanoutResult(
        subscribers=subscribers,
        events=events,
        p50_ms=statistics.median(p50s) * 1000,
        p99_ms=statistics.median(p99s) * 1000,
        last_ms=statistics.median(lasts) * 1000,
        kib_per_subscriber=per_subscriber,
    )
