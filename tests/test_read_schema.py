"""The read side of the contract against the seeded data, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from db.engine import create_engine
from db.migrate import check, upgrade
from db.models import Category, Item, StockLevel, StockMovement, Warehouse
from tests.conftest import SEED_ITEMS
from tests.queries import ITEMS_PAGE, ME, W1


async def scalar(url: str, stmt):
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(stmt)).scalar()
    finally:
        await engine.dispose()


def test_migrations_upgrade_blank_database_without_drift(backend, templates):
    # given a blank database
    url = templates.template(backend, f"blank_{backend}")
    # when migrated to head, then the models match it exactly (alembic check)
    upgrade(url)
    check(url)


async def test_every_query_needs_a_token(reader_client):
    body = await reader_client.execute("{ items(first: 1) { totalCount } }")
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_garbage_token_is_unauthenticated_not_500(reader_client):
    body = await reader_client.execute(ME, token="not.a.token")
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_items_total_and_fields_match_the_database(reader_client, shared_seeded_db):
    await reader_client.login_as("viewer")
    data = await reader_client.data(ITEMS_PAGE, {"first": 100})
    assert data["items"]["totalCount"] == SEED_ITEMS
    first = data["items"]["edges"][0]["node"]
    sku = first["sku"]
    on_hand = await scalar(
        shared_seeded_db.url,
        select(func.sum(StockLevel.on_hand)).join(Item, Item.id == StockLevel.item_id)
        .where(Item.sku == sku),
    )
    assert first["totalOnHand"] == on_hand
    assert first["totalAvailable"] == on_hand  # nothing reserved in the seed
    names = [e["node"]["name"] for e in data["items"]["edges"]]
    assert names == sorted(names)  # default order NAME ASC


async def test_item_by_id_sku_and_node(reader_client):
    await reader_client.login_as("viewer")
    first = (await reader_client.data(ITEMS_PAGE, {"first": 1}))["items"]["edges"][0]["node"]
    by_id = await reader_client.data(
        "query($id: ID!) { item(id: $id) { sku } node(id: $id) { id ... on Item { name } } }",
        {"id": first["id"]},
    )
    assert by_id["item"]["sku"] == first["sku"]
    assert by_id["node"] == {"id": first["id"], "name": first["name"]}
    by_sku = await reader_client.data(
        "query($s: String!) { item(sku: $s) { id } }", {"s": first["sku"]}
    )
    assert by_sku["item"]["id"] == first["id"]
    missing = await reader_client.data('{ item(sku: "NOPE") { id } }')
    assert missing["item"] is None


@pytest.mark.parametrize(
    "bad_id",
    ["%%%", "", base64.b64encode(b"Warehouse:1").decode(), base64.b64encode(b"Item:x").decode(),
     base64.b64encode(b"\xff\xfe").decode()],
)
async def test_malformed_or_foreign_ids_are_clear_errors(reader_client, bad_id):
    await reader_client.login_as("viewer")
    body = await reader_client.execute("query($id: ID!) { item(id: $id) { sku } }", {"id": bad_id})
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "ID" in error["message"]


async def test_node_of_unknown_type_is_a_clear_error(reader_client):
    await reader_client.login_as("viewer")
    body = await reader_client.execute(
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": base64.b64encode(b"Spaceship:1").decode()},
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_pagination_forward_then_backward_is_exact(reader_client):
    await reader_client.login_as("viewer")
    # given every item walked forward in pages of 40
    forward, after, pages = [], None, 0
    while True:
        page = (await reader_client.data(ITEMS_PAGE, {"first": 40, "after": after}))["items"]
        forward += [e["node"]["id"] for e in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == 7
    assert len(forward) == len(set(forward)) == SEED_ITEMS
    # when walked backward in pages of 30 from the end
    backward, before = [], None
    while True:
        page = (await reader_client.data(ITEMS_PAGE, {"last": 30, "before": before}))["items"]
        backward = [e["node"]["id"] for e in page["edges"]] + backward
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    # then both walks see the same order
    assert backward == forward


async def test_page_size_is_capped_and_cursors_checked(reader_client):
    await reader_client.login_as("viewer")
    body = await reader_client.execute(ITEMS_PAGE, {"first": 101})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await reader_client.execute(ITEMS_PAGE, {"first": 5, "after": "garbage!"})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize("field", ["NAME", "SKU", "PRICE", "TOTAL_ON_HAND", "CREATED_AT"])
@pytest.mark.parametrize("direction", ["ASC", "DESC"])
async def test_sorts_paginate_consistently(reader_client, field, direction):
    await reader_client.login_as("viewer")
    order = {"field": field, "direction": direction}
    whole = (await reader_client.data(ITEMS_PAGE, {"first": 100, "orderBy": order}))["items"]
    ids = [e["node"]["id"] for e in whole["edges"]]
    first = (await reader_client.data(ITEMS_PAGE, {"first": 37, "orderBy": order}))["items"]
    rest = await reader_client.data(
        ITEMS_PAGE, {"first": 63, "after": first["pageInfo"]["endCursor"], "orderBy": order}
    )
    assert [e["node"]["id"] for e in first["edges"] + rest["items"]["edges"]] == ids
    key = {"PRICE": lambda n: Decimal(n["unitPrice"]), "TOTAL_ON_HAND": lambda n: n["totalOnHand"],
           "NAME": lambda n: n["name"], "SKU": lambda n: n["sku"]}.get(field)
    if key:
        values = [key(e["node"]) for e in whole["edges"]]
        assert values == sorted(values, reverse=direction == "DESC")


async def test_filters_combine_with_sorts(reader_client, shared_seeded_db):
    await reader_client.login_as("viewer")
    # given the Hardware subtree and a stock band
    cats = await reader_client.data("{ categories(first: 10) { edges { node { id name } } } }")
    hardware = next(e["node"]["id"] for e in cats["categories"]["edges"]
                    if e["node"]["name"] == "Hardware")
    filter_ = {"categoryId": hardware, "availableAtLeast": 20, "availableAtMost": 120,
               "search": "1"}
    order = {"field": "PRICE", "direction": "DESC"}
    data = await reader_client.data(ITEMS_PAGE, {"first": 100, "filter": filter_, "orderBy": order})
    nodes = [e["node"] for e in data["items"]["edges"]]
    # then every node matches every condition, in price order, and the count agrees
    assert nodes, "the seed has items in this band"
    assert all(20 <= n["totalAvailable"] <= 120 and ("1" in n["name"] or "1" in n["sku"])
               for n in nodes)
    prices = [Decimal(n["unitPrice"]) for n in nodes]
    assert prices == sorted(prices, reverse=True)
    assert data["items"]["totalCount"] == len(nodes)
    low = await reader_client.data(ITEMS_PAGE, {"first": 100, "filter": {"lowStock": True}})
    assert all(n["node"]["lowStock"] for n in low["items"]["edges"])
    not_low = await reader_client.data(ITEMS_PAGE, {"first": 1, "filter": {"lowStock": False}})
    assert low["items"]["totalCount"] + not_low["items"]["totalCount"] == SEED_ITEMS


async def test_sql_statements_do_not_grow_with_page_size(reader_client):
    await reader_client.login_as("viewer")
    counts = {}
    for n in (10, 100):
        with reader_client.count_statements() as statements:
            data = await reader_client.data(W1, {"first": n})
        assert len(data["items"]["edges"]) == n
        counts[n] = len(statements)
    # items, categories, levels joined with their warehouses (the viewer's row is the
    # worker's, read once per STOCKROOM_VIEWER_CACHE_SECONDS: not the request's)
    assert counts[10] == counts[100] == 3, counts



W1_REWRITTEN = """
query W1Rewritten($first: Int!) {
  page: items(first: $first) { e: edges { ...Row } }
}
fragment Row on ItemEdge {
  n: node { sku name unitPrice ... on Item { category { name } }
    levels: stockLevels { onHand available ...Where } }
}
fragment Where on StockLevel { warehouse { code } }
"""

MOVEMENT_WAREHOUSES = """
query($first: Int!, $totals: Boolean!) {
  items(first: $first) { edges { node { sku totalOnHand @include(if: $totals)
    movements(first: 2) { edges { node { warehouse { code } } } } } } }
}
"""

LEVELS_SKIPPED = """
query($first: Int!, $levels: Boolean!) {
  items(first: $first) { edges { node { sku category { name }
    stockLevels @include(if: $levels) { onHand warehouse { code } } } } }
}
"""


def _level_reads(statements: list[str]) -> list[str]:
    return [s for s in statements if "FROM stock_levels" in s]


def _of_the_request(statements: list[str]) -> list[str]:
    # The reservation sweeper shares the engine and wakes every 0.2 s under test settings;
    # these documents never read reservations themselves.
    return [s for s in statements if "FROM reservations" not in s]


async def test_w1_through_fragments_and_aliases_takes_the_same_statements(reader_client):
    await reader_client.login_as("viewer")
    for n in (10, 100):
        with reader_client.count_statements() as statements:
            data = await reader_client.data(W1_REWRITTEN, {"first": n})
        assert len(data["page"]["e"]) == n
        assert all(lv["warehouse"]["code"] for e in data["page"]["e"] for lv in e["n"]["levels"])
        # items, categories, levels joined with their warehouses
        assert len(_of_the_request(statements)) == 3, statements
        (levels,) = _level_reads(statements)
        assert "JOIN warehouses" in levels


async def test_a_warehouse_under_movements_does_not_join_levels(reader_client):
    await reader_client.login_as("viewer")
    # given totals on the items and a warehouse under their movements, not under their levels
    with reader_client.count_statements() as statements:
        data = await reader_client.data(MOVEMENT_WAREHOUSES, {"first": 5, "totals": True})
    assert all(isinstance(e["node"]["totalOnHand"], int) for e in data["items"]["edges"])
    # then the levels are read once for the page, without their warehouses
    (levels,) = _level_reads(statements)
    assert "warehouses" not in levels
    # and with no stock fields at all, no levels are read
    with reader_client.count_statements() as statements:
        data = await reader_client.data(MOVEMENT_WAREHOUSES, {"first": 5, "totals": False})
    assert all(e["node"]["movements"]["edges"] is not None for e in data["items"]["edges"])
    assert _level_reads(statements) == []


async def test_levels_left_out_by_include_are_not_read(reader_client):
    await reader_client.login_as("viewer")
    with reader_client.count_statements() as statements:
        data = await reader_client.data(LEVELS_SKIPPED, {"first": 10, "levels": False})
    assert "stockLevels" not in data["items"]["edges"][0]["node"]
    # items and categories
    assert _level_reads(statements) == [] and len(_of_the_request(statements)) == 2, statements


async def test_categories_tree_warehouses_and_levels(reader_client, shared_seeded_db):
    await reader_client.login_as("viewer")
    data = await reader_client.data(
        """{ categories(first: 10) { totalCount edges { node { name parent { id }
               children { name parent { name } } items(first: 1) { totalCount } } } }
             warehouses(first: 10) { totalCount edges { node { code
               stockLevels(first: 5) { totalCount edges { node { item { sku } onHand } } }
               low: stockLevels(first: 5, lowStockOnly: true) { totalCount } } } } }"""
    )
    roots = [e["node"] for e in data["categories"]["edges"]]
    assert {r["name"] for r in roots} == {"Hardware", "Electrical", "Plumbing"}
    assert all(r["parent"] is None for r in roots)
    hardware = next(r for r in roots if r["name"] == "Hardware")
    assert all(c["parent"]["name"] == "Hardware" for c in hardware["children"])
    total_categories = await scalar(shared_seeded_db.url, select(func.count(Category.id)))
    assert total_categories == 11
    warehouses = await scalar(shared_seeded_db.url, select(func.count(Warehouse.id)))
    assert data["warehouses"]["totalCount"] == warehouses == 3
    for edge in data["warehouses"]["edges"]:
        assert edge["node"]["stockLevels"]["totalCount"] == SEED_ITEMS
        assert edge["node"]["low"]["totalCount"] <= SEED_ITEMS


async def test_movements_reservations_summary(reader_client, shared_seeded_db):
    await reader_client.login_as("manager")
    data = await reader_client.data(
        """{ movements(first: 5, filter: {kinds: [SHIPMENT]}) { totalCount
               edges { node { kind delta item { sku } warehouse { code } actor { email } } } }
             all: movements(first: 1) { totalCount }
             reservations(first: 5) { totalCount }
             inventorySummary { itemCount totalOnHand totalValue lowStockCount }
             one: inventorySummary(warehouseId: null) { itemCount } }"""
    )
    total = await scalar(shared_seeded_db.url, select(func.count(StockMovement.id)))
    assert data["all"]["totalCount"] == total
    assert all(e["node"]["kind"] == "SHIPMENT" and e["node"]["delta"] < 0
               for e in data["movements"]["edges"])
    assert data["reservations"]["totalCount"] == 0
    summary = data["inventorySummary"]
    assert summary["itemCount"] == SEED_ITEMS
    on_hand = await scalar(shared_seeded_db.url, select(func.sum(StockLevel.on_hand)))
    assert summary["totalOnHand"] == on_hand
    value = await scalar(
        shared_seeded_db.url,
        select(func.sum(StockLevel.on_hand * Item.unit_cost)).join(
            Item, Item.id == StockLevel.item_id
        ),
    )
    assert Decimal(summary["totalValue"]) == Decimal(str(value)).quantize(Decimal("0.01"))


async def test_me_and_users(reader_client):
    await reader_client.login_as("viewer")
    me = await reader_client.data("{ me { email role isActive } }")
    assert me["me"] == {"email": "viewer@example.com", "role": "VIEWER", "isActive": True}
    body = await reader_client.execute("{ users(first: 10) { totalCount } }")
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await reader_client.login_as("admin")
    users = await reader_client.data("{ users(first: 10) { totalCount edges { node { email } } } }")
    assert users["users"]["totalCount"] == 4


async def test_concurrent_loader_batches_share_one_session_safely(reader_client):
    """Several loaders dispatch at once here; the Reader must serialise their batches."""
    await reader_client.login_as("manager")
    data = await reader_client.data(
        """{ a: items(first: 50) { edges { node { category { parent { name } }
               stockLevels { warehouse { code } item { sku } } movements(first: 2) {
                 edges { node { actor { email } warehouse { code } } } } } } }
             b: warehouses(first: 3) { edges { node { stockLevels(first: 20) {
               edges { node { item { category { name } } warehouse { name } } } } } } }
             c: movements(first: 30) { edges { node { item { sku } actor { role } } } } }"""
    )
    assert len(data["a"]["edges"]) == 50
    assert all(len(e["node"]["stockLevels"]) == 3 for e in data["a"]["edges"])
    assert len(data["c"]["edges"]) == 30


async def test_a_failing_root_field_does_not_break_sibling_loader_batches(reader_client):
    """data becomes null at once; sibling batches still running must not hit a closed session."""
    await reader_client.login_as("viewer")
    for _ in range(5):
        body = await reader_client.execute(
            "{ " + " ".join(
                f"g{i}: items(first: 50, after: null) {{ edges {{ node {{ category {{ name }} "
                "stockLevels { onHand warehouse { code } } movements(first: 2) "
                "{ totalCount } } } }"
                for i in range(4)
            ) + " bad: items(first: 101) { totalCount } }"
        )
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # and the app still answers normally afterwards
    ok = await reader_client.data("{ items(first: 3) { totalCount } }")
    assert ok["items"]["totalCount"] == 250
