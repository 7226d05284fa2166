"""Subscription fan-out per broker: N subscribers on one server, delivery times, memory.

    .venv/bin/python scripts/fanout.py 1000      (raise `ulimit -n` above 2 x N first)

Starts a throwaway PostgreSQL and Redis, seeds 100 items, then for each broker runs one
`stockroom serve` with N WebSocket subscribers and times five stock changes from the
mutation's response to each delivery.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import wsclient  # noqa: E402
from tests.queries import ADJUST, STOCK_CHANGED  # noqa: E402
from tests.seeded import seeded_ids  # noqa: E402
from tests.server import serve  # noqa: E402
from tests.test_subscriptions import _rss_kib, gql_http, login  # noqa: E402
from tests.throwaway import start_postgres, start_redis  # noqa: E402

EVENTS = 5


async def _delivery_times(sockets: list, started: float) -> list[float]:
    async def one(ws: object) -> float:
        await asyncio.wait_for(wsclient.receive(ws), 60)
        return time.perf_counter() - started

    return sorted(await asyncio.gather(*(one(ws) for ws in sockets)))


async def measure(database_url: str, broker: str, tmp: Path, count: int) -> str:
    with serve(database_url, tmp, broker_url=broker) as server:
        clerk = await login(server, "clerk")
        run = partial(gql_http, server, token=clerk)
        [item], [warehouse] = await seeded_ids(run, ["SKU-00001"], ["BER-1"])
        rss_before = _rss_kib(server.process.pid)
        sockets = []
        for n in range(count):
            ws = await wsclient.connect(server.ws_url)
            await wsclient.init(ws, clerk)
            await wsclient.subscribe(ws, str(n), STOCK_CHANGED, {"item": item})
            sockets.append(ws)
        await asyncio.sleep(1.5)
        per_subscriber = (_rss_kib(server.process.pid) - rss_before) / count
        p50s, p99s, lasts = [], [], []
        change = {
            "input": {"itemId": item, "warehouseId": warehouse, "delta": 1, "kind": "RECEIPT"}
        }
        for _ in range(EVENTS):
            await gql_http(server, ADJUST, change, token=clerk)
            times = await _delivery_times(sockets, time.perf_counter())
            p50s.append(times[len(times) // 2])
            p99s.append(times[int(len(times) * 0.99) - 1])
            lasts.append(times[-1])
        await asyncio.gather(*(ws.close() for ws in sockets))
    name = broker.split(":")[0]
    return (
        f"| {name} | {count} | {statistics.median(p50s) * 1000:.0f} ms "
        f"| {statistics.median(p99s) * 1000:.0f} ms | {statistics.median(lasts) * 1000:.0f} ms "
        f"| {per_subscriber:.0f} KiB |"
    )


def prepare(database_url: str) -> None:
    env = {**os.environ, "STOCKROOM_DATABASE_URL": database_url}
    for args in (["migrate"], ["seed", "--demo", "--items", "100"]):
        subprocess.run(
            [sys.executable, "-m", "api.cli", *args],
            env=env,
            check=True,
            cwd=ROOT,
            capture_output=True,
        )


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    postgres, redis = start_postgres(), start_redis()
    tmp = Path(tempfile.mkdtemp(prefix="stockroom-fanout-"))
    try:
        prepare(postgres.url)
        print("| broker | subscribers | p50 | p99 | last | RSS per subscriber |")
        print("|---|---|---|---|---|---|")
        for broker in ("memory://", redis.url, postgres.dsn):
            row = asyncio.run(measure(postgres.url, broker, tmp / broker.split(":")[0], count))
            print(row, flush=True)
    finally:
        postgres.close()
        redis.close()


if __name__ == "__main__":
    main()
