"""Nested connections, planned in one windowed statement per level, give the resolvers' bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Database
from tests.plan_paths import ROLES, Paths, add_edge_rows, paths
from tests.queries import W5

CATEGORY_ITEMS = """query($first: Int, $n: Int, $a: String) {
  categories(first: $first) { edges { node { name
    items(first: $n, after: $a) { totalCount pageInfo { hasNextPage hasPreviousPage
      startCursor endCursor } edges { cursor node { sku name unitPrice } } }
    children { name items(first: 2) { totalCount edges { node { sku } } } } } } } }"""
ITEM_MOVEMENTS = """query($n: Int, $a: String) { items(first: 5) { edges { node { sku
  movements(first: $n, after: $a) { totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { kind delta warehouse { code } } } } } } } }"""
WAREHOUSE_LEVELS = """query($n: Int, $a: String, $low: Boolean) { warehouses { edges { node { code
  stockLevels(first: $n, after: $a, lowStockOnly: $low) { totalCount
    pageInfo { hasNextPage endCursor } edges { cursor node { onHand available
      item { sku } } } } } } } }"""
TWO_PAGES = """{ items(first: 3) { edges { node {
  a: category { items(first: 1) { edges { node { sku } } } }
  b: category { items(first: 2) { totalCount edges { node { name } } } } } } } }"""


@pytest.fixture
async def both(seeded_db: Database) -> AsyncIterator[Paths]:
    await add_edge_rows(seeded_db.url)
    async with paths(seeded_db.url) as p:
        yield p


async def test_w5_is_planned_with_constant_statements(both: Paths) -> None:
    # given W5, when it runs, then both paths agree
    await both.same(W5)
    # and the planner reads the categories, their item pages, counts, levels: four statements
    engine = both.app.state.stockroom.engine
    from sqlalchemy import event

    statements: list[str] = []

    def record(_c: object, _cur: object, statement: str, *_a: object) -> None:
        skipped = ("FROM users", "FROM reservations", "BEGIN")
        if not any(word in statement for word in skipped):
            statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        await both.same(W5)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert len(statements) == 4, [s[:80] for s in statements]
    assert "row_number() OVER (PARTITION BY" in statements[1]


async def test_category_items_paging(both: Paths) -> None:
    for n in (0, 1, 3, None):
        page = await both.same(CATEGORY_ITEMS, {"first": 5, "n": n})
    first = page["data"]["categories"]["edges"][0]["node"]["items"]
    after = first["pageInfo"]["endCursor"]
    await both.same(CATEGORY_ITEMS, {"first": 5, "n": 4, "a": after})
    await both.same(TWO_PAGES)


async def test_item_movements_and_warehouse_levels(both: Paths) -> None:
    page = await both.same(ITEM_MOVEMENTS, {"n": 2})
    after = page["data"]["items"]["edges"][0]["node"]["movements"]["pageInfo"]["endCursor"]
    await both.same(ITEM_MOVEMENTS, {"n": 2, "a": after})
    for low in (None, True, False):
        page = await both.same(WAREHOUSE_LEVELS, {"n": 5, "low": low})
    edge = page["data"]["warehouses"]["edges"][0]["node"]["stockLevels"]["pageInfo"]
    await both.same(WAREHOUSE_LEVELS, {"n": 5, "a": edge["endCursor"]})


async def test_nested_argument_errors_fall_back(both: Paths) -> None:
    # given page arguments every parent would refuse, then the resolvers answer, counted
    for variables in ({"first": 2, "n": 500}, {"first": 2, "a": "bad"}):
        before = both.count("fallback", "nested page arguments")
        planned, resolvers = await both.both(CATEGORY_ITEMS, variables, "viewer")
        assert planned == resolvers
        assert both.count("fallback", "nested page arguments") == before + 1


async def test_w5_for_every_role(both: Paths) -> None:
    for role in ROLES:
        await both.same(W5, role=role)
