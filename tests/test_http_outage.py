"""An outage is an answer: with PostgreSQL stopped (its own throwaway server, so the rest of
the suite is not disturbed) every request gets JSON 503 with Retry-After and
SERVICE_UNAVAILABLE, /readyz says so, sockets close with "try again later", and service
comes back by itself when the database does. Also: a database that is down at start-up."""

from __future__ import annotations

import asyncio
import errno
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import websockets
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from api.graphql_http import GRAPHQL_RESPONSE_JSON
from api.outage import is_database_unavailable
from db.migrate import upgrade
from tests import wsclient
from tests.conftest import JWT_SECRET, _client_for, make_settings
from tests.queries import ADJUST
from tests.seeded import over_http, seeded_ids
from tests.server import serve
from tests.throwaway import PostgresServer, free_port, missing, pg_bin, start_postgres

ROOT = Path(__file__).resolve().parent.parent
NEW = GRAPHQL_RESPONSE_JSON
LOGIN = ('mutation($e: String!, $p: String!) { login(email: $e, password: $p) '
         '{ accessToken errors { code } } }')
READ = "query Read { items(first: 5) { edges { node { sku totalOnHand } } } }"
SUBSCRIPTION = "subscription { stockChanged { movement { delta } } }"
RECOVERY_DEADLINE = 60.0  # seconds: a bound so a broken recovery fails instead of hanging


@dataclass
class OwnPostgres:
    """A PostgreSQL server of this module's own, stopped and started by its tests."""

    server: PostgresServer
    running: bool = True

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def broker_url(self) -> str:
        return self.server.dsn

    def stop(self) -> None:
        self.server.stop()
        self.running = False

    def start(self) -> None:
        if not self.running:
            self.server.start()
            self.running = True


@pytest.fixture(scope="module")
def own_pg() -> Iterator[OwnPostgres]:
    absent = [name for name in ("initdb", "pg_ctl", "postgres", "psql") if pg_bin(name) is None]
    if absent:
        missing(f"PostgreSQL ({', '.join(absent)})", "apt-get install postgresql")
    # Durable commits: this server is stopped with `-m immediate` mid-load, and a commit it
    # acknowledged must survive that, or a write answered 200 would vanish with the crash.
    server = start_postgres(("fsync=on", "synchronous_commit=on"))
    try:
        upgrade(server.url)
        subprocess.run(
            [sys.executable, "-m", "api.cli", "seed", "--demo", "--items", "20"],
            env={"STOCKROOM_DATABASE_URL": server.url, "STOCKROOM_JWT_SECRET": JWT_SECRET,
                 "PATH": "/usr/bin:/bin"},
            cwd=ROOT, check=True, capture_output=True, timeout=120,
        )
        own = OwnPostgres(server)
        yield own
    finally:
        server.close()


@pytest.fixture
def pg(own_pg: OwnPostgres) -> Iterator[OwnPostgres]:
    """The server, running again after each test whatever the test did to it."""
    own_pg.start()
    try:
        yield own_pg
    finally:
        own_pg.start()


def assert_unavailable(response: httpx.Response, media_type: str = "application/json",
                       ) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(media_type)
    assert response.headers["retry-after"] == "2"
    body: dict[str, Any] = response.json()
    assert "data" not in body
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert error["extensions"]["retryAfter"] == 2
    return error


async def until(check: Any, what: str, deadline: float = RECOVERY_DEADLINE) -> Any:
    """Poll ``check()`` until it returns something truthy (or fail after ``deadline``)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            value = await check()
        except (httpx.HTTPError, OSError):
            value = None
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what}: not within {deadline} s")


# --- the classifier ---------------------------------------------------------------------------


async def test_the_classifier_knows_an_unreachable_database_from_other_failures(tmp_path):
    closed = free_port()
    with pytest.raises(OSError) as refused:
        await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{closed}/x", timeout=5)
    assert is_database_unavailable(refused.value)
    engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{closed}/x")
    with pytest.raises(Exception) as through_sqlalchemy:  # whichever SQLAlchemy raises
        async with engine.connect() as connection:
            await connection.execute(text("select 1"))
    await engine.dispose()
    assert is_database_unavailable(through_sqlalchemy.value)
    with pytest.raises(sqlite3.OperationalError) as no_file:
        sqlite3.connect(tmp_path / "missing" / "db.sqlite")
    assert is_database_unavailable(no_file.value)
    assert is_database_unavailable(asyncpg.CannotConnectNowError("the database is starting up"))
    # a wrapped cause counts; other failures do not
    wrapped = RuntimeError("loader failed")
    wrapped.__cause__ = ConnectionResetError("reset by peer")
    assert is_database_unavailable(wrapped)
    assert not is_database_unavailable(OSError(errno.ENOSPC, "No space left on device"))
    assert not is_database_unavailable(asyncpg.UniqueViolationError("duplicate key"))
    assert not is_database_unavailable(asyncpg.QueryCanceledError("statement timeout"))
    assert not is_database_unavailable(ValueError("bad input"))


# --- in process: every path that meets the database ------------------------------------------


async def test_with_the_database_stopped_every_request_is_a_json_503(pg):
    async for client in _client_for(make_settings(pg.url)):
        await client.login_as("clerk")
        [item], [warehouse] = await seeded_ids(client.data, ["SKU-00001"], ["BER-1"])
        adjust = {"query": ADJUST, "variables": {"input": {
            "itemId": item,
            "warehouseId": warehouse,
            "delta": 1, "kind": "RECEIPT"}}}
        token = {"Authorization": f"Bearer {client.token}"}
        before = await client.data(READ)
        pg.stop()
        # the first readiness check after the stop already says so
        ready = await client.http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"].startswith("error")
        for accept in ("application/json", NEW, "*/*"):
            media = NEW if accept == NEW else "application/json"
            # with a token: the viewer lookup fails before any GraphQL runs (or, while the
            # worker still trusts its copy of the viewer, the read itself fails)
            error = assert_unavailable(await client.http.post(
                "/graphql", json={"query": READ}, headers={**token, "Accept": accept}), media)
            assert error["extensions"]["applied"] is False
            # a mutation says nothing was applied
            error = assert_unavailable(await client.http.post(
                "/graphql", json=adjust, headers={**token, "Accept": accept}), media)
            assert "nothing was applied" in error["message"]
            # without a token the failure happens inside execution (login reads the user)
            error = assert_unavailable(await client.http.post(
                "/graphql", json={"query": LOGIN, "variables": {"e": "clerk@example.com",
                                                                 "p": "clerk"}},
                headers={"Accept": accept}), media)
            assert "nothing was applied" in error["message"]
            assert error["extensions"]["applied"] is False
        # reads over GET too, and they carry no validator
        got = await client.http.get("/graphql", params={"query": READ}, headers=token)
        assert_unavailable(got)
        assert "etag" not in got.headers
        # REST routes answer in their own shape
        rest = await client.http.post("/auth/token", data={"username": "clerk@example.com",
                                                           "password": "clerk"})
        assert rest.status_code == 503
        assert rest.headers["retry-after"] == "2"
        assert rest.json()["code"] == "SERVICE_UNAVAILABLE"
        # when the database is back, service resumes without a restart of the app
        pg.start()

        async def read_back(http: httpx.AsyncClient = client.http,
                            headers: dict[str, str] = token) -> Any:
            response = await http.post("/graphql", json={"query": READ}, headers=headers)
            return response.status_code == 200 and response.json()

        assert (await until(read_back, "reads after the restart"))["data"] == before
        assert (await client.http.get("/readyz")).status_code == 200
        body = await client.execute(ADJUST, adjust["variables"])
        assert body["data"]["adjustStock"]["errors"] == []


# --- a real server: sockets, the broker, load, start-up ---------------------------------------


async def _login(http: httpx.AsyncClient, role: str = "clerk") -> str:
    response = await http.post("/graphql", json={"query": LOGIN, "variables": {
        "e": f"{role}@example.com", "p": role}})
    token: str = response.json()["data"]["login"]["accessToken"]
    return token


async def _closed_with(ws: Any) -> tuple[int | None, list[Any]]:
    """Read until the socket closes: (close code, messages received before)."""
    messages = []
    while True:
        try:
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
        except websockets.ConnectionClosed as closed:
            return (closed.rcvd.code if closed.rcvd else None), messages


@pytest.mark.e2e
async def test_sockets_close_to_be_retried_and_open_subscriptions_survive(pg, tmp_path):
    # The token's user read per connection_init: a copy cached a moment before the outage
    # would (rightly) let a new socket in without the database.
    with serve(pg.url, tmp_path, broker_url=pg.broker_url, viewer_cache_seconds="0") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            token = await _login(http)
            [item], [warehouse] = await seeded_ids(
                over_http(http, token), ["SKU-00001"], ["BER-1"]
            )
            # given a subscription that is open before the outage
            live = await wsclient.connect(server.ws_url)
            assert (await wsclient.init(live, token))["type"] == "connection_ack"
            await wsclient.subscribe(live, "1", SUBSCRIPTION)
            pg.stop()
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"].startswith("error")

            async def broker_down() -> bool:
                checks = (await http.get("/readyz")).json()["checks"]
                return checks["broker"] == "disconnected"

            await until(broker_down, "the broker reported down", deadline=10)
            # a new socket authenticating in connection_init: 1013, "try again later"
            fresh = await wsclient.connect(server.ws_url)
            await wsclient.send(fresh, {"type": "connection_init",
                                        "payload": {"Authorization": f"Bearer {token}"}})
            assert (await _closed_with(fresh))[0] == 1013
            # with the token in the handshake's header: accepted, then 1013
            headed = await wsclient.connect(
                server.ws_url, additional_headers={"Authorization": f"Bearer {token}"})
            assert (await _closed_with(headed))[0] == 1013
            # the legacy protocol's refusal: connection_error, then 1011
            legacy = await wsclient.connect(server.ws_url, wsclient.LEGACY_WS)
            await wsclient.send(legacy, {"type": "connection_init",
                                         "payload": {"Authorization": f"Bearer {token}"}})
            code, messages = await _closed_with(legacy)
            assert code == 1011
            assert messages[0]["type"] == "connection_error"
            assert messages[0]["payload"]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            # when the database (and so the broker) is back
            pg.start()

            async def ready_again() -> bool:
                return (await http.get("/readyz")).status_code == 200

            await until(ready_again, "readiness after the restart")
            variables = {"input": {"itemId": item, "warehouseId": warehouse, "delta": 7,
                                   "kind": "RECEIPT"}}

            async def adjusted() -> bool:
                response = await http.post("/graphql", json={"query": ADJUST,
                                                             "variables": variables},
                                           headers={"Authorization": f"Bearer {token}"})
                return response.status_code == 200

            await until(adjusted, "a write after the restart")
            # then the subscription opened before the outage delivers the new event
            event = await asyncio.wait_for(wsclient.receive(live), 30)
            assert event["type"] == "next", event
            assert event["payload"]["data"]["stockChanged"]["movement"]["delta"] == 7
            await live.close()


@dataclass
class Answers:
    """Every answer the load got, by kind."""

    seen: list[tuple[str, int, str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def ok(self, kind: str) -> int:
        return sum(1 for k, status, _, _ in self.seen if k == kind and status == 200)


async def _load(url: str, token: str, adjust: dict[str, Any], stop: asyncio.Event,
                answers: Answers, kind: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        end = time.monotonic() + 4 * RECOVERY_DEADLINE
        while not stop.is_set() and time.monotonic() < end:
            body = {"query": READ} if kind == "read" else adjust
            try:
                response = await http.post("/graphql", json=body, headers=headers)
            except httpx.HTTPError as exc:
                answers.failures.append(f"{kind}: {type(exc).__name__}: {exc}")
                continue
            content_type = response.headers.get("content-type", "")
            try:
                decoded = response.json()
            except json.JSONDecodeError:
                decoded = None
                answers.failures.append(f"{kind}: {response.status_code} not JSON: "
                                        f"{response.text[:200]}")
            answers.seen.append((kind, response.status_code, content_type, decoded))
            await asyncio.sleep(0.01)


@pytest.mark.e2e
async def test_a_postgres_restart_under_load_gets_only_json_and_service_recovers(pg, tmp_path):
    with serve(pg.url, tmp_path, broker_url=pg.broker_url, rate_limit="1000000/minute",
               db_pool_size="5") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            token = await _login(http)
            headers = {"Authorization": f"Bearer {token}"}
            [item], [warehouse] = await seeded_ids(
                over_http(http, token), ["SKU-00002"], ["BER-1"]
            )

            async def on_hand() -> int:
                response = await http.post("/graphql", headers=headers, json={"query": (
                    "query($id: ID!) { item(id: $id) { totalOnHand } }"),
                    "variables": {"id": item}})
                total: int = response.json()["data"]["item"]["totalOnHand"]
                return total

            start_on_hand = await on_hand()
            adjust = {"query": ADJUST, "variables": {"input": {
                "itemId": item,
                "warehouseId": warehouse,
                "delta": 1, "kind": "RECEIPT"}}}
            answers, stop = Answers(), asyncio.Event()
            # given steady reads and writes from several clients
            load = [asyncio.create_task(_load(server.url, token, adjust, stop, answers, kind))
                    for kind in ("read", "read", "read", "write", "write")]
            await asyncio.sleep(1.0)
            # when PostgreSQL stops, stays away a moment, and starts again
            await asyncio.to_thread(pg.stop)
            assert (await http.get("/readyz")).status_code == 503
            await asyncio.sleep(2.0)
            during = len(answers.seen)
            await asyncio.to_thread(pg.start)

            # then reads and writes succeed again without touching the app
            async def recovered() -> bool:
                after = answers.seen[during:]
                return (any(k == "read" and s == 200 for k, s, _, _ in after)
                        and any(k == "write" and s == 200 for k, s, _, _ in after))

            await until(recovered, "reads and writes after the restart")
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*load)

            # the broker reconnects on its own backoff (at most 2 s), maybe after the pool
            async def ready() -> bool:
                return (await http.get("/readyz")).status_code == 200

            await until(ready, "readiness after the restart", deadline=RECOVERY_DEADLINE)
            final_on_hand = await on_hand()

    # every answer was JSON: 200, or 503 with Retry-After and SERVICE_UNAVAILABLE
    assert answers.failures == []
    assert answers.ok("read") and answers.ok("write")
    statuses = {status for _, status, _, _ in answers.seen}
    assert statuses <= {200, 503}, statuses
    assert 503 in statuses  # the outage was seen by the clients
    unknown = 0
    for kind, status, content_type, body in answers.seen:
        assert content_type == "application/json", (kind, status, content_type)
        if status == 503:
            (error,) = body["errors"]
            assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            if kind == "write" and error["extensions"]["applied"] is None:
                unknown += 1
        elif kind == "write":
            assert body["data"]["adjustStock"]["errors"] == [], body
    # and no write that was told "nothing was applied" was applied
    applied = final_on_hand - start_on_hand
    assert answers.ok("write") <= applied <= answers.ok("write") + unknown


@pytest.mark.e2e
async def test_a_database_down_at_start_up_is_waited_for(pg, tmp_path):
    # given the database is not running when the server starts
    pg.stop()
    with serve(pg.url, tmp_path, wait_ready=False, broker_url=pg.broker_url) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            # then the server is alive, says it is not ready and why, and answers 503 JSON
            assert (await http.get("/healthz")).status_code == 200
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"].startswith("error")
            login = await http.post("/graphql", json={"query": LOGIN, "variables": {
                "e": "clerk@example.com", "p": "clerk"}}, headers={"Accept": NEW})
            assert_unavailable(login, NEW)
            # when the database arrives, the same process serves
            pg.start()

            async def ready_now() -> bool:
                return (await http.get("/readyz")).status_code == 200

            await until(ready_now, "readiness once the database arrived")
            token = await _login(http)
            me = await http.post("/graphql", json={"query": "{ me { email role } }"},
                                 headers={"Authorization": f"Bearer {token}"})
            assert me.json()["data"]["me"] == {"email": "clerk@example.com", "role": "CLERK"}
        assert "Traceback" not in server.output().split("Application startup complete")[0]


async def test_webhooks_deliver_every_event_across_a_postgres_restart(pg, tmp_path):
    from tests.receiver import Receiver
    from tests.webhook_helpers import create_webhook

    async with Receiver() as receiver:
        with serve(pg.url, tmp_path, webhook_backoff="0.2", webhook_poll_seconds="0.1",
                   webhook_max_attempts="20", event_poll_seconds="0.2") as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                run = over_http(http, await _login(http, "admin"))
                await create_webhook(run, receiver.url, ["STOCK_CHANGED"])
                [item], [warehouse] = await seeded_ids(run, ["SKU-00002"], ["BER-1"])
                adjust = {"input": {"itemId": item, "warehouseId": warehouse, "delta": 1,
                                    "kind": "RECEIPT"}}
                async def change() -> bool:
                    data = await run(ADJUST, adjust)
                    return bool(data and data["adjustStock"]["errors"] == [])

                for _ in range(10):
                    assert await change()
                # when the database goes away with deliveries on their way, and comes back
                pg.stop()
                await asyncio.sleep(1.5)
                pg.start()

                async def changed() -> bool:
                    try:
                        return await change()
                    except (KeyError, httpx.HTTPError):
                        return False

                await until(changed, "a write after the restart")
                for _ in range(9):
                    assert await change()
                # then every committed change reached the receiver, in order, none lost
                await until(lambda: _at_least(receiver, 20), "20 deliveries")
                ids = list(dict.fromkeys(receiver.ids()))
                assert len(ids) == 20 and ids == sorted(ids, key=int)


async def _at_least(receiver: Any, count: int) -> bool:
    return len(set(receiver.ids())) >= count
