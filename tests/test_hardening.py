"""Limits, persisted queries, masking, origins, rate limits, metrics and shutdown."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import sqlite3
import time
from typing import Any

import asyncpg
import httpx
import pytest
import websockets
from graphql import (
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    get_named_type,
    parse,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import queries as graphql_queries
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from db.engine import create_engine
from schema import build_schema
from schema.limits import LIST_ESTIMATES, Measure, is_connection, measure
from tests.conftest import Database, _client_for, make_settings
from tests.queries import ADJUST, LOGIN, ME, STOCK_DELTAS
from tests.seeded import over_http, seeded_ids
from tests.server import serve
from tests.strategies import CUSTOM_SCALARS

DEEP = "{ items(first: 1) { edges { node { category { parent { parent { parent { parent { " \
       "parent { parent { parent { parent { parent { name } } } } } } } } } } } } } }"
ALIASES = "{ " + " ".join(f"a{i}: me {{ email }}" for i in range(31)) + " }"
COSTLY = ("{ items(first: 100) { edges { node { category { items(first: 100) { edges { node "
          "{ sku stockLevels { onHand } } } } } } } } }")
TOKENS = "{ " + " ".join("me { email }" for _ in range(2000)) + " }"


async def _refused_without_sql(client, query: str, token: str | None) -> dict[str, Any]:
    with client.count_statements() as statements:
        body = await client.execute(query, token=token)
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX", body
    assert body.get("data") is None
    # nothing of the operation ran (a token's user is read by the worker's viewer cache,
    # whose statements are not the request's)
    assert statements == []
    return body


@pytest.mark.parametrize("query", [DEEP, ALIASES, COSTLY, TOKENS],
                         ids=["depth", "aliases", "cost", "tokens"])
async def test_bombs_are_refused_before_any_sql(reader_client, query):
    await _refused_without_sql(reader_client, query, None)
    token = await reader_client.login("viewer@example.com", "viewer")
    await _refused_without_sql(reader_client, query, token)


async def test_cost_is_reported_on_every_response(reader_client):
    await reader_client.login_as("viewer")
    body = await reader_client.execute(
        "{ items(first: 10) { edges { node { sku category { name } } } } }")
    # items: 1 + 10 x (edges 1 + node (1 + sku 1 + category (1 + name 1)))
    assert body["extensions"]["cost"] == {"requested": 51, "limit": 50_000}
    body = await reader_client.execute(
        "query($n: Int) { items(first: $n) { totalCount } }", {"n": 7})
    assert body["extensions"]["cost"]["requested"] == 1 + 7 * 1



async def test_cost_follows_what_runs(reader_client):
    await reader_client.login_as("viewer")
    query = ("query($all: Boolean!, $n: Int) { items(first: $n) { totalCount "
             "edges @include(if: $all) { node { sku } } } }")
    costs = []
    for variables in ({"all": False, "n": 10}, {"all": True, "n": 10}, {"all": False, "n": 10},
                      {"all": False, "n": 3}):
        body = await reader_client.execute(query, variables)
        assert "errors" not in body, body
        costs.append(body["extensions"]["cost"]["requested"])
    # items: 1 + n x (totalCount 1 [+ edges (1 + node (1 + sku 1))]), remembered per variables
    assert costs == [1 + 10 * 1, 1 + 10 * (1 + 3), 1 + 10 * 1, 1 + 3 * 1]
    # a node is priced as the widest of its possible types: here an item with its levels
    body = await reader_client.execute(
        "{ node(id: \"SXRlbTow\") { id ... on Item { stockLevels { onHand } } "
        "... on Warehouse { code } } }")
    assert body["extensions"]["cost"]["requested"] == 1 + (1 + (1 + 5 * 1))


SCHEMA = build_schema()._schema


def _measured(query: str, variables: dict[str, Any] | None = None) -> Measure:
    return measure(SCHEMA, parse(query), None, variables)


def test_a_negative_page_size_does_not_lower_the_cost():
    cheap = _measured("{ a: items(first: -1000) { edges { node { sku } } } }")
    assert cheap.cost == 1
    assert cheap.aliases == 1


def test_aliases_are_counted_in_what_runs():
    aliased = " ".join(f"a{i}: me {{ email }}" for i in range(31))
    assert _measured("{ " + aliased + " }").aliases == 31
    # under a false @include, or in a fragment spread twice (collected once), as executed
    assert _measured("query($on: Boolean!) { ... @include(if: $on) { " + aliased + " } }",
                     {"on": False}).aliases == 0
    assert _measured("{ ...A ...A } fragment A on Query { " + aliased + " }").aliases == 31
    # and the widest possible type counts for a node
    node = _measured('{ node(id: "x") { ... on Item { a: sku b: name } '
                     '... on User { c: email } } }')
    assert (node.aliases, node.depth) == (2, 2)


def test_introspection_is_free_and_adds_no_depth():
    found = _measured("{ __typename t: __type(name: \"Item\") { fields { name } } me { email } }")
    assert (found.depth, found.aliases, found.cost) == (2, 1, 2)


def test_list_estimates_and_connections_follow_the_schema():
    # every declared estimate names a list field of its type that is not a connection
    for (type_name, field_name) in LIST_ESTIMATES:
        owner = SCHEMA.get_type(type_name)
        assert isinstance(owner, GraphQLObjectType), type_name
        field_type = owner.fields[field_name].type
        inner = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
        assert isinstance(inner, GraphQLList), (type_name, field_name)
        assert not is_connection(get_named_type(field_type))
    # connections are recognised by their shape: here, exactly the *Connection types
    shaped = {name for name, t in SCHEMA.type_map.items() if is_connection(t)}
    assert shaped == {name for name in SCHEMA.type_map if name.endswith("Connection")}
    assert len(shaped) >= 7


async def test_only_the_token_limit_is_too_complex(reader_client):
    body = await reader_client.execute("{ tokens( }")
    assert body["errors"][0]["message"].startswith("Syntax Error")
    assert body["errors"][0].get("extensions", {}).get("code") != "QUERY_TOO_COMPLEX"
    assert body["extensions"]["cost"] == {"requested": None, "limit": 50_000}


async def test_batches_are_capped(reader_client):
    token = await reader_client.login("viewer@example.com", "viewer")
    headers = {"Authorization": f"Bearer {token}"}
    ok = await reader_client.http.post("/graphql", headers=headers,
                                       json=[{"query": ME}] * 3)
    assert ok.status_code == 200
    assert [r["data"]["me"]["email"] for r in ok.json()] == ["viewer@example.com"] * 3
    too_many = await reader_client.http.post("/graphql", headers=headers,
                                             json=[{"query": ME}] * 11)
    assert too_many.status_code == 400


async def test_oversized_body_is_413(reader_client):
    response = await reader_client.http.post(
        "/graphql", content=b'{"query": "' + b" " * (2 * 1024 * 1024) + b'"}',
        headers={"content-type": "application/json"})
    assert response.status_code == 413


def _apq(query: str | None, digest: str) -> dict[str, Any]:
    body: dict[str, Any] = {"extensions": {"persistedQuery": {"version": 1,
                                                             "sha256Hash": digest}}}
    if query is not None:
        body["query"] = query
    return body


async def test_automatic_persisted_queries(reader_client):
    token = await reader_client.login("viewer@example.com", "viewer")
    headers = {"Authorization": f"Bearer {token}"}
    query = ME
    digest = hashlib.sha256(query.encode()).hexdigest()
    post = reader_client.http.post
    # unknown hash: the client is told to send the document
    miss = (await post("/graphql", json=_apq(None, "0" * 64), headers=headers)).json()
    assert miss["errors"][0]["message"] == "PersistedQueryNotFound"
    assert miss["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    # register, then hit with the hash alone, over POST and over GET (CDN-cacheable)
    registered = (await post("/graphql", json=_apq(query, digest), headers=headers)).json()
    assert registered["data"]["me"]["email"] == "viewer@example.com"
    hit = (await post("/graphql", json=_apq(None, digest), headers=headers)).json()
    assert hit["data"] == registered["data"]
    params = {"extensions": json.dumps(_apq(None, digest)["extensions"])}
    got = await reader_client.http.get(
        "/graphql", params=params, headers={**headers, "accept": "application/json"}
    )
    assert got.json()["data"] == registered["data"]
    # a document that does not match its hash is refused
    wrong = (await post("/graphql", json=_apq("{ me { role } }", digest), headers=headers))
    assert wrong.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    # mutations never run over GET
    mutation = 'mutation { login(email: "a@b.c", password: "x") { accessToken } }'
    refused = await reader_client.http.get("/graphql", params={"query": mutation})
    assert refused.status_code in (400, 405)


async def test_persisted_only_mode(shared_seeded_db, tmp_path):
    allowed = 'mutation { login(email: "viewer@example.com", password: "viewer") { accessToken } }'
    registry = tmp_path / "operations.json"
    registry.write_text(json.dumps([allowed]))
    settings_ = make_settings(shared_seeded_db.url, persisted_only=True,
                              persisted_queries_file=str(registry))
    async for client in _client_for(settings_):
        ok = await client.execute(allowed)
        assert ok["data"]["login"]["accessToken"]
        by_hash = await client.http.post(
            "/graphql", json=_apq(None, hashlib.sha256(allowed.encode()).hexdigest()))
        assert by_hash.json()["data"]["login"]["accessToken"]
        other = await client.execute(ME)
        assert other["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"


@pytest.fixture
async def prod_client(shared_seeded_db):
    async for client in _client_for(make_settings(shared_seeded_db.url, env="prod")):
        yield client


async def test_prod_masks_unexpected_errors(prod_client, monkeypatch):
    from db.stock import queries as stock_queries

    async def broken(*_args: Any) -> Any:
        raise RuntimeError("secret internals: password=hunter2")

    monkeypatch.setattr(stock_queries, "inventory_summary", broken)
    await prod_client.login_as("viewer")
    response = await prod_client.http.post(
        "/graphql", json={"query": "{ inventorySummary { itemCount } }"},
        headers={"Authorization": f"Bearer {prod_client.token}", "X-Request-ID": "req-42"})
    text = response.text
    assert "hunter2" not in text
    assert "RuntimeError" not in text
    assert "Traceback" not in text
    error = response.json()["errors"][0]
    assert error["message"] == "Internal server error (request id req-42)"
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-42"}
    assert response.headers["x-request-id"] == "req-42"
    # known errors keep their code
    body = await prod_client.execute("{ users(first: 1) { totalCount } }")
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_prod_hides_introspection_and_suggestions(prod_client):
    await prod_client.login_as("viewer")
    body = await prod_client.execute("{ __schema { types { name } } }")
    assert body["errors"]
    body = await prod_client.execute("{ itemz { id } }")
    assert "Did you mean" not in body["errors"][0]["message"]
    assert (await prod_client.http.get("/graphql", headers={"accept": "text/html"})
            ).status_code != 200


async def test_cors_origins(shared_seeded_db):
    settings_ = make_settings(shared_seeded_db.url, cors_origins="https://app.example.com")
    async for client in _client_for(settings_):
        preflight = {"Access-Control-Request-Method": "POST"}
        ok = await client.http.options(
            "/graphql", headers={"Origin": "https://app.example.com", **preflight})
        assert ok.headers["access-control-allow-origin"] == "https://app.example.com"
        evil = await client.http.options(
            "/graphql", headers={"Origin": "https://evil.example", **preflight})
        assert "access-control-allow-origin" not in evil.headers


@pytest.mark.e2e
async def test_websocket_origin_check(shared_seeded_db, tmp_path):
    with serve(shared_seeded_db.url, tmp_path, cors_origins="https://app.example.com") as server:
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(server.ws_url, subprotocols=["graphql-transport-ws"],
                                     origin="https://evil.example")
        good = await websockets.connect(server.ws_url, subprotocols=["graphql-transport-ws"],
                                        origin="https://app.example.com")
        await good.close()


async def _window_start(period: float) -> None:
    await asyncio.sleep(period - time.time() % period + 0.02)


async def test_rate_limit_trips_and_recovers(shared_seeded_db):
    settings_ = make_settings(shared_seeded_db.url, rate_limit="5/2second",
                              login_rate_limit="2/2second")
    async for client in _client_for(settings_):
        # Windows are aligned on multiples of 2 s and the previous one counts weighted by
        # what is left of the current: a burst straddling a boundary would be counted as
        # less than it is. Each burst starts just after a boundary.
        await _window_start(2)
        statuses = [(await client.http.post("/graphql", json={"query": "{ __typename }"}))
                    for _ in range(6)]
        assert [r.status_code for r in statuses[:5]] == [200] * 5
        assert statuses[5].status_code == 429
        assert int(statuses[5].headers["retry-after"]) >= 1
        assert statuses[5].json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        await asyncio.sleep(2.1)
        assert (await client.http.post("/graphql", json={"query": "{ __typename }"})
                ).status_code == 200
        form = {"username": "viewer@example.com", "password": "wrong"}
        await _window_start(2)
        codes = [(await client.http.post("/auth/token", data=form)).status_code
                 for _ in range(3)]
        assert codes == [401, 401, 429]


async def test_metrics_move(reader_client):
    await reader_client.login_as("viewer")

    async def sample(name: str, **labels: str) -> float:
        text = (await reader_client.http.get("/metrics")).text
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
        return 0.0

    before = await sample("stockroom_graphql_operations_total", operation="Me")
    errors_before = await sample("stockroom_graphql_errors_total", code="FORBIDDEN")
    await reader_client.data("query Me { me { email } }")
    await reader_client.execute("{ users(first: 1) { totalCount } }")
    assert await sample("stockroom_graphql_operations_total", operation="Me") == before + 1
    assert await sample("stockroom_graphql_errors_total", code="FORBIDDEN") == errors_before + 1
    assert await sample("stockroom_broker_connected") == 1


@pytest.mark.e2e
async def test_sigterm_lets_an_inflight_request_finish(seeded_db, tmp_path):
    with serve(seeded_db.url, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            login = await http.post("/graphql", json={"query": LOGIN, "variables": {
                "e": "clerk@example.com", "p": "clerk"}})
            token = login.json()["data"]["login"]["accessToken"]
            headers = {"Authorization": f"Bearer {token}"}
            [item], [warehouse] = await seeded_ids(over_http(http, token), ["SKU-00001"], ["BER-1"])
            variables = {"input": {"itemId": item, "warehouseId": warehouse, "delta": 1,
                                   "kind": "RECEIPT"}}
            # given the database is locked by someone else, so the write has to wait
            unlock = await _lock_database(seeded_db)
            request = asyncio.create_task(
                http.post("/graphql", json={"query": ADJUST, "variables": variables},
                          headers=headers))
            await asyncio.sleep(0.5)
            # when the server is told to stop while the request waits
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            await unlock()
            # then the request still completes, and the server then exits
            response = await request
            assert response.status_code == 200
            assert response.json()["data"]["adjustStock"]["errors"] == []
            # uvicorn re-raises the signal after a clean shutdown, hence -SIGTERM
            assert await asyncio.to_thread(server.process.wait, 20) in (0, -signal.SIGTERM)
            assert "Application shutdown complete" in server.output()


async def _lock_database(db) -> Any:
    if db.backend == "sqlite":
        conn = sqlite3.connect(db.url.removeprefix("sqlite+aiosqlite:///"),
                               isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")

        async def release_sqlite() -> None:
            conn.execute("ROLLBACK")
            conn.close()

        return release_sqlite
    pg = await asyncpg.connect(db.url.replace("postgresql+asyncpg://", "postgresql://"))
    await pg.execute("BEGIN")
    await pg.execute("LOCK TABLE stock_levels IN EXCLUSIVE MODE")

    async def release_pg() -> None:
        await pg.execute("ROLLBACK")
        await pg.close()

    return release_pg


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
async def test_random_valid_queries_never_500_or_leak(prod_client, data):
    if prod_client.token is None:
        await prod_client.login_as("admin")
    sdl = (await prod_client.http.get("/schema.graphql")).text
    query = data.draw(graphql_queries(sdl, custom_scalars=CUSTOM_SCALARS))
    response = await prod_client.http.post(
        "/graphql", json={"query": query},
        headers={"Authorization": f"Bearer {prod_client.token}"})
    assert response.status_code in (200, 429), response.text
    for error in response.json().get("errors") or []:
        assert "Traceback" not in error["message"]
        code = error.get("extensions", {}).get("code")
        assert code != "INTERNAL_SERVER_ERROR", (query, error)


_EXPORTER: Any = None


async def test_opentelemetry_spans_when_enabled(shared_seeded_db):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    global _EXPORTER
    if _EXPORTER is None:  # a process gets one global tracer provider
        _EXPORTER = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    exporter = _EXPORTER
    exporter.clear()
    async for client in _client_for(make_settings(shared_seeded_db.url, otel_enabled=True)):
        await client.login_as("viewer")
        await client.data("query Me { me { email } }")
    names = {span.name for span in exporter.get_finished_spans()}
    assert any("Me" in name or "GraphQL" in name for name in names), names


@pytest.mark.e2e
async def test_sigterm_closes_subscriptions_with_service_restart(shared_seeded_db, tmp_path):
    from tests import wsclient

    with serve(shared_seeded_db.url, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            login = await http.post("/graphql", json={"query": LOGIN, "variables": {
                "e": "viewer@example.com", "p": "viewer"}})
        ws = await wsclient.connect(server.ws_url)
        await wsclient.init(ws, login.json()["data"]["login"]["accessToken"])
        await wsclient.subscribe(ws, "1", STOCK_DELTAS)
        await asyncio.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 30)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1012  # "service restart": clients should reconnect


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_pool_replaces_connections_the_server_closed(empty_db: Database) -> None:
    """No pre-ping per checkout: a connection PostgreSQL closed is dropped, not handed out."""
    engine = create_engine(empty_db.url, pool_size=2)
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("select 1")) == 1
        base, database = empty_db.url.replace("+asyncpg", "").rsplit("/", 1)
        admin = await asyncpg.connect(f"{base}/postgres")
        try:
            killed = await admin.fetchval(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                "where datname = $1",
                database,
            )
        finally:
            await admin.close()
        assert killed == 1  # the pooled connection
        await asyncio.sleep(0.2)  # the client side notices the close
        async with engine.connect() as connection:
            assert await connection.scalar(text("select 1")) == 1
    finally:
        await engine.dispose()
