"""Quantity states (damaged, quality control, safety stock) and the available rule, on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine, write_sessionmaker
from db.errors import ErrorCode, ServiceError
from db.events import Event, LowStock, StockChanged
from db.migrate import check, upgrade
from db.models import Item, MovementKind, StockLevel, StockMovement, StockState, User
from db.session import unit_of_work
from db.stock import MoveStateRequest, SafetyStockRequest, move_stock_state, set_safety_stock
from tests.inventory import (
    ADJUST,
    COUNT,
    MOVE,
    MOVES,
    RESERVE,
    SAFETY,
    errors,
    ids,
    level,
    move_input,
    set_count,
)

INITIAL = "815dd7d4d28b"


def test_migration_keeps_todays_numbers(backend, templates):
    # given a database at the previous revision with a level holding reserved units
    url = templates.template(backend, f"before_depth_{backend}")
    upgrade(url, INITIAL)
    statements = [
        "insert into warehouses (id, code, name, created_at, updated_at) "
        "values (1, 'W', 'W', current_timestamp, current_timestamp)",
        "insert into items (id, sku, name, unit_price, reorder_point, archived, version, "
        "created_at, updated_at) values (1, 'S', 'S', 1, 0, false, 1, current_timestamp, "
        "current_timestamp)",
        "insert into stock_levels (item_id, warehouse_id, on_hand, reserved, updated_at) "
        "values (1, 1, 9, 4, current_timestamp)",
    ]
    if backend == "sqlite":
        raw = sqlite3.connect(url.removeprefix("sqlite+aiosqlite:///"))
        for statement in statements:
            raw.execute(statement.replace("false", "0"))
        raw.commit()
        raw.close()
    else:
        asyncio.run(_psql(url.replace("postgresql+asyncpg", "postgresql"), statements))
    # when migrated to head
    upgrade(url)
    check(url)
    # then every new quantity is 0 and available is what it was
    row, available = asyncio.run(_level_and_available(url))
    assert (row.on_hand, row.reserved, row.damaged, row.quality_control, row.safety_stock) == (
        9, 4, 0, 0, 0)
    assert available == 5


async def _psql(dsn: str, statements: list[str]) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def _level_and_available(url: str) -> tuple[Any, int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(select(StockLevel))).one()
            available = await conn.scalar(select(StockLevel.available))
    finally:
        await engine.dispose()
    return row, int(available or 0)


async def test_seeded_levels_start_with_no_states(reader_client):
    await reader_client.login_as("viewer")
    (item, *_), (wh, *_) = await ids(reader_client)
    found = await level(reader_client, item, wh)
    assert found["damaged"] == found["qualityControl"] == found["safetyStock"] == 0
    assert found["available"] == found["onHand"] - found["reserved"]
    assert found["incoming"] == found["inTransit"] == 0


async def test_moves_between_states_keep_on_hand(client):
    await client.login_as("clerk")
    (item, *_), (wh, *_) = await ids(client)
    await set_count(client, item, wh, 10)
    # when 3 available units are found damaged
    data = (await client.data(MOVE, move_input(item, wh, "AVAILABLE", "DAMAGED", 3,
                                               reason="Dropped")))["moveStockState"]
    # then they stay on hand, stop being available, and the ledger says so
    assert data["errors"] == []
    assert data["stockLevel"] == {
        "onHand": 10, "reserved": 0, "damaged": 3, "qualityControl": 0, "safetyStock": 0,
        "available": 7, "incoming": 0, "inTransit": 0}
    movement = data["movement"]
    assert (movement["kind"], movement["delta"], movement["fromState"], movement["toState"]) == (
        "STATE_CHANGE", 3, "AVAILABLE", "DAMAGED")
    assert (movement["onHandAfter"], movement["damagedAfter"], movement["reason"]) == (
        10, 3, "Dropped")
    # damaged units go to inspection, and one passes back to available
    moved = await client.data(MOVE, move_input(item, wh, "DAMAGED", "QUALITY_CONTROL", 2))
    assert moved["moveStockState"]["stockLevel"]["qualityControl"] == 2
    back = await client.data(MOVE, move_input(item, wh, "QUALITY_CONTROL", "AVAILABLE", 1))
    assert back["moveStockState"]["stockLevel"] == {
        "onHand": 10, "reserved": 0, "damaged": 1, "qualityControl": 1, "safetyStock": 0,
        "available": 8, "incoming": 0, "inTransit": 0}


async def test_state_move_refusals_change_nothing(client):
    await client.login_as("clerk")
    (item, *_), (wh, *_) = await ids(client)
    await set_count(client, item, wh, 4)
    before = await level(client, item, wh)
    cases = [
        (move_input(item, wh, "AVAILABLE", "DAMAGED", 5), "INSUFFICIENT_STOCK", "quantity"),
        (move_input(item, wh, "DAMAGED", "AVAILABLE", 1), "INSUFFICIENT_STOCK", "quantity"),
        (move_input(item, wh, "DAMAGED", "DAMAGED", 1), "INVALID", "to"),
        (move_input(item, wh, "AVAILABLE", "DAMAGED", 0), "INVALID", "quantity"),
        (move_input(wh, wh, "AVAILABLE", "DAMAGED", 1), "NOT_FOUND", "itemId"),
    ]
    for variables, code, field in cases:
        data = (await client.data(MOVE, variables))["moveStockState"]
        assert data["stockLevel"] is None
        assert errors(data) == [(code, ["input", field])], variables
    assert await level(client, item, wh) == before


async def test_available_counts_every_state_everywhere(client):
    await client.login_as("manager")
    (item, *_), (wh, *_) = await ids(client)
    await set_count(client, item, wh, 20)
    await client.data(RESERVE, {"input": {"itemId": item, "warehouseId": wh, "quantity": 4}})
    await client.data(MOVE, move_input(item, wh, "AVAILABLE", "DAMAGED", 3))
    await client.data(MOVE, move_input(item, wh, "AVAILABLE", "QUALITY_CONTROL", 2))
    safety = (await client.data(SAFETY, {"item": item, "wh": wh, "q": 5}))["setSafetyStock"]
    # 20 - 4 reserved - 3 damaged - 2 quality control - 5 safety stock
    assert safety["stockLevel"]["available"] == 6
    # shipping and reserving stop at available
    ship = {"input": {"itemId": item, "warehouseId": wh, "delta": -7, "kind": "SHIPMENT"}}
    assert errors((await client.data(ADJUST, ship))["adjustStock"]) == [
        ("INSUFFICIENT_STOCK", ["input", "delta"])]
    reserve = {"input": {"itemId": item, "warehouseId": wh, "quantity": 7}}
    assert errors((await client.data(RESERVE, reserve))["reserveStock"]) == [
        ("INSUFFICIENT_STOCK", ["input", "quantity"])]
    # a count may not lose the units held in other states
    low = {"input": {"itemId": item, "warehouseId": wh, "counted": 8}}
    assert errors((await client.data(COUNT, low))["setStockCount"]) == [
        ("INSUFFICIENT_STOCK", ["input", "counted"])]
    # safety stock above what is free leaves available at 0, never below, and the level low
    await client.data(UPDATE_ITEM, {"id": item, "input": {"reorderPoint": 1}})
    low_before = await _low_levels(client, wh)
    high = (await client.data(SAFETY, {"item": item, "wh": wh, "q": 50}))["setSafetyStock"]
    assert high["stockLevel"]["available"] == 0
    assert await _low_levels(client, wh) == low_before + 1
    # a count is a fact: it still goes through when it eats into safety stock
    counted = {"input": {"itemId": item, "warehouseId": wh, "counted": 10}}
    assert (await client.data(COUNT, counted))["setStockCount"]["errors"] == []
    assert await level(client, item, wh) == {
        "onHand": 10, "reserved": 4, "damaged": 3, "qualityControl": 2, "safetyStock": 50,
        "available": 0, "incoming": 0, "inTransit": 0}


UPDATE_ITEM = """mutation($id: ID!, $input: UpdateItemInput!) { updateItem(id: $id, input: $input)
  { errors { code } } }"""
LOW_LEVELS = """query($id: ID!) { node(id: $id) { ... on Warehouse {
  stockLevels(lowStockOnly: true) { totalCount } } } }"""


async def _low_levels(client, warehouse: str) -> int:
    data = await client.data(LOW_LEVELS, {"id": warehouse})
    return int(data["node"]["stockLevels"]["totalCount"])


async def test_safety_stock_is_a_manager_setting_with_a_ledger_row(client):
    await client.login_as("clerk")
    (item, *_), (wh, *_) = await ids(client)
    body = await client.execute(SAFETY, {"item": item, "wh": wh, "q": 3})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await client.login_as("manager")
    await set_count(client, item, wh, 10)
    data = (await client.data(SAFETY, {"item": item, "wh": wh, "q": 3}))["setSafetyStock"]
    assert data["movement"]["kind"] == "SAFETY_STOCK"
    assert (data["movement"]["delta"], data["movement"]["safetyStockAfter"]) == (3, 3)
    assert data["stockLevel"]["available"] == 7
    lower = (await client.data(SAFETY, {"item": item, "wh": wh, "q": 1}))["setSafetyStock"]
    assert (lower["movement"]["delta"], lower["stockLevel"]["available"]) == (-2, 9)
    # the same value again changes nothing and writes nothing
    total = (await client.data(MOVES, {"id": item}))["item"]["movements"]["totalCount"]
    same = (await client.data(SAFETY, {"item": item, "wh": wh, "q": 1}))["setSafetyStock"]
    assert same["movement"] is None and same["stockLevel"]["safetyStock"] == 1
    assert (await client.data(MOVES, {"id": item}))["item"]["movements"]["totalCount"] == total
    bad = (await client.data(SAFETY, {"item": item, "wh": wh, "q": -1}))["setSafetyStock"]
    assert errors(bad) == [("INVALID", ["quantity"])]


async def _capture(url: str, work) -> list[Event]:
    published: list[Event] = []

    async def publish(events: list[Event]) -> None:
        published.extend(events)

    engine = create_engine(url)
    try:
        async with unit_of_work(write_sessionmaker(engine), publish) as session:
            await work(session)
    finally:
        await engine.dispose()
    return published


async def test_state_moves_and_safety_stock_announce_their_changes(seeded_db):
    # given a level with 10 available units and a reorder point of 5
    engine = create_engine(seeded_db.url)
    try:
        async with unit_of_work(write_sessionmaker(engine)) as session:
            actor = await session.scalar(select(User.id).order_by(User.id).limit(1))
            item = await session.scalar(select(Item).order_by(Item.id).limit(1))
            assert item is not None and actor is not None
            item.reorder_point = 5
            row = await session.scalar(
                select(StockLevel).where(StockLevel.item_id == item.id).limit(1)
            )
            assert row is not None
            row.on_hand, row.reserved = 10, 0
            item_id, warehouse_id = item.id, row.warehouse_id
        movements_before = await _count_movements(engine)
    finally:
        await engine.dispose()
    move = MoveStateRequest(item_id, warehouse_id, StockState.AVAILABLE, StockState.DAMAGED, 4)
    # when 4 units are marked damaged: no crossing yet (6 > 5)
    events = await _capture(seeded_db.url, lambda s: move_stock_state(s, move, actor_id=actor))
    # then one stock change, of the new kind, with the new available
    assert [type(e) for e in events] == [StockChanged]
    changed = events[0]
    assert isinstance(changed, StockChanged)
    assert (changed.kind, changed.delta, changed.available) == (MovementKind.STATE_CHANGE, 4, 6)
    # when safety stock takes available to 3: the low-stock alert fires on the crossing
    safety = SafetyStockRequest(item_id, warehouse_id, 3)
    events = await _capture(seeded_db.url, lambda s: set_safety_stock(s, safety, actor_id=actor))
    assert [type(e) for e in events] == [StockChanged, LowStock]
    assert isinstance(events[1], LowStock) and events[1].available == 3
    # and a refused move announces nothing and writes nothing
    too_many = MoveStateRequest(item_id, warehouse_id, StockState.AVAILABLE, StockState.DAMAGED, 9)
    with pytest.raises(ServiceError) as refused:
        await _capture(seeded_db.url, lambda s: move_stock_state(s, too_many, actor_id=actor))
    assert refused.value.code == ErrorCode.INSUFFICIENT_STOCK
    engine = create_engine(seeded_db.url)
    try:
        assert await _count_movements(engine) == movements_before + 2
    finally:
        await engine.dispose()


async def _count_movements(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(StockMovement)) or 0)
