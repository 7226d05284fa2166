"""db/items.py called directly: catalogue writes, then lists with filters, sorts and totals.

On SQLite and PostgreSQL, over rows the factories wrote.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from db.errors import ErrorCode, ServiceError
from db.events import ItemChange, ItemChanged, pending
from db.items import (
    KEEP,
    ItemDraft,
    ItemFilterSpec,
    ItemOrderSpec,
    ItemPatch,
    ItemSort,
    archive_item,
    count_items,
    create_item,
    delete_item,
    items_by_sku,
    list_items,
    set_item_image,
    update_item,
)
from db.models import Item, utcnow
from db.pagination import PageArgs
from tests.factories import Factory
from tests.ledger import level_of

FIRST_100 = PageArgs(first=100)
MISSING = 999_999


async def one_item(sessions, **fields):
    async with sessions.unit_of_work() as session:
        return await Factory(session).item(**fields)


async def stored(sessions, item_id: int) -> Item | None:
    async with sessions.unit_of_work() as session:
        return await session.get(Item, item_id)


# ---------------------------------------------------------------- create


async def test_create_stores_the_draft_at_version_one_and_records_it(sessions):
    async with sessions.unit_of_work() as session:
        category = await Factory(session).category()
    draft = ItemDraft(sku="  NEW-1 ", name=" New ", unit_price=Decimal("12.50"),
                      unit_cost=Decimal("7.25"), category_id=category.id, reorder_point=3)
    async with sessions.unit_of_work() as session:
        item = await create_item(session, draft)
        events = list(pending(session))
    assert (item.sku, item.name, item.version, item.archived) == ("NEW-1", "New", 1, False)
    assert (item.unit_price, item.unit_cost, item.category_id, item.reorder_point) == (
        Decimal("12.50"), Decimal("7.25"), category.id, 3)
    assert events == [ItemChanged(kind=ItemChange.CREATED, item_id=item.id, sku=item.sku)]
    assert sessions.published == events


@pytest.mark.parametrize(("fields", "code", "field"), [
    ({"sku": " "}, ErrorCode.INVALID, ["sku"]),
    ({"sku": "S" * 65}, ErrorCode.INVALID, ["sku"]),
    ({"name": ""}, ErrorCode.INVALID, ["name"]),
    ({"unit_price": Decimal("-1")}, ErrorCode.INVALID, ["unit_price"]),
    ({"unit_price": Decimal("1.005")}, ErrorCode.INVALID, ["unit_price"]),
    ({"unit_price": Decimal("NaN")}, ErrorCode.INVALID, ["unit_price"]),
    ({"unit_cost": Decimal("-0.01")}, ErrorCode.INVALID, ["unit_cost"]),
    ({"reorder_point": -1}, ErrorCode.INVALID, ["reorder_point"]),
    ({"description": "d" * 10_001}, ErrorCode.INVALID, ["description"]),
    ({"category_id": MISSING}, ErrorCode.NOT_FOUND, ["category_id"]),
])
async def test_create_refusals_name_the_field_and_create_nothing(sessions, fields, code, field):
    draft = ItemDraft(**{"sku": "NEW-1", "name": "New", "unit_price": Decimal("1"), **fields})
    with pytest.raises(ServiceError) as refused:
        await sessions.run(create_item, draft)
    assert (refused.value.code, refused.value.field) == (code, field)
    assert await sessions.run(count_items, ItemFilterSpec()) == 0
    assert sessions.published == []


async def test_create_with_a_taken_sku_is_a_duplicate(sessions):
    await one_item(sessions, sku="TAKEN")
    with pytest.raises(ServiceError) as refused:
        await sessions.run(create_item, ItemDraft("TAKEN", "Other", Decimal("1")))
    assert (refused.value.code, refused.value.field) == (ErrorCode.DUPLICATE, ["sku"])


# ---------------------------------------------------------------- update, archive, delete


async def test_a_patch_changes_only_its_fields_and_bumps_the_version(sessions):
    item = await one_item(sessions, name="Old", unit_price=Decimal("5.00"), reorder_point=4)
    patch = ItemPatch(name="Renamed", unit_price=Decimal("6.00"))
    async with sessions.unit_of_work() as session:
        updated = await update_item(session, item.id, patch, None)
        events = list(pending(session))
    assert (updated.name, updated.unit_price, updated.version) == ("Renamed", Decimal("6.00"), 2)
    assert (updated.sku, updated.reorder_point, updated.unit_cost) == (
        item.sku, 4, item.unit_cost)
    assert events == [ItemChanged(kind=ItemChange.UPDATED, item_id=item.id, sku=item.sku)]


def test_an_empty_patch_keeps_every_field():
    assert ItemPatch().changes() == {}
    assert ItemPatch(name="x", description=None).changes() == {"name": "x", "description": None}
    assert ItemPatch(name=KEEP).changes() == {}


async def test_none_clears_an_optional_field_and_resets_the_reorder_point(sessions):
    item = await one_item(sessions, reorder_point=4)
    async with sessions.unit_of_work() as session:
        await update_item(session, item.id, ItemPatch(description="text"), None)
    patch = ItemPatch(description=None, unit_cost=None, reorder_point=None)
    updated = await sessions.run(update_item, item.id, patch, None)
    assert (updated.description, updated.unit_cost, updated.reorder_point) == (None, None, 0)


async def test_none_for_the_unit_price_is_refused(sessions):
    item = await one_item(sessions)
    with pytest.raises(ServiceError) as refused:
        await sessions.run(update_item, item.id, ItemPatch(unit_price=None), None)
    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID, ["unit_price"])


async def test_an_update_at_the_expected_version_applies(sessions):
    item = await one_item(sessions)
    updated = await sessions.run(update_item, item.id, ItemPatch(name="Now"), 1)
    assert (updated.name, updated.version) == ("Now", 2)


async def test_an_update_at_a_stale_version_is_a_conflict_and_changes_nothing(sessions):
    item = await one_item(sessions, name="Kept")
    await sessions.run(update_item, item.id, ItemPatch(description="v2"), None)
    published = list(sessions.published)
    with pytest.raises(ServiceError) as refused:
        await sessions.run(update_item, item.id, ItemPatch(name="Lost"), 1)
    assert (refused.value.code, refused.value.field) == (
        ErrorCode.VERSION_CONFLICT, ["expected_version"])
    after = await stored(sessions, item.id)
    assert after is not None and (after.name, after.version) == ("Kept", 2)
    assert sessions.published == published


async def test_an_update_to_another_items_sku_is_a_duplicate(sessions):
    await one_item(sessions, sku="TAKEN")
    item = await one_item(sessions, sku="MINE")
    with pytest.raises(ServiceError) as refused:
        await sessions.run(update_item, item.id, ItemPatch(sku="TAKEN"), None)
    assert (refused.value.code, refused.value.field) == (ErrorCode.DUPLICATE, ["sku"])


async def test_an_update_may_repeat_its_own_sku(sessions):
    item = await one_item(sessions, sku="MINE")
    updated = await sessions.run(update_item, item.id, ItemPatch(sku="MINE", name="N"), None)
    assert (updated.sku, updated.name) == ("MINE", "N")


@pytest.mark.parametrize("write", ["update", "archive", "delete", "image"])
async def test_writes_to_an_unknown_item_are_not_found(sessions, write):
    calls = {
        "update": lambda s: update_item(s, MISSING, ItemPatch(name="x"), None),
        "archive": lambda s: archive_item(s, MISSING),
        "delete": lambda s: delete_item(s, MISSING),
        "image": lambda s: set_item_image(s, MISSING, None),
    }
    with pytest.raises(ServiceError) as refused:
        await sessions.run(calls[write])
    assert (refused.value.code, refused.value.field) == (ErrorCode.NOT_FOUND, ["id"])


async def test_an_unknown_upload_cannot_become_an_image(sessions):
    item = await one_item(sessions)
    with pytest.raises(ServiceError) as refused:
        await sessions.run(set_item_image, item.id, MISSING)
    assert (refused.value.code, refused.value.field) == (ErrorCode.NOT_FOUND, ["upload_id"])


async def test_archive_hides_the_item_and_records_it(sessions):
    item = await one_item(sessions)
    async with sessions.unit_of_work() as session:
        archived = await archive_item(session, item.id)
        events = list(pending(session))
    assert (archived.archived, archived.version) == (True, 2)
    assert events == [ItemChanged(kind=ItemChange.ARCHIVED, item_id=item.id, sku=item.sku)]


async def test_delete_removes_an_item_that_never_moved_with_its_empty_levels(sessions):
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        item, warehouse = await make.item(), await make.warehouse()
        await make.stock(item, warehouse, 0)  # a level, but no history
    async with sessions.unit_of_work() as session:
        deleted = await delete_item(session, item.id)
        events = list(pending(session))
    assert deleted == item.id
    assert events == [ItemChanged(kind=ItemChange.DELETED, item_id=item.id, sku=item.sku)]
    assert await stored(sessions, item.id) is None
    assert await sessions.run(level_of, item.id, warehouse.id) is None


async def test_an_item_with_stock_history_cannot_be_deleted(sessions):
    async with sessions.unit_of_work() as session:
        level = await Factory(session).stocked(5)
    with pytest.raises(ServiceError) as refused:
        await sessions.run(delete_item, level.item_id)
    assert (refused.value.code, refused.value.field) == (ErrorCode.IN_USE, ["id"])
    assert await stored(sessions, level.item_id) is not None


# ---------------------------------------------------------------- lists


async def skus(sessions, spec: ItemFilterSpec, order: ItemOrderSpec | None = None) -> list[str]:
    page = await sessions.run(list_items, spec, order or ItemOrderSpec(ItemSort.SKU), FIRST_100)
    return [item.sku for item in page.nodes]


async def test_archived_items_are_hidden_unless_asked_for(sessions):
    await one_item(sessions, sku="LIVE")
    await one_item(sessions, sku="GONE", archived=True)
    assert await skus(sessions, ItemFilterSpec()) == ["LIVE"]
    assert await skus(sessions, ItemFilterSpec(archived=True)) == ["GONE"]
    assert await sessions.run(count_items, ItemFilterSpec()) == 1
    assert await sessions.run(count_items, ItemFilterSpec(archived=True)) == 1


@pytest.mark.parametrize(("search", "expected"), [
    ("bolt", ["A-1", "B-2"]),  # names, case-insensitively
    ("b-", ["B-2"]),  # SKUs too
    ("100%", ["C-3"]),  # % is a character, not a wildcard
    ("a_b", ["D-4"]),  # and so is _
])
async def test_search_matches_names_and_skus_literally(sessions, search, expected):
    for sku, name in (("A-1", "Steel Bolt"), ("B-2", "BOLT mini"), ("C-3", "Cable 100%"),
                      ("D-4", "Pipe a_b"), ("E-5", "Pipe axb 1000")):
        await one_item(sessions, sku=sku, name=name)
    assert await skus(sessions, ItemFilterSpec(search=search)) == expected


async def test_a_category_filter_includes_its_subcategories_only(sessions):
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        top = await make.category("Top")
        child = await make.category("Child", parent=top)
        grandchild = await make.category("Grandchild", parent=child)
        sibling = await make.category("Sibling")
        for sku, category in (("TOP", top), ("CHILD", child), ("GRAND", grandchild),
                              ("SIBLING", sibling), ("NONE", None)):
            await make.item(sku, category=category)
    assert await skus(sessions, ItemFilterSpec(category_id=child.id)) == ["CHILD", "GRAND"]
    assert await skus(sessions, ItemFilterSpec(category_id=top.id)) == ["CHILD", "GRAND", "TOP"]


async def stock_rows(sessions):
    """Given: items with reorder point 5 stocked in warehouses A and B as their SKUs say."""
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        a, b = await make.warehouse("A"), await make.warehouse("B")
        for sku, at_a, at_b in (("A3-B0", 3, None), ("A4-B10", 4, 10), ("A9", 9, None),
                                ("B20", None, 20), ("NOWHERE", None, None)):
            item = await make.item(sku, reorder_point=5)
            for warehouse, units in ((a, at_a), (b, at_b)):
                if units is not None:
                    await make.stock(item, warehouse, units)
        return a, b


async def test_a_warehouse_filter_lists_the_items_it_stocks(sessions):
    a, b = await stock_rows(sessions)
    assert await skus(sessions, ItemFilterSpec(warehouse_id=a.id)) == ["A3-B0", "A4-B10", "A9"]
    assert await skus(sessions, ItemFilterSpec(warehouse_id=b.id)) == ["A4-B10", "B20"]


@pytest.mark.parametrize(("low", "warehouse", "expected"), [
    (True, None, ["A3-B0", "NOWHERE"]),  # 3 and 0 available in all; A4-B10 has 14
    (False, None, ["A4-B10", "A9", "B20"]),
    (True, "A", ["A3-B0", "A4-B10"]),  # at A alone, A4-B10 has only 4
    (False, "A", ["A9"]),
])
async def test_the_low_stock_filter_compares_available_with_the_reorder_point(
    sessions, low, warehouse, expected
):
    a, _ = await stock_rows(sessions)
    spec = ItemFilterSpec(low_stock=low, warehouse_id=a.id if warehouse else None)
    assert await skus(sessions, spec) == expected


@pytest.mark.parametrize(("at_least", "at_most", "expected"), [
    (9, None, ["A4-B10", "A9", "B20"]),
    (None, 8, ["A3-B0", "NOWHERE"]),
    (4, 9, ["A9"]),
])
async def test_available_bounds_filter_on_the_totals(sessions, at_least, at_most, expected):
    await stock_rows(sessions)
    spec = ItemFilterSpec(available_at_least=at_least, available_at_most=at_most)
    assert await skus(sessions, spec) == expected
    assert await sessions.run(count_items, spec) == len(expected)


async def test_available_totals_leave_reserved_units_out(sessions):
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        level = await make.stock(await make.item("HELD"), await make.warehouse(), 10)
        await make.reservation(level, 7)
    assert await skus(sessions, ItemFilterSpec(available_at_most=3)) == ["HELD"]
    assert await skus(sessions, ItemFilterSpec(available_at_least=4)) == []


async def sortable(sessions):
    """Given: three items whose name, SKU, price, stock and age each sort differently."""
    now = utcnow()
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        warehouse = await make.warehouse()
        for sku, name, price, units, age in (("S-2", "Bravo", "3.00", 5, 1),
                                             ("S-3", "Alpha", "1.00", 9, 3),
                                             ("S-1", "Charlie", "2.00", 0, 2)):
            item = await make.item(sku, name=name, unit_price=Decimal(price),
                                   created_at=now - timedelta(days=age))
            await make.stock(item, warehouse, units)


@pytest.mark.parametrize(("field", "ascending"), [
    (ItemSort.NAME, ["S-3", "S-2", "S-1"]),
    (ItemSort.SKU, ["S-1", "S-2", "S-3"]),
    (ItemSort.PRICE, ["S-3", "S-1", "S-2"]),
    (ItemSort.TOTAL_ON_HAND, ["S-1", "S-2", "S-3"]),
    (ItemSort.CREATED_AT, ["S-3", "S-1", "S-2"]),
])
@pytest.mark.parametrize("descending", [False, True])
async def test_lists_sort_by_each_field_both_ways(sessions, field, ascending, descending):
    await sortable(sessions)
    listed = await skus(sessions, ItemFilterSpec(), ItemOrderSpec(field, descending))
    assert listed == (ascending[::-1] if descending else ascending)


async def test_the_total_on_hand_sort_counts_only_the_filtered_warehouse(sessions):
    a, _ = await stock_rows(sessions)
    order = ItemOrderSpec(ItemSort.TOTAL_ON_HAND)
    assert await skus(sessions, ItemFilterSpec(warehouse_id=a.id), order) == [
        "A3-B0", "A4-B10", "A9"]
    assert await skus(sessions, ItemFilterSpec(), order) == [
        "NOWHERE", "A3-B0", "A9", "A4-B10", "B20"]


async def test_items_by_sku_keep_the_order_asked_for(sessions):
    for sku in ("X-1", "X-2"):
        await one_item(sessions, sku=sku)
    found = await sessions.run(items_by_sku, ["X-2", "NONE", "X-1"])
    assert [item.sku if item else None for item in found] == ["X-2", None, "X-1"]
