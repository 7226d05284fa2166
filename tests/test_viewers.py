"""The viewer cache: a token's user is read once per bound, and a revocation still ends the
token everywhere: at once on the worker that made it, within the bound on every other."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select, update

from api.viewers import ViewerCache
from db import users
from db.engine import create_engine, read_sessionmaker, write_sessionmaker
from db.events import UserChanged
from db.models import Role, User
from db.session import unit_of_work
from tests.conftest import Database
from tests.server import Server, serve

ME = "{ me { email role } }"
UPDATE_USER = """mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input)
  { user { role isActive } errors { code field } } }"""
USERS = "{ users(first: 10) { edges { node { id email } } } }"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def _user_id(url: str, email: str) -> int:
    engine = create_engine(url)
    try:
        async with read_sessionmaker(engine)() as session:
            found: int = (await session.scalars(select(User.id).where(User.email == email))).one()
            return found
    finally:
        await engine.dispose()


async def test_a_user_is_read_once_per_bound_however_many_ask(seeded_db: Database) -> None:
    # given a cache trusting what it read for 0.5 s, and a statement counter
    engine = create_engine(seeded_db.url)
    statements: list[str] = []

    def count(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if "FROM users" in statement:
            statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    clock = Clock()
    cache = ViewerCache(read_sessionmaker(engine), ttl=0.5, clock=clock)
    viewer = await _user_id(seeded_db.url, "viewer@example.com")
    try:
        # when twenty requests of the same user arrive at once, and more follow within the bound
        states = await asyncio.gather(*(cache.state(viewer) for _ in range(20)))
        clock.t += 0.49
        again = await cache.state(viewer)
        # then one statement served them all
        assert len(statements) == 1
        assert {s.email for s in states} == {again.email if again else None} == {
            "viewer@example.com"}
        assert states[0] is not None and states[0].role is Role.VIEWER

        # when the bound passes, the row is read again
        clock.t += 0.02
        await cache.state(viewer)
        assert len(statements) == 2

        # and an unknown user is remembered as unknown for the bound too
        assert await cache.state(999_999) is None
        assert await cache.state(999_999) is None
        assert len(statements) == 3
    finally:
        await engine.dispose()


async def test_a_committed_change_is_seen_by_the_next_request(seeded_db: Database) -> None:
    # given a cache holding a user, with a bound far longer than the test
    engine = create_engine(seeded_db.url)
    cache = ViewerCache(read_sessionmaker(engine), ttl=3600)
    publish = cache.forgetting(_no_broker)
    viewer = await _user_id(seeded_db.url, "viewer@example.com")
    try:
        before = await cache.state(viewer)
        assert before is not None and before.role is Role.VIEWER

        # when a unit of work changes the role and records the change
        async with unit_of_work(write_sessionmaker(engine), publish) as session:
            await users.update_user(session, viewer, role=Role.CLERK)

        # then the cache forgot the user once the change committed
        after = await cache.state(viewer)
        assert after is not None and after.role is Role.CLERK
        assert after.token_version == before.token_version + 1
    finally:
        await engine.dispose()


async def test_a_read_that_started_before_a_change_is_not_kept(seeded_db: Database) -> None:
    # given a read of the user that is still on its way when the user is forgotten
    engine = create_engine(seeded_db.url)
    cache = ViewerCache(read_sessionmaker(engine), ttl=3600)
    viewer = await _user_id(seeded_db.url, "viewer@example.com")
    try:
        in_flight = asyncio.ensure_future(cache.state(viewer))
        await asyncio.sleep(0)  # the read has started
        # (the change lands in the database and the worker forgets, while the read runs)
        async with write_sessionmaker(engine)() as session, session.begin():
            await session.execute(update(User).where(User.id == viewer).values(role=Role.ADMIN))
        cache.forget(viewer)
        await in_flight

        # then the next request reads the row again and sees the change
        now = await cache.state(viewer)
        assert now is not None and now.role is Role.ADMIN
    finally:
        await engine.dispose()


async def _no_broker(events: list[Any]) -> None:
    assert all(isinstance(e, UserChanged) for e in events)


# ---------------------------------------------------------------- two real workers


async def _post(server: Server, query: str, variables: dict[str, Any] | None = None,
                token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.post("/graphql", json={"query": query, "variables": variables},
                                   headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _login(server: Server, email: str, password: str) -> str:
    body = await _post(server, "mutation($e: String!, $p: String!) { login(email: $e, "
                       "password: $p) { accessToken } }", {"e": email, "p": password})
    token: str = body["data"]["login"]["accessToken"]
    return token


def _refused(body: dict[str, Any]) -> bool:
    return (body.get("data") or {}).get("me") is None and any(
        e["extensions"]["code"] == "UNAUTHENTICATED" for e in body.get("errors", []))


# One change per way a token is revoked, and the password to log in with afterwards.
CHANGES = [
    ({"role": "CLERK"}, "viewer"),
    ({"password": "a-new-password"}, "a-new-password"),
    ({"isActive": False}, None),
]


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_revoked_token_stops_working_on_every_worker_within_a_second(
    seeded_db: Database, tmp_path: Any
) -> None:
    # given two workers sharing PostgreSQL with the default bound, and the viewer's token
    # accepted (and so cached) by both
    with serve(seeded_db.url, tmp_path / "a") as a, serve(seeded_db.url, tmp_path / "b") as b:
        admin = await _login(a, "admin@example.com", "admin")
        edges = (await _post(a, USERS, token=admin))["data"]["users"]["edges"]
        viewer_id = next(e["node"]["id"] for e in edges if e["node"]["email"] ==
                         "viewer@example.com")
        password: str | None = "viewer"
        for change, new_password in CHANGES:
            assert password is not None
            token = await _login(a, "viewer@example.com", password)
            for worker in (a, b):
                assert (await _post(worker, ME, token=token))["data"]["me"] is not None

            # when an admin revokes it on worker A
            changed = await _post(a, UPDATE_USER, {"id": viewer_id, "input": change},
                                  token=admin)
            answered = time.monotonic()
            assert changed["data"]["updateUser"]["errors"] == [], changed

            # then A refuses the token at once
            assert _refused(await _post(a, ME, token=token)), change
            # and B refuses it once the bound (0.5 s by default) has passed since the commit,
            # which came before A's answer
            await asyncio.sleep(max(0.0, 0.5 - (time.monotonic() - answered)))
            assert _refused(await _post(b, ME, token=token)), change
            password = new_password
