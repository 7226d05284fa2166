"""Planned reads of categories, warehouses and their relations give the resolvers' bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Database
from tests.plan_paths import ROLES, Paths, add_edge_rows, paths

CATEGORY = "id name description createdAt updatedAt __typename"
CATEGORIES = f"""query($first: Int, $after: String, $last: Int, $before: String, $parent: ID) {{
  categories(first: $first, after: $after, last: $last, before: $before, parentId: $parent) {{
    totalCount pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
    edges {{ cursor node {{ {CATEGORY} parent {{ {CATEGORY} parent {{ name }} }}
      children {{ {CATEGORY} children {{ name }} }} }} }} }} }}"""
WAREHOUSES = """query($first: Int, $after: String, $last: Int, $before: String) {
  warehouses(first: $first, after: $after, last: $last, before: $before) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id code name address createdAt updatedAt __typename } } } }"""
LEVEL_ITEMS = """query($first: Int!) { items(first: $first) { edges { node { sku
  stockLevels { onHand item { sku name unitCost category { name parent { name } } } } } } } }"""


@pytest.fixture
async def both(seeded_db: Database) -> AsyncIterator[Paths]:
    await add_edge_rows(seeded_db.url)
    async with paths(seeded_db.url) as p:
        yield p


async def test_categories_tree_paging_and_parents(both: Paths) -> None:
    # given the top level, when paged forward and back, then both paths agree
    top = await both.same(CATEGORIES, {"first": 2})
    info = top["data"]["categories"]["pageInfo"]
    await both.same(CATEGORIES, {"first": 2, "after": info["endCursor"]})
    await both.same(CATEGORIES, {"last": 1, "before": info["endCursor"]})
    await both.same(CATEGORIES, {"first": 0})
    # and below each top-level category, children with their parents
    for edge in top["data"]["categories"]["edges"]:
        below = await both.same(CATEGORIES, {"first": 50, "parent": edge["node"]["id"]})
        for child in below["data"]["categories"]["edges"]:
            assert child["node"]["parent"]["id"] == edge["node"]["id"]


async def test_warehouses(both: Paths) -> None:
    page = await both.same(WAREHOUSES, {"first": 2})
    after = page["data"]["warehouses"]["pageInfo"]["endCursor"]
    await both.same(WAREHOUSES, {"first": 2, "after": after})
    await both.same(WAREHOUSES, {"last": 2})
    await both.same(WAREHOUSES, {})


async def test_catalog_argument_errors(both: Paths) -> None:
    for query, variables in (
        (CATEGORIES, {"first": 101}),
        (CATEGORIES, {"parent": "bad"}),
        (CATEGORIES, {"parent": "SXRlbTox"}),
        (CATEGORIES, {"after": "bad"}),
        (WAREHOUSES, {"first": -1}),
        (WAREHOUSES, {"before": "WzEsMl0"}),
    ):
        body = await both.same(query, variables)
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_level_items_and_their_unit_cost_by_role(both: Paths) -> None:
    # given items reached through their levels, then each role gets the resolvers' bytes:
    # one FORBIDDEN error for a viewer is planned, several fall back (their order is I/O's)
    for role in ROLES:
        before = both.count("fallback", "errors below awaited fields")
        planned, resolvers = await both.both(LEVEL_ITEMS, {"first": 5}, role)
        assert planned == resolvers
        if role in ("viewer", "clerk"):
            assert both.count("fallback", "errors below awaited fields") == before + 1
        else:
            await both.same(LEVEL_ITEMS, {"first": 5}, role)
