"""Login, refresh rotation, revocation and the role table, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.queries import ME
from tests.seeded import seeded_ids

LOGIN = """mutation($e: String!, $p: String!) { login(email: $e, password: $p) {
  accessToken refreshToken expiresIn user { email role } errors { code field message } } }"""
REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) {
  accessToken refreshToken errors { code field } } }"""
UPDATE_USER = """mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input)
  { user { role isActive } errors { code field } } }"""
CREATE_USER = """mutation($input: CreateUserInput!) { createUser(input: $input)
  { user { id email role } errors { code field } } }"""


async def test_login_failures_look_the_same(client):
    wrong = await client.data(LOGIN, {"e": "admin@example.com", "p": "nope"})
    unknown = await client.data(LOGIN, {"e": "ghost@example.com", "p": "nope"})
    assert wrong["login"]["errors"] == unknown["login"]["errors"]
    assert wrong["login"]["errors"][0]["code"] == "INVALID_CREDENTIALS"
    assert wrong["login"]["accessToken"] is None


async def test_login_returns_tokens_and_user(client):
    data = (await client.data(LOGIN, {"e": "Clerk@Example.com", "p": "clerk"}))["login"]
    assert data["errors"] == []
    assert data["user"] == {"email": "clerk@example.com", "role": "CLERK"}
    assert data["expiresIn"] == 900
    me = await client.data(ME, token=data["accessToken"])
    assert me["me"]["email"] == "clerk@example.com"
    # a refresh token is not an access token
    body = await client.execute(ME, token=data["refreshToken"])
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_refresh_rotates_and_reuse_revokes_the_family(client):
    first = (await client.data(LOGIN, {"e": "viewer@example.com", "p": "viewer"}))["login"]
    second = (await client.data(REFRESH, {"t": first["refreshToken"]}))["refreshToken"]
    assert second["errors"] == []
    assert second["refreshToken"] != first["refreshToken"]
    # the rotated token presented again is refused, and so is the family's newest one
    reused = (await client.data(REFRESH, {"t": first["refreshToken"]}))["refreshToken"]
    assert reused["errors"][0]["code"] == "INVALID_TOKEN"
    after = (await client.data(REFRESH, {"t": second["refreshToken"]}))["refreshToken"]
    assert after["errors"][0]["code"] == "INVALID_TOKEN"
    # an access token is not a refresh token
    wrong = (await client.data(REFRESH, {"t": first["accessToken"]}))["refreshToken"]
    assert wrong["errors"][0]["code"] == "INVALID_TOKEN"


async def test_deactivation_and_role_change_revoke_tokens(client):
    viewer = await client.login("viewer@example.com", "viewer")
    refresh = (await client.data(LOGIN, {"e": "viewer@example.com", "p": "viewer"}))["login"][
        "refreshToken"]
    await client.login_as("admin")
    users = await client.data("{ users(first: 10) { edges { node { id email } } } }")
    viewer_id = next(e["node"]["id"] for e in users["users"]["edges"]
                     if e["node"]["email"] == "viewer@example.com")
    changed = await client.data(UPDATE_USER, {"id": viewer_id, "input": {"role": "CLERK"}})
    assert changed["updateUser"]["user"]["role"] == "CLERK"
    body = await client.execute(ME, token=viewer)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    stale = await client.data(REFRESH, {"t": refresh})
    assert stale["refreshToken"]["errors"][0]["code"] == "INVALID_TOKEN"
    fresh = await client.login("viewer@example.com", "viewer")
    await client.data(UPDATE_USER, {"id": viewer_id, "input": {"isActive": False}})
    body = await client.execute(ME, token=fresh)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    locked = await client.data(LOGIN, {"e": "viewer@example.com", "p": "viewer"})
    assert locked["login"]["errors"][0]["code"] == "INVALID_CREDENTIALS"


async def test_admin_creates_users(client):
    await client.login_as("admin")
    made = await client.data(CREATE_USER, {"input": {"email": "new@example.com",
                                                     "password": "long-enough", "role": "CLERK"}})
    assert made["createUser"]["user"]["role"] == "CLERK"
    dup = await client.data(CREATE_USER, {"input": {"email": "NEW@example.com",
                                                    "password": "long-enough", "role": "CLERK"}})
    assert dup["createUser"]["errors"][0]["code"] == "DUPLICATE"
    short = await client.data(CREATE_USER, {"input": {"email": "x@example.com",
                                                      "password": "short", "role": "CLERK"}})
    assert short["createUser"]["errors"][0] == {"code": "INVALID",
                                                "field": ["input", "password"]}
    assert await client.login("new@example.com", "long-enough")


async def test_oauth2_token_route(client):
    ok = await client.http.post("/auth/token", data={"username": "admin@example.com",
                                                     "password": "admin"})
    assert ok.status_code == 200
    assert ok.json()["token_type"] == "bearer"
    me = await client.data("{ me { role } }", token=ok.json()["access_token"])
    assert me["me"]["role"] == "ADMIN"
    bad = await client.http.post("/auth/token", data={"username": "admin@example.com",
                                                      "password": "x"})
    assert bad.status_code == 401


# One representative mutation per family, and the weakest role allowed to run it.
FAMILIES = {
    "stock": ("CLERK", """mutation($i: ID!, $w: ID!) { adjustStock(input: {itemId: $i,
        warehouseId: $w, delta: 1, kind: RECEIPT}) { errors { code } } }"""),
    "reservations": ("CLERK", """mutation($i: ID!, $w: ID!) { reserveStock(input: {itemId: $i,
        warehouseId: $w, quantity: 1}) { errors { code } } }"""),
    "items": ("MANAGER", """mutation($i: ID!) { updateItem(id: $i, input: {name: "Renamed"})
        { errors { code } } }"""),
    "categories": ("MANAGER", """mutation { createCategory(input: {name: "Role test"})
        { errors { code } } }"""),
    "warehouses": ("MANAGER", """mutation($w: ID!) { updateWarehouse(id: $w,
        input: {code: "RT", name: "Role test"}) { errors { code } } }"""),
    "users": ("ADMIN", """mutation { createUser(input: {email: "rt@example.com",
        password: "long-enough", role: VIEWER}) { errors { code } } }"""),
}
ROLES = ["anonymous", "viewer", "clerk", "manager", "admin"]
RANK = {"anonymous": -1, "viewer": 0, "clerk": 1, "manager": 2, "admin": 3}


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("role", ROLES)
async def test_role_table(client, family, role):
    needed, mutation = FAMILIES[family]
    await client.login_as("admin")
    [item], [warehouse] = await seeded_ids(client.data, ["SKU-00001"], ["BER-1"])  # in stock
    variables = {"i": item, "w": warehouse}
    variables = {k: v for k, v in variables.items() if f"${k}" in mutation}
    client.token = None if role == "anonymous" else await client.login_as(role)
    body = await client.execute(mutation, variables)
    if RANK[role] >= RANK[needed.lower()]:
        assert "errors" not in body, body
        payload = next(iter(body["data"].values()))
        assert payload["errors"] == []
    else:
        expected = "UNAUTHENTICATED" if role == "anonymous" else "FORBIDDEN"
        assert body["errors"][0]["extensions"]["code"] == expected
        assert body["data"] is None
