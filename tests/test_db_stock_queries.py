"""db/stock/queries.py read directly: inventory summary, warehouse levels, movements, reservations.

On SQLite and PostgreSQL, over rows the factories wrote.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from db.models import MovementKind, ReservationStatus, utcnow
from db.pagination import PageArgs
from db.stock import AdjustRequest, adjust_stock, release_reservation
from db.stock.queries import (
    InventorySummaryRow,
    MovementFilterSpec,
    count_movements,
    count_reservations,
    count_warehouse_levels,
    inventory_summary,
    list_movements,
    list_reservations,
    list_warehouse_levels,
)
from tests.factories import Factory

FIRST_100 = PageArgs(first=100)


# ---------------------------------------------------------------- inventory summary


async def summary_rows(sessions):
    """Given: two warehouses; three live items (one without stock) and an archived one."""
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        a, b = await make.warehouse("A"), await make.warehouse("B")
        costed = await make.item(unit_cost=Decimal("6.00"), reorder_point=5)
        level = await make.stock(costed, a, 10)
        await make.stock(costed, b, 3)
        await make.reservation(level, 8)  # available: 2 at A, 5 in all
        uncosted = await make.item(unit_cost=None, reorder_point=0)
        await make.stock(uncosted, a, 4)
        await make.item(unit_cost=Decimal("2.50"), reorder_point=10)  # no stock anywhere
        await make.stock(await make.item(unit_cost=Decimal("1.00"), archived=True), a, 100)
        return a, b


async def test_summary_counts_live_items_and_values_on_hand_at_cost(sessions):
    await summary_rows(sessions)
    summary = await sessions.run(inventory_summary, None)
    # 13 x 6.00 + 4 x no cost; low: the costed item (5 <= 5) and the unstocked one (0 <= 10)
    assert summary == InventorySummaryRow(
        item_count=3, total_on_hand=17, total_value=Decimal("78.00"), low_stock_count=2
    )


@pytest.mark.parametrize(("warehouse", "expected"), [
    ("A", InventorySummaryRow(2, 14, Decimal("60.00"), 1)),
    ("B", InventorySummaryRow(1, 3, Decimal("18.00"), 1)),
])
async def test_summary_of_one_warehouse_counts_only_what_it_stocks(sessions, warehouse, expected):
    a, b = await summary_rows(sessions)
    summary = await sessions.run(inventory_summary, a.id if warehouse == "A" else b.id)
    assert summary == expected


async def test_summary_of_an_empty_inventory_is_zero(sessions):
    summary = await sessions.run(inventory_summary, None)
    assert summary == InventorySummaryRow(0, 0, Decimal("0.00"), 0)


# ---------------------------------------------------------------- a warehouse's levels


async def warehouse_rows(sessions):
    """Given: warehouse A holding three items (two of them low) and B holding one."""
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        a, b = await make.warehouse("A"), await make.warehouse("B")
        plenty = await make.stock(await make.item(reorder_point=5), a, 10)
        empty = await make.stock(await make.item(reorder_point=0), a, 0)  # 0 <= 0: low
        held = await make.stock(await make.item(reorder_point=10), a, 20)
        await make.reservation(held, 15)  # available 5: low
        await make.stock(await make.item(), b, 7)
        return a, [plenty, empty, held]


@pytest.mark.parametrize(("low_only", "expected"), [(False, [0, 1, 2]), (True, [1, 2])])
async def test_warehouse_levels_in_item_order_and_the_low_ones(sessions, low_only, expected):
    a, levels = await warehouse_rows(sessions)
    page = await sessions.run(list_warehouse_levels, a.id, low_only, FIRST_100)
    total = await sessions.run(count_warehouse_levels, a.id, low_only)
    assert [level.id for level in page.nodes] == [levels[i].id for i in expected]
    assert total == len(expected)


async def test_warehouse_levels_page_forward(sessions):
    a, levels = await warehouse_rows(sessions)
    first = await sessions.run(list_warehouse_levels, a.id, False, PageArgs(first=2))
    rest = await sessions.run(
        list_warehouse_levels, a.id, False, PageArgs(first=2, after=first.cursor(1))
    )
    assert [lv.id for lv in first.nodes + rest.nodes] == [lv.id for lv in levels]
    assert (first.has_next_page, rest.has_next_page, rest.has_previous_page) == (
        True, False, True)


# ---------------------------------------------------------------- movements


async def ledger_rows(sessions):
    """Given: three opening receipts at known times, then a shipment now."""
    now = utcnow()
    times = {"x_a": now - timedelta(hours=3), "x_b": now - timedelta(hours=2),
             "y_a": now - timedelta(hours=1)}
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        clerk, a, b = await make.user(), await make.warehouse("A"), await make.warehouse("B")
        x, y = await make.item(), await make.item()
        await make.stock(x, a, 10, at=times["x_a"])
        await make.stock(y, a, 10, at=times["y_a"])
        await make.stock(x, b, 10, at=times["x_b"])
    request = AdjustRequest(x.id, a.id, -1, MovementKind.SHIPMENT)
    await sessions.run(adjust_stock, request, actor_id=clerk.id)
    return {"x": x.id, "y": y.id, "A": a.id, "B": b.id}, times


def shape(movements):
    return [(m.item_id, m.warehouse_id, m.kind) for m in movements]


async def listed(sessions, spec):
    """The movements ``spec`` lists, and how many it counts."""
    page = await sessions.run(list_movements, spec, FIRST_100)
    return shape(page.nodes), await sessions.run(count_movements, spec)


async def test_movements_come_newest_first(sessions):
    ids, _ = await ledger_rows(sessions)
    x, y, a, b = ids["x"], ids["y"], ids["A"], ids["B"]
    receipt, shipment = MovementKind.RECEIPT, MovementKind.SHIPMENT
    rows, total = await listed(sessions, MovementFilterSpec())
    assert rows == [(x, a, shipment), (x, b, receipt), (y, a, receipt), (x, a, receipt)]
    assert total == 4


@pytest.mark.parametrize(("spec", "expected"), [
    ({"item": "x"}, ["x A SHIPMENT", "x B RECEIPT", "x A RECEIPT"]),
    ({"warehouse": "A"}, ["x A SHIPMENT", "y A RECEIPT", "x A RECEIPT"]),
    ({"item": "x", "warehouse": "B"}, ["x B RECEIPT"]),
    ({"kinds": (MovementKind.SHIPMENT,)}, ["x A SHIPMENT"]),
    ({"kinds": (MovementKind.SHIPMENT, MovementKind.RECEIPT), "item": "y"}, ["y A RECEIPT"]),
    ({"since": "x_b"}, ["x A SHIPMENT", "x B RECEIPT", "y A RECEIPT"]),  # since: inclusive
    ({"until": "x_b"}, ["x A RECEIPT"]),  # until: exclusive
    ({"since": "x_b", "until": "y_a"}, ["x B RECEIPT"]),
])
async def test_movement_filters(sessions, spec, expected):
    ids, times = await ledger_rows(sessions)
    items, warehouses = {ids["x"]: "x", ids["y"]: "y"}, {ids["A"]: "A", ids["B"]: "B"}
    filters = MovementFilterSpec(
        item_id=ids[spec["item"]] if "item" in spec else None,
        warehouse_id=ids[spec["warehouse"]] if "warehouse" in spec else None,
        kinds=spec.get("kinds"),
        since=times[spec["since"]] if "since" in spec else None,
        until=times[spec["until"]] if "until" in spec else None,
    )
    rows, total = await listed(sessions, filters)
    assert [f"{items[i]} {warehouses[w]} {k.value}" for i, w, k in rows] == expected
    assert total == len(expected)


# ---------------------------------------------------------------- reservations


@pytest.mark.parametrize(("status", "expected"), [
    (None, ["released", "held"]),  # newest first
    (ReservationStatus.ACTIVE, ["held"]),
    (ReservationStatus.RELEASED, ["released"]),
    (ReservationStatus.EXPIRED, []),
])
async def test_reservations_by_status(sessions, status, expected):
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        clerk, level = await make.user(), await make.stocked(10)
        held, released = await make.reservation(level, 2), await make.reservation(level, 3)
    await sessions.run(release_reservation, released.id, actor_id=clerk.id)
    names = {held.id: "held", released.id: "released"}
    page = await sessions.run(list_reservations, status, FIRST_100)
    assert [names[r.id] for r in page.nodes] == expected
    assert await sessions.run(count_reservations, status) == len(expected)
