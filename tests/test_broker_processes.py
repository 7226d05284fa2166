"""Two server processes sharing one PostgreSQL: subscribe on one, mutate on the other."""

from __future__ import annotations

import asyncio
import time
from functools import partial

import httpx
import pytest

from tests import wsclient
from tests.queries import ADJUST, STOCK_CHANGED
from tests.seeded import seeded_ids
from tests.server import serve
from tests.test_subscriptions import gql_http, login

# Two processes need a database server they can share: PostgreSQL only.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.parametrize("backend", ["postgres"], indirect=True),
]


@pytest.fixture
def pg_db(seeded_db):
    return seeded_db


async def _round_trip(subscriber, publisher) -> float:
    token = await login(publisher, "clerk")
    [item], [wh] = await seeded_ids(partial(gql_http, publisher, token=token), ["SKU-00001"],
                                    ["BER-1"])
    ws = await wsclient.connect(subscriber.ws_url)
    assert (await wsclient.init(ws, token))["type"] == "connection_ack"
    await wsclient.subscribe(ws, "s", STOCK_CHANGED, {"item": item})
    await asyncio.sleep(0.5)
    started = time.perf_counter()
    await gql_http(publisher, ADJUST, {"input": {"itemId": item, "warehouseId": wh, "delta": 3,
                                                 "kind": "RECEIPT"}}, token=token)
    event = await asyncio.wait_for(wsclient.receive(ws), 10)
    elapsed = time.perf_counter() - started
    assert event["payload"]["data"]["stockChanged"]["movement"]["delta"] == 3
    await ws.close()
    return elapsed


@pytest.mark.redis
async def test_two_processes_share_events_through_redis(pg_db, redis_server, tmp_path):
    with serve(pg_db.url, tmp_path / "a", broker_url=redis_server.url) as a, \
            serve(pg_db.url, tmp_path / "b", broker_url=redis_server.url) as b:
        await _round_trip(a, b)


async def test_two_processes_share_events_through_postgres(pg_db, postgres_server, tmp_path):
    broker = pg_db.url.replace("postgresql+asyncpg://", "postgresql://")
    with serve(pg_db.url, tmp_path / "a", broker_url=broker) as a, \
            serve(pg_db.url, tmp_path / "b", broker_url=broker) as b:
        await _round_trip(a, b)


@pytest.mark.redis
async def test_redis_restart_is_survived(pg_db, redis_server, tmp_path):
    with serve(pg_db.url, tmp_path / "a", broker_url=redis_server.url) as a, \
            serve(pg_db.url, tmp_path / "b", broker_url=redis_server.url) as b:
        await _round_trip(a, b)
        redis_server.stop()
        redis_server.start()
        # both processes notice and reconnect; /readyz says so
        async with httpx.AsyncClient() as http:
            for server in (a, b):
                for _ in range(100):
                    if (await http.get(f"{server.url}/readyz")).status_code == 200:
                        break
                    await asyncio.sleep(0.1)
                ready = await http.get(f"{server.url}/readyz")
                assert ready.json()["checks"]["broker"] == "ok"
        await _round_trip(a, b)
        assert "reconnected" in a.output() + b.output()
