"""Faults during a burst of writes: a worker SIGKILLed, Redis killed and restarted.

Every committed movement (as the database has them afterwards) must reach every subscriber
exactly once, in order per stock level; a subscriber whose worker died reconnects elsewhere
with its last cursor.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import select

from db.engine import create_engine, read_sessionmaker
from db.models import StockMovement
from schema.ids import from_global_id
from tests import wsclient
from tests.seeded import seeded_ids
from tests.server import Server, serve
from tests.test_subscriptions import gql_http, login

pytestmark = pytest.mark.e2e

ALL_STOCK = """subscription($after: String) { stockChanged(after: $after) {
  cursor movement { id onHandAfter } stockLevel { id } } }"""
ADJUST = """mutation($input: AdjustStockInput!) { adjustStock(input: $input) {
  movement { id } errors { code } } }"""
WRITERS = 6


class Collector:
    """A subscriber that records every stock event and resumes from its last cursor."""

    def __init__(self, token: str, url: Callable[[], str | None]) -> None:
        self.token = token
        self.url = url
        self.movements: list[int] = []
        self.by_level: dict[int, list[tuple[int, int]]] = defaultdict(list)
        self.cursor: str | None = None
        self.connections = 0
        self.unexpected: list[Any] = []
        self.ready = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            url = self.url()
            if url is None:
                await asyncio.sleep(0.1)
                continue
            try:
                ws = await wsclient.connect(url)
                if (await wsclient.init(ws, self.token))["type"] != "connection_ack":
                    raise ConnectionError("not acknowledged")
                await wsclient.subscribe(ws, "s", ALL_STOCK, {"after": self.cursor})
                self.connections += 1
                self.ready.set()
                while True:
                    message = await wsclient.receive(ws)
                    if message["type"] != "next":
                        self.unexpected.append(message)
                        raise ConnectionError(f"unexpected {message['type']}")
                    event = message["payload"]["data"]["stockChanged"]
                    movement = from_global_id(event["movement"]["id"])[1]
                    level = from_global_id(event["stockLevel"]["id"])[1]
                    self.movements.append(movement)
                    self.by_level[level].append((movement, event["movement"]["onHandAfter"]))
                    self.cursor = event["cursor"]
            except (websockets.ConnectionClosed, OSError, ConnectionError):
                await asyncio.sleep(0.2)

    async def has_all(self, committed: set[int], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout * 10)):
            if committed <= set(self.movements) or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def check(self, committed: set[int]) -> None:
        """Exactly once each, and in commit order per stock level."""
        assert not self.unexpected, self.unexpected
        assert sorted(self.movements) == sorted(committed), (
            f"missing {sorted(committed - set(self.movements))}, "
            f"extra {sorted(set(self.movements) - committed)}, "
            f"{len(self.movements) - len(set(self.movements))} duplicates"
        )
        for level, seen in self.by_level.items():
            ids = [movement for movement, _ in seen]
            assert ids == sorted(ids), f"level {level} out of order: {ids}"
            after = [on_hand for _, on_hand in seen]
            assert after == list(range(after[0], after[0] + len(after))), (level, after)


async def movements_since(database_url: str, last: int) -> set[int]:
    engine = create_engine(database_url)
    try:
        async with read_sessionmaker(engine)() as session:
            rows = await session.scalars(select(StockMovement.id).where(StockMovement.id > last))
            return set(rows)
    finally:
        await engine.dispose()


async def last_movement(database_url: str) -> int:
    return max(await movements_since(database_url, 0), default=0)


class Burst:
    """Concurrent +1 adjustments over a few stock levels, against whichever servers are up."""

    def __init__(self, token: str, targets: list[str], levels: list[tuple[str, str]]) -> None:
        self.token = token
        self.targets = targets
        self.levels = levels
        self.answered = 0
        self.failed = 0
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._write(n)) for n in range(WRITERS)]

    async def _write(self, n: int) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            count = 0
            while not self._stop.is_set():
                count += 1
                url = self.targets[(n + count) % len(self.targets)]
                item, wh = self.levels[(n + count) % len(self.levels)]
                body = {"query": ADJUST, "variables": {"input": {
                    "itemId": item, "warehouseId": wh, "delta": 1, "kind": "RECEIPT"}}}
                try:
                    response = await http.post(f"{url}/graphql", json=body,
                                               headers={"Authorization": f"Bearer {self.token}"})
                    data: Any = response.json()
                    assert not data["data"]["adjustStock"]["errors"], data
                    self.answered += 1
                except (httpx.HTTPError, ValueError, KeyError, TypeError):
                    self.failed += 1  # a dead server; the database decides what committed
                    await asyncio.sleep(0.05)

    async def reach(self, answered: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout * 50)):
            if self.answered >= answered or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        assert self.answered >= answered, f"only {self.answered} writes answered"

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


async def levels_of(server: Server, token: str) -> list[tuple[str, str]]:
    async def run(query: str, variables: dict[str, Any]) -> Any:
        return await gql_http(server, query, variables, token=token)

    items, whs = await seeded_ids(run, ("SKU-00001", "SKU-00002", "SKU-00003"),
                                  ("BER-1", "HAM-1", "MUC-1"))
    return [(items[0], whs[0]), (items[0], whs[1]), (items[1], whs[0]), (items[2], whs[2])]


postgres_only = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


@postgres_only
@pytest.mark.postgres
@pytest.mark.redis
async def test_sigkill_a_worker_mid_burst(seeded_db, redis_server, tmp_path):
    with serve(seeded_db.url, tmp_path / "a", broker_url=redis_server.url) as doomed, \
            serve(seeded_db.url, tmp_path / "b", broker_url=redis_server.url) as survivor:
        token = await login(survivor, "clerk")
        levels = await levels_of(survivor, token)
        alive = {"a": True}
        # given a subscriber on each worker; the one on the doomed worker fails over with
        # its last cursor when its worker dies
        staying = Collector(token, lambda: survivor.ws_url)
        moving = Collector(token, lambda: doomed.ws_url if alive["a"] else survivor.ws_url)
        await asyncio.wait_for(asyncio.gather(staying.ready.wait(), moving.ready.wait()), 30)
        await asyncio.sleep(1)
        before = await last_movement(seeded_db.url)
        # when writes go to both workers and one is SIGKILLed in the middle of them
        burst = Burst(token, [doomed.url, survivor.url], levels)
        await burst.reach(60)
        doomed.process.kill()
        doomed.process.wait(10)
        alive["a"] = False
        burst.targets = [survivor.url]
        await burst.reach(burst.answered + 40)
        await burst.stop()
        # then both subscribers have every committed movement exactly once, in level order
        committed = await movements_since(seeded_db.url, before)
        assert len(committed) >= 100
        for collector in (staying, moving):
            await collector.has_all(committed)
            await asyncio.sleep(0.5)  # and nothing more arrives
            await collector.stop()
            collector.check(committed)
        assert staying.connections == 1  # the survivor's subscriber never had to reconnect
        assert moving.connections == 2


@postgres_only
@pytest.mark.postgres
@pytest.mark.redis
async def test_redis_killed_and_restarted_mid_burst(seeded_db, redis_server, tmp_path):
    with serve(seeded_db.url, tmp_path / "a", broker_url=redis_server.url) as a, \
            serve(seeded_db.url, tmp_path / "b", broker_url=redis_server.url) as b:
        token = await login(a, "clerk")
        levels = await levels_of(a, token)
        collectors = [Collector(token, lambda: a.ws_url), Collector(token, lambda: b.ws_url)]
        await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in collectors)), 30)
        await asyncio.sleep(1)
        before = await last_movement(seeded_db.url)
        # when Redis dies in the middle of writes to both workers, and comes back later
        burst = Burst(token, [a.url, b.url], levels)
        await burst.reach(40)
        redis_server.stop()
        await burst.reach(burst.answered + 60)
        redis_server.start()
        await burst.reach(burst.answered + 40)
        await burst.stop()
        # then the subscribers on both workers, never disconnected, have every committed
        # event, each once and in order per stock level
        committed = await movements_since(seeded_db.url, before)
        for collector in collectors:
            await collector.has_all(committed)
            await asyncio.sleep(0.5)
            await collector.stop()
            collector.check(committed)
            assert collector.connections == 1


async def test_sigkill_the_only_process_mid_burst_and_resume_after_restart(
    seeded_db, tmp_path
):
    """One process with the memory broker, on SQLite and PostgreSQL: the subscriber resumes
    from its cursor on the restarted server."""
    servers: dict[str, Server | None] = {"now": None}
    with serve(seeded_db.url, tmp_path / "first") as first:
        servers["now"] = first
        token = await login(first, "clerk")
        levels = await levels_of(first, token)

        def current() -> str | None:
            server = servers["now"]
            return server.ws_url if server is not None else None

        collector = Collector(token, current)
        await asyncio.wait_for(collector.ready.wait(), 30)
        await asyncio.sleep(1)
        before = await last_movement(seeded_db.url)
        burst = Burst(token, [first.url], levels)
        await burst.reach(60)
        servers["now"] = None
        first.process.kill()
        first.process.wait(10)
        await burst.stop()
    # when the server comes back on the same database and a few more writes happen
    with serve(seeded_db.url, tmp_path / "second") as second:
        servers["now"] = second
        burst = Burst(token, [second.url], levels)
        await burst.reach(20)
        await burst.stop()
        committed = await movements_since(seeded_db.url, before)
        # then the subscriber, resumed with its last cursor, has each committed movement once
        await collector.has_all(committed)
        await asyncio.sleep(0.5)
        await collector.stop()
        collector.check(committed)
        assert collector.connections == 2
