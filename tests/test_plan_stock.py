"""Planned reads of the ledger, reservations, the summary and users give the resolvers' bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Database
from tests.plan_paths import ROLES, Paths, add_edge_rows, paths

MOVEMENTS = """query($first: Int, $after: String, $last: Int, $before: String, $f: MovementFilter) {
  movements(first: $first, after: $after, last: $last, before: $before, filter: $f) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id kind delta onHandAfter reservedAfter reason reference createdAt
      __typename } } } }"""
MOVEMENT_RELATIONS = """{ movements(first: 5) { edges { node { item { sku unitCost }
  warehouse { code } actor { email role } } } } }"""
RESERVATIONS = """query($first: Int, $status: ReservationStatus) {
  reservations(first: $first, status: $status) { totalCount pageInfo { endCursor }
    edges { cursor node { id quantity status reference expiresAt createdAt
      item { sku } warehouse { code } } } } }"""
USERS = """query($first: Int, $after: String) { users(first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { cursor node { id email role isActive createdAt } } } }"""
ME = "{ me { id email role isActive createdAt __typename } }"
SUMMARY = """query($w: ID) { inventorySummary(warehouseId: $w) {
  itemCount totalOnHand totalValue lowStockCount } }"""


@pytest.fixture
async def both(seeded_db: Database) -> AsyncIterator[Paths]:
    await add_edge_rows(seeded_db.url)
    async with paths(seeded_db.url) as p:
        yield p


async def test_movements_paging_and_filters(both: Paths) -> None:
    page = await both.same(MOVEMENTS, {"first": 30})
    edges = page["data"]["movements"]["edges"]
    assert edges, "the seed writes a ledger"
    end = page["data"]["movements"]["pageInfo"]["endCursor"]
    await both.same(MOVEMENTS, {"first": 30, "after": end})
    await both.same(MOVEMENTS, {"last": 5, "before": end})
    ids = await both.same('{ item(sku: "SKU-00003") { id stockLevels { warehouse { id } } } }')
    item = ids["data"]["item"]
    for f in (
        {"itemId": item["id"]},
        {"warehouseId": item["stockLevels"][0]["warehouse"]["id"]},
        {"kinds": ["RECEIPT", "ADJUSTMENT"]},
        {"since": "2020-01-01T00:00:00+00:00", "until": "2100-01-01T00:00:00+00:00"},
        {"itemId": "bad"},
    ):
        await both.same(MOVEMENTS, {"first": 50, "f": f})
    for role in ("manager", "admin"):
        await both.same(MOVEMENT_RELATIONS, role=role)


async def test_reservations_summary_and_me(both: Paths) -> None:
    for status in (None, "ACTIVE", "RELEASED"):
        await both.same(RESERVATIONS, {"first": 20, "status": status})
    warehouses = await both.same("{ warehouses { edges { node { id } } } }")
    for edge in warehouses["data"]["warehouses"]["edges"]:
        await both.same(SUMMARY, {"w": edge["node"]["id"]})
    await both.same(SUMMARY, {})
    await both.same(SUMMARY, {"w": "bad"})
    for role in ROLES:
        body = await both.same(ME, role=role)
        assert body["data"]["me"]["email"] == f"{role}@example.com"
    await both.same(ME, role=None)


async def test_users_need_admin(both: Paths) -> None:
    for role in ROLES:
        body = await both.same(USERS, {"first": 2}, role=role)
        if role == "admin":
            after = body["data"]["users"]["pageInfo"]["endCursor"]
            await both.same(USERS, {"first": 2, "after": after}, role=role)
        else:
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await both.same(USERS, {}, role=None)
