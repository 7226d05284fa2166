"""Shared fixtures: both database backends, migrated once; apps; a GraphQL client."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from api.passwords import hash_password, use_fast_hashing_for_tests
from api.settings import Settings
from db import seed
from db.engine import ORIGIN_OPTION, create_engine, write_sessionmaker
from db.migrate import upgrade
from db.session import unit_of_work
from tests.factories import Sessions
from tests.queries import LOGIN
from tests.throwaway import PostgresServer, postgres_server, redis_server  # noqa: F401

use_fast_hashing_for_tests()

JWT_SECRET = "test-secret-" + "x" * 40
BACKENDS = ["sqlite", "postgres"]
SEED_ITEMS = 250


@dataclass
class Database:
    backend: str
    url: str


class Templates:
    """Migrated (and seeded) template databases, copied for each test that writes."""

    def __init__(self, tmp: Path, pg: PostgresServer | None) -> None:
        self.tmp = tmp
        self.pg = pg
        self.counter = 0

    def _sqlite_url(self, name: str) -> str:
        return f"sqlite+aiosqlite:///{self.tmp / name}.db"

    def template(self, backend: str, name: str) -> str:
        if backend == "sqlite":
            return self._sqlite_url(name)
        assert self.pg is not None
        return self.pg.create_database(name)

    def copy(self, backend: str, template: str) -> str:
        self.counter += 1
        name = f"t{self.counter}"
        if backend == "sqlite":
            source = Path(template.removeprefix("sqlite+aiosqlite:///"))
            target = self.tmp / f"{name}.db"
            shutil.copyfile(source, target)
            return self._sqlite_url(name)
        assert self.pg is not None
        template_name = template.rsplit("/", 1)[1]
        self.pg.psql(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
        return self.pg.url_for(name)


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    return Templates(tmp_path_factory.mktemp("db"), None)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest, templates: Templates) -> str:
    name: str = request.param
    if name == "postgres" and templates.pg is None:
        templates.pg = request.getfixturevalue("postgres_server")
    return name


async def _seed(url: str, items: int) -> None:
    engine = create_engine(url)
    try:
        async with unit_of_work(write_sessionmaker(engine)) as session:
            await seed.seed(session, hash_password=hash_password, items=items)
    finally:
        await engine.dispose()


_migrated: dict[str, str] = {}
_seeded: dict[str, str] = {}


@pytest.fixture
def migrated_template(backend: str, templates: Templates) -> str:
    if backend not in _migrated:
        url = templates.template(backend, f"migrated_{backend}")
        upgrade(url)
        _migrated[backend] = url
    return _migrated[backend]


@pytest.fixture
async def seeded_template(backend: str, templates: Templates, migrated_template: str) -> str:
    if backend not in _seeded:
        url = templates.copy(backend, migrated_template)
        await _seed(url, SEED_ITEMS)
        _seeded[backend] = url
    return _seeded[backend]


@pytest.fixture
def empty_db(backend: str, templates: Templates, migrated_template: str) -> Database:
    """A migrated database with no rows, private to the test."""
    return Database(backend, templates.copy(backend, migrated_template))


@pytest.fixture
def seeded_db(backend: str, templates: Templates, seeded_template: str) -> Database:
    """A private copy of the seeded database (demo users, 250 items)."""
    return Database(backend, templates.copy(backend, seeded_template))


@pytest.fixture
def shared_seeded_db(backend: str, seeded_template: str) -> Database:
    """The seeded template itself, for tests that only read."""
    return Database(backend, seeded_template)


@pytest.fixture
async def sessions(empty_db: Database) -> AsyncIterator[Sessions]:
    """Units of work over a private empty database, for tests that call db/ services."""
    engine = create_engine(empty_db.url)
    try:
        yield Sessions(write_sessionmaker(engine))
    finally:
        await engine.dispose()


def make_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "jwt_secret": JWT_SECRET,
        "log_json": False,
        "reservation_sweep_seconds": 0.2,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


class GraphQLClient:
    def __init__(self, http: httpx.AsyncClient, app: FastAPI) -> None:
        self.http = http
        self.app = app
        self.token: str | None = None

    @property
    def engine(self) -> AsyncEngine:
        engine: AsyncEngine = self.app.state.stockroom.engine
        return engine

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        all_headers = dict(headers or {})
        bearer = token or self.token
        if bearer:
            all_headers["Authorization"] = f"Bearer {bearer}"
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=all_headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        body = await self.execute(query, variables, **kw)
        assert not body.get("errors"), body["errors"]
        return body["data"]

    async def login(self, email: str, password: str) -> str:
        data = await self.data(LOGIN, {"e": email, "p": password})
        assert data["login"]["errors"] == [], data
        token: str = data["login"]["accessToken"]
        return token

    async def login_as(self, role: str) -> str:
        self.token = await self.login(f"{role}@example.com", role)
        return self.token

    @contextmanager
    def count_statements(self) -> Iterator[list[str]]:
        statements: list[str] = []

        def record(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if conn.get_execution_options().get(ORIGIN_OPTION) is not None:
                return  # a background job (the reservation sweeper), not the request
            if not statement.lstrip().upper().startswith(("BEGIN", "ROLLBACK", "COMMIT")):
                statements.append(statement)

        sync_engine = self.engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            event.remove(sync_engine, "before_cursor_execute", record)


async def _client_for(settings: Settings) -> AsyncIterator[GraphQLClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield GraphQLClient(http, app)


@pytest.fixture
async def client(seeded_db: Database) -> AsyncIterator[GraphQLClient]:
    """An in-process app over a private seeded database."""
    async for c in _client_for(make_settings(seeded_db.url)):
        yield c


@pytest.fixture
async def reader_client(shared_seeded_db: Database) -> AsyncIterator[GraphQLClient]:
    """An in-process app over the shared seeded database: tests must not write."""
    async for c in _client_for(make_settings(shared_seeded_db.url)):
        yield c


@pytest.fixture
async def empty_client(empty_db: Database) -> AsyncIterator[GraphQLClient]:
    async for c in _client_for(make_settings(empty_db.url)):
        yield c
