"""Planned reads of items, item and node give the resolvers' bytes, on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from db.engine import ORIGIN_OPTION
from tests.conftest import Database
from tests.plan_paths import EDGE_SKUS, ROLES, Paths, add_edge_rows, paths
from tests.queries import ITEMS_PAGE, W1, W2


@pytest.fixture
async def both(seeded_db: Database) -> AsyncIterator[Paths]:
    await add_edge_rows(seeded_db.url)
    async with paths(seeded_db.url) as p:
        yield p


async def test_w1_and_w2_are_planned_and_identical(both: Paths) -> None:
    # given the benchmark's documents, when each runs down both paths, then the bytes agree
    for first in (0, 1, 10, 100):
        data = await both.same(W1, {"first": first})
        assert len(data["data"]["items"]["edges"]) == first
    for sku in (*EDGE_SKUS[:5], "SKU-00001", "SKU-00017"):
        found = await both.same("query($s: String!) { item(sku: $s) { id } }", {"s": sku})
        item_id = found["data"]["item"]["id"]
        data = await both.same(W2, {"id": item_id})
        assert data["data"]["item"]["sku"] == sku


ITEM_FIELDS = """id sku name description unitPrice reorderPoint archived version createdAt
  updatedAt totalOnHand totalAvailable lowStock __typename
  category { id name description createdAt updatedAt __typename }
  stockLevels { id onHand reserved available updatedAt
    warehouse { id code name address createdAt updatedAt } }"""


async def test_every_item_field_for_every_role(both: Paths) -> None:
    # given a page holding the edge rows, when each role reads every field (unitCost too)
    query = f"""query($f: ItemFilter) {{ items(first: 100, filter: $f) {{ totalCount
      edges {{ cursor node {{ {ITEM_FIELDS} unitCost }} }} }} }}"""
    for role in ROLES:
        data = await both.same(query, {"f": {"search": "e"}})
        # then VIEWER and CLERK get null plus one FORBIDDEN per item, like the resolvers
        if role in ("viewer", "clerk"):
            assert data["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    for role in ROLES:
        body = await both.same(query, {"f": {"search": "edge"}}, role=role)
        edges = body["data"]["items"]["edges"]
        assert {e["node"]["sku"] for e in edges} == set(EDGE_SKUS) - {"EDGE-ARCH"}
        errors = body.get("errors") or []
        assert len(errors) == (len(edges) if role in ("viewer", "clerk") else 0)


async def test_forward_and_backward_paging_with_real_cursors(both: Paths) -> None:
    # given each order and direction, when paging forward through cursors and back again
    for field in ("NAME", "SKU", "PRICE", "TOTAL_ON_HAND", "CREATED_AT"):
        for direction in ("ASC", "DESC"):
            order = {"field": field, "direction": direction}
            page = await both.same(ITEMS_PAGE, {"first": 40, "orderBy": order})
            info = page["data"]["items"]["pageInfo"]
            second = await both.same(
                ITEMS_PAGE, {"first": 40, "after": info["endCursor"], "orderBy": order}
            )
            back = second["data"]["items"]["pageInfo"]["startCursor"]
            # then going back from the second page gives the first page's tail, identically
            await both.same(ITEMS_PAGE, {"last": 7, "before": back, "orderBy": order})
            await both.same(ITEMS_PAGE, {"before": back, "orderBy": order})


async def test_every_filter(both: Paths) -> None:
    # given a category and a warehouse of a seeded item
    query = """{ item(sku: "SKU-00001") { category { id } stockLevels { warehouse { id } } } }"""
    item = (await both.same(query))["data"]["item"]
    category_id, warehouse_id = item["category"]["id"], item["stockLevels"][0]["warehouse"]["id"]
    # when each filter runs alone and combined, in two orders, then both paths agree
    filters = [
        {"search": "tied"},
        {"search": "日本"},
        {"search": "%"},
        {"search": "_"},
        {"categoryId": category_id},
        {"warehouseId": warehouse_id},
        {"lowStock": True},
        {"lowStock": False},
        {"archived": True},
        {"archived": False},
        {"availableAtLeast": 3},
        {"availableAtMost": 2},
        {"warehouseId": warehouse_id, "lowStock": True, "availableAtLeast": 1},
    ]
    for f in filters:
        for order in (None, {"field": "TOTAL_ON_HAND", "direction": "DESC"}):
            await both.same(ITEMS_PAGE, {"first": 100, "filter": f, "orderBy": order})


async def test_aliases_fragments_typename_and_directives(both: Paths) -> None:
    query = """
    query Q($on: Boolean!, $off: Boolean!, $n: Int) {
      __typename
      a: items(first: $n) { edges { node { ...Fields s: sku sku
        category @include(if: $on) { n: name } } } }
      b: items(first: 2, orderBy: {field: SKU, direction: DESC}) {
        pageInfo { hasNextPage endCursor __typename } totalCount
        edges { ... on ItemEdge { cursor node { name @skip(if: $off) price: unitPrice } } } }
    }
    fragment Fields on Item { id name ... on Item { lowStock name } }
    """
    for on in (True, False):
        for off in (True, False):
            await both.same(query, {"on": on, "off": off, "n": 5})


async def test_bad_arguments_report_what_the_resolvers_report(both: Paths) -> None:
    # given arguments each resolver refuses, when they run, then the same errors come back
    cases = [
        (ITEMS_PAGE, {"first": 500}),
        (ITEMS_PAGE, {"last": -1}),
        (ITEMS_PAGE, {"first": 1, "last": 1}),
        (ITEMS_PAGE, {"after": "not-a-cursor"}),
        (ITEMS_PAGE, {"after": "WzFd"}),
        (ITEMS_PAGE, {"before": "eyJ4Ijox"}),
        (ITEMS_PAGE, {"filter": {"categoryId": "bad"}}),
        (ITEMS_PAGE, {"filter": {"warehouseId": "SXRlbTox"}}),
        ("{ item { id } }", None),
        ('{ item(id: "x", sku: "y") { id } }', None),
        ('{ item(id: "bad") { id } }', None),
        ('{ item(id: "V2FyZWhvdXNlOjE=") { id } }', None),
        ('{ item(id: "SXRlbTo5OTk5OTk=") { id } }', None),
        ('{ item(sku: "NOPE") { id } }', None),
        ('{ node(id: "bad") { id } }', None),
        ('{ node(id: "Rm9vOjE=") { id } }', None),
        ('{ node(id: "SXRlbTo5OTk5OTk=") { id } }', None),
    ]
    for query, variables in cases:
        await both.same(query, variables)


async def test_anonymous_gets_unauthenticated(both: Paths) -> None:
    for query in (W1, ITEMS_PAGE, '{ item(sku: "SKU-00001") { sku } }'):
        body = await both.same(query, {"first": 3}, role=None)
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_unplanned_documents_fall_back_and_are_counted(both: Paths) -> None:
    # given documents the planner does not cover, when they run, then the resolvers answer
    for query, reason in (
        ("{ __schema { queryType { name } } }", "introspection"),
        ('{ __type(name: "Item") { name } }', "introspection"),
    ):
        before = both.count("fallback", reason)
        planned, resolvers = await both.both(query, None, "viewer")
        assert planned == resolvers
        assert both.count("fallback", reason) == before + 1


LEVELS_IN = """query($w: ID) { items(first: 20) { edges { node { sku totalOnHand
  stockLevels(warehouseId: $w) { onHand warehouse { code } }
  image { id url contentType size width height sha256 } } } } }"""


async def test_levels_of_one_warehouse_and_images(both: Paths) -> None:
    # given each warehouse's ID, then the levels narrowed to it agree on both paths
    warehouses = await both.same("{ warehouses { edges { node { id } } } }")
    for edge in warehouses["data"]["warehouses"]["edges"]:
        await both.same(LEVELS_IN, {"w": edge["node"]["id"]})
    await both.same(LEVELS_IN, {"w": None})
    # and an ID that is not a warehouse's is left to the resolvers, counted
    for bad in ("bad", "SXRlbTox"):
        before = both.count("fallback", "bad warehouseId")
        planned, resolvers = await both.both(LEVELS_IN, {"w": bad}, "viewer")
        assert planned == resolvers
        assert both.count("fallback", "bad warehouseId") == before + 1


async def test_w1_statement_shape_is_constant(both: Paths) -> None:
    # given W1 at two page sizes, when planned, then the same three statements run: the
    # page, the categories, the levels joined with their warehouses (plus the viewer's row)
    from sqlalchemy import event

    engine = both.app.state.stockroom.engine
    shapes: dict[int, list[str]] = {}
    statements: list[str] = []

    def record(conn: Any, _cur: object, statement: str, *_a: object) -> None:
        # the worker's own reads (the event feed, the sweeper, the viewer cache) carry an
        # origin: they are nobody's request
        if conn.get_execution_options().get(ORIGIN_OPTION) is not None:
            return
        skipped = ("FROM users", "FROM reservations", "BEGIN")
        if not any(word in statement for word in skipped):
            statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        for first in (10, 100):
            statements.clear()
            await both.same(W1, {"first": first})
            shapes[first] = list(statements)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert len(shapes[10]) == len(shapes[100]) == 3, shapes
    page, categories, levels = shapes[100]
    assert "FROM items" in page and "LIMIT" in page
    assert "FROM categories" in categories
    assert "FROM stock_levels LEFT OUTER JOIN warehouses" in levels
