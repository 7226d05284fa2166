"""db/categories.py and db/warehouses.py called directly: the tree's rules, IN_USE, duplicates.

On SQLite and PostgreSQL, over rows the factories wrote.
"""

from __future__ import annotations

import pytest

from db.categories import create_category, delete_category, update_category
from db.errors import ErrorCode, ServiceError
from db.models import Category, MovementKind, Warehouse
from db.stock import AdjustRequest, adjust_stock
from db.warehouses import create_warehouse, delete_warehouse, update_warehouse
from tests.factories import Factory
from tests.ledger import level_of

MISSING = 999_999


# ---------------------------------------------------------------- categories


async def tree(sessions):
    """Given: Top > Child > Grandchild."""
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        top = await make.category("Top")
        child = await make.category("Child", parent=top)
        return top, child, await make.category("Grandchild", parent=child)


async def test_a_category_is_created_under_its_parent(sessions):
    top, _, _ = await tree(sessions)
    made = await sessions.run(create_category, " Leaf ", "d", top.id)
    assert (made.name, made.description, made.parent_id) == ("Leaf", "d", top.id)


@pytest.mark.parametrize("new_parent", ["itself", "child", "grandchild"])
async def test_a_category_cannot_move_below_itself(sessions, new_parent):
    top, child, grandchild = await tree(sessions)
    parent = {"itself": top, "child": child, "grandchild": grandchild}[new_parent]
    with pytest.raises(ServiceError) as refused:
        await sessions.run(update_category, top.id, "Top", None, parent.id)
    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID, ["parent_id"])
    async with sessions.unit_of_work() as session:
        assert (await session.get_one(Category, top.id)).parent_id is None


async def test_a_category_may_move_to_another_branch(sessions):
    _, _, grandchild = await tree(sessions)
    async with sessions.unit_of_work() as session:
        other = await Factory(session).category("Other")
    moved = await sessions.run(update_category, grandchild.id, "Grandchild", None, other.id)
    assert moved.parent_id == other.id
    root = await sessions.run(update_category, grandchild.id, "Grandchild", None, None)
    assert root.parent_id is None


@pytest.mark.parametrize("write", ["create", "update"])
async def test_an_unknown_parent_is_not_found(sessions, write):
    top, _, _ = await tree(sessions)
    call = {
        "create": lambda s: create_category(s, "New", None, MISSING),
        "update": lambda s: update_category(s, top.id, "Top", None, MISSING),
    }[write]
    with pytest.raises(ServiceError) as refused:
        await sessions.run(call)
    assert (refused.value.code, refused.value.field) == (ErrorCode.NOT_FOUND, ["parent_id"])


async def test_a_blank_category_name_is_refused(sessions):
    with pytest.raises(ServiceError) as refused:
        await sessions.run(create_category, "  ", None, None)
    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID, ["name"])


@pytest.mark.parametrize(("holding", "message"), [
    ("subcategories", "The category has subcategories"),
    ("items", "Items belong to this category"),
])
async def test_a_category_with_subcategories_or_items_is_in_use(sessions, holding, message):
    top, _, grandchild = await tree(sessions)
    async with sessions.unit_of_work() as session:
        await Factory(session).item(category=grandchild)
    category = top if holding == "subcategories" else grandchild
    with pytest.raises(ServiceError) as refused:
        await sessions.run(delete_category, category.id)
    assert (refused.value.code, refused.value.field) == (ErrorCode.IN_USE, ["id"])
    assert refused.value.message == message


async def test_an_empty_leaf_category_is_deleted(sessions):
    _, child, grandchild = await tree(sessions)
    assert await sessions.run(delete_category, grandchild.id) == grandchild.id
    async with sessions.unit_of_work() as session:
        assert await session.get(Category, grandchild.id) is None
        assert await session.get(Category, child.id) is not None


@pytest.mark.parametrize("write", ["update", "delete"])
async def test_writes_to_an_unknown_category_are_not_found(sessions, write):
    call = {
        "update": lambda s: update_category(s, MISSING, "X", None, None),
        "delete": lambda s: delete_category(s, MISSING),
    }[write]
    with pytest.raises(ServiceError) as refused:
        await sessions.run(call)
    assert (refused.value.code, refused.value.field) == (ErrorCode.NOT_FOUND, ["id"])


# ---------------------------------------------------------------- warehouses


async def test_a_warehouse_is_created_with_trimmed_fields(sessions):
    made = await sessions.run(create_warehouse, " NEW ", " New ", None)
    assert (made.code, made.name, made.address) == ("NEW", "New", None)


async def test_a_taken_code_is_a_duplicate(sessions):
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        await make.warehouse("TAKEN")
        mine = await make.warehouse("MINE")
    with pytest.raises(ServiceError) as on_create:
        await sessions.run(create_warehouse, "TAKEN", "Other", None)
    with pytest.raises(ServiceError) as on_update:
        await sessions.run(update_warehouse, mine.id, "TAKEN", "Mine", None)
    assert (on_create.value.code, on_create.value.field) == (ErrorCode.DUPLICATE, ["code"])
    assert (on_update.value.code, on_update.value.field) == (ErrorCode.DUPLICATE, ["code"])


async def test_a_warehouse_may_keep_its_own_code(sessions):
    async with sessions.unit_of_work() as session:
        mine = await Factory(session).warehouse("MINE")
    updated = await sessions.run(update_warehouse, mine.id, "MINE", "Renamed", "Kai 1")
    assert (updated.code, updated.name, updated.address) == ("MINE", "Renamed", "Kai 1")


async def test_a_warehouse_holding_stock_is_in_use(sessions):
    async with sessions.unit_of_work() as session:
        level = await Factory(session).stocked(1)
    with pytest.raises(ServiceError) as refused:
        await sessions.run(delete_warehouse, level.warehouse_id)
    assert (refused.value.code, refused.value.field) == (ErrorCode.IN_USE, ["id"])
    assert refused.value.message == "Stock remains in this warehouse"


async def test_an_emptied_warehouse_with_history_is_in_use(sessions):
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        clerk, level = await make.user(), await make.stocked(3)
    emptied = AdjustRequest(level.item_id, level.warehouse_id, -3, MovementKind.SHIPMENT)
    await sessions.run(adjust_stock, emptied, actor_id=clerk.id)
    with pytest.raises(ServiceError) as refused:
        await sessions.run(delete_warehouse, level.warehouse_id)
    assert (refused.value.code, refused.value.field) == (ErrorCode.IN_USE, ["id"])
    assert refused.value.message == "The warehouse has stock history"


async def test_a_warehouse_without_history_is_deleted_with_its_empty_levels(sessions):
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        item, warehouse = await make.item(), await make.warehouse()
        await make.stock(item, warehouse, 0)
    assert await sessions.run(delete_warehouse, warehouse.id) == warehouse.id
    async with sessions.unit_of_work() as session:
        assert await session.get(Warehouse, warehouse.id) is None
        assert await level_of(session, item.id, warehouse.id) is None


@pytest.mark.parametrize("write", ["update", "delete"])
async def test_writes_to_an_unknown_warehouse_are_not_found(sessions, write):
    call = {
        "update": lambda s: update_warehouse(s, MISSING, "X", "X", None),
        "delete": lambda s: delete_warehouse(s, MISSING),
    }[write]
    with pytest.raises(ServiceError) as refused:
        await sessions.run(call)
    assert (refused.value.code, refused.value.field) == (ErrorCode.NOT_FOUND, ["id"])
