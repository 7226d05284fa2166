"""db/stock changes called directly: adjust, count, transfer; refusals, ledger, low stock.

Each test writes its rows with the factories in one unit of work, calls one service in the
next (as a request would) and reads the outcome back in a third; SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest

from db.errors import ErrorCode, ServiceError
from db.events import LowStock, StockChanged, pending
from db.models import MovementKind, StockLevel
from db.stock import (
    MAX_QUANTITY,
    AdjustRequest,
    CountRequest,
    ReserveRequest,
    TransferRequest,
    adjust_stock,
    fulfill_reservation,
    release_reservation,
    reserve_stock,
    set_stock_count,
    transfer_stock,
)
from tests.factories import Factory, Sessions
from tests.ledger import ledger, level_of, of_type, recorded, replayed, stock_state

RECEIPT, SHIPMENT, ADJUSTMENT = MovementKind.RECEIPT, MovementKind.SHIPMENT, MovementKind.ADJUSTMENT
MISSING = 999_999


def changed(level: StockLevel, movement_id: int, kind: MovementKind, delta: int) -> StockChanged:
    """The event a change to ``level`` (as it is now) recorded with its ledger row."""
    return StockChanged(
        item_id=level.item_id,
        warehouse_id=level.warehouse_id,
        stock_level_id=level.id,
        movement_id=movement_id,
        kind=kind,
        delta=delta,
        on_hand=level.on_hand,
        reserved=level.reserved,
        available=level.on_hand - level.reserved,
    )


async def stocked(sessions: Sessions, on_hand: int, *, reorder_point: int = 0):
    """Given: a clerk, and an item stocked at ``on_hand`` in one warehouse."""
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        return await make.user(), await make.stocked(on_hand, reorder_point=reorder_point)


# ---------------------------------------------------------------- adjust


async def test_receipt_adds_to_on_hand_with_its_ledger_row_and_event(sessions):
    clerk, level = await stocked(sessions, 10)
    request = AdjustRequest(
        level.item_id, level.warehouse_id, 5, RECEIPT, reason="PO", reference="PO-1"
    )
    async with sessions.unit_of_work() as session:
        result = await adjust_stock(session, request, actor_id=clerk.id)
        events = list(pending(session))
    assert (result.level.id, result.level.on_hand, result.level.reserved) == (level.id, 15, 0)
    movement = result.movement
    assert (movement.kind, movement.delta, movement.on_hand_after) == (RECEIPT, 5, 15)
    assert (movement.reason, movement.reference, movement.actor_id) == ("PO", "PO-1", clerk.id)
    assert events == [changed(result.level, movement.id, RECEIPT, 5)]
    assert sessions.published == events


@pytest.mark.parametrize(("kind", "delta", "on_hand"), [
    (SHIPMENT, -4, 6), (ADJUSTMENT, 3, 13), (ADJUSTMENT, -10, 0),
])
async def test_shipments_and_adjustments_change_on_hand_by_their_delta(
    sessions, kind, delta, on_hand
):
    clerk, level = await stocked(sessions, 10)
    async with sessions.unit_of_work() as session:
        request = AdjustRequest(level.item_id, level.warehouse_id, delta, kind)
        result = await adjust_stock(session, request, actor_id=clerk.id)
    async with sessions.unit_of_work() as session:
        after = await level_of(session, level.item_id, level.warehouse_id)
    assert (result.movement.kind, result.movement.delta) == (kind, delta)
    assert after is not None and after.on_hand == result.movement.on_hand_after == on_hand


async def test_first_receipt_at_a_warehouse_creates_the_level(sessions):
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        clerk, item, warehouse = await make.user(), await make.item(), await make.warehouse()
    async with sessions.unit_of_work() as session:
        request = AdjustRequest(item.id, warehouse.id, 7, RECEIPT)
        result = await adjust_stock(session, request, actor_id=clerk.id)
    async with sessions.unit_of_work() as session:
        created = await level_of(session, item.id, warehouse.id)
    assert created is not None and created.id == result.level.id
    assert (created.on_hand, created.reserved) == (7, 0)


@pytest.mark.parametrize(("change", "code", "field"), [
    ({"delta": 0, "kind": ADJUSTMENT}, ErrorCode.INVALID, ["delta"]),
    ({"delta": MAX_QUANTITY + 1, "kind": RECEIPT}, ErrorCode.INVALID, ["delta"]),
    ({"delta": -1, "kind": RECEIPT}, ErrorCode.INVALID, ["delta"]),
    ({"delta": 1, "kind": SHIPMENT}, ErrorCode.INVALID, ["delta"]),
    ({"delta": 1, "kind": MovementKind.COUNT}, ErrorCode.INVALID, ["kind"]),
    ({"delta": 1, "kind": MovementKind.TRANSFER_IN}, ErrorCode.INVALID, ["kind"]),
    ({"delta": 1, "kind": RECEIPT, "reason": "x" * 2001}, ErrorCode.INVALID, ["reason"]),
    ({"delta": 1, "kind": RECEIPT, "reference": "x" * 2001}, ErrorCode.INVALID, ["reference"]),
    ({"delta": 1, "kind": RECEIPT, "idempotency_key": ""}, ErrorCode.INVALID,
     ["idempotency_key"]),
    ({"delta": -11, "kind": SHIPMENT}, ErrorCode.INSUFFICIENT_STOCK, ["delta"]),
    ({"delta": -11, "kind": ADJUSTMENT}, ErrorCode.INSUFFICIENT_STOCK, ["delta"]),
])
async def test_adjust_refusals_name_the_field_and_change_nothing(sessions, change, code, field):
    clerk, level = await stocked(sessions, 10)
    async with sessions.unit_of_work() as session:
        before = await stock_state(session)
    request = AdjustRequest(level.item_id, level.warehouse_id, **change)
    with pytest.raises(ServiceError) as refused:
        await sessions.run(adjust_stock, request, actor_id=clerk.id)
    assert (refused.value.code, refused.value.field) == (code, field)
    async with sessions.unit_of_work() as session:
        assert await stock_state(session) == before
    assert sessions.published == []


@pytest.mark.parametrize(("unknown", "field"), [("item", "item_id"), ("warehouse", "warehouse_id")])
async def test_adjust_of_an_unknown_row_is_not_found(sessions, unknown, field):
    clerk, level = await stocked(sessions, 10)
    item_id = MISSING if unknown == "item" else level.item_id
    warehouse_id = MISSING if unknown == "warehouse" else level.warehouse_id
    request = AdjustRequest(item_id, warehouse_id, 1, RECEIPT)
    with pytest.raises(ServiceError) as refused:
        await sessions.run(adjust_stock, request, actor_id=clerk.id)
    assert (refused.value.code, refused.value.field) == (ErrorCode.NOT_FOUND, [field])


async def test_reserved_units_cannot_be_shipped(sessions):
    clerk, level = await stocked(sessions, 10)
    async with sessions.unit_of_work() as session:
        await Factory(session).reservation(level, 6)
    request = AdjustRequest(level.item_id, level.warehouse_id, -5, SHIPMENT)
    with pytest.raises(ServiceError) as refused:
        await sessions.run(adjust_stock, request, actor_id=clerk.id)
    assert refused.value.code is ErrorCode.INSUFFICIENT_STOCK
    assert refused.value.message == "Only 4 units available to remove"


# ---------------------------------------------------------------- count


async def test_count_sets_on_hand_and_records_the_difference(sessions):
    clerk, level = await stocked(sessions, 10)
    async with sessions.unit_of_work() as session:
        request = CountRequest(level.item_id, level.warehouse_id, 7, reason="Stocktake")
        result = await set_stock_count(session, request, actor_id=clerk.id)
        events = list(pending(session))
    movement = result.movement
    assert result.level.on_hand == 7
    assert (movement.kind, movement.delta, movement.on_hand_after) == (MovementKind.COUNT, -3, 7)
    assert movement.reason == "Stocktake"
    assert events == [changed(result.level, movement.id, MovementKind.COUNT, -3)]


async def test_count_with_the_expected_on_hand_applies(sessions):
    clerk, level = await stocked(sessions, 10)
    async with sessions.unit_of_work() as session:
        request = CountRequest(level.item_id, level.warehouse_id, 12, expected_on_hand=10)
        result = await set_stock_count(session, request, actor_id=clerk.id)
    assert (result.level.on_hand, result.movement.delta) == (12, 2)


async def test_count_with_a_stale_expected_on_hand_is_a_version_conflict(sessions):
    clerk, level = await stocked(sessions, 10)
    request = CountRequest(level.item_id, level.warehouse_id, 3, expected_on_hand=9)
    with pytest.raises(ServiceError) as refused:
        await sessions.run(set_stock_count, request, actor_id=clerk.id)
    assert (refused.value.code, refused.value.field) == (
        ErrorCode.VERSION_CONFLICT, ["expected_on_hand"])
    async with sessions.unit_of_work() as session:
        after = await level_of(session, level.item_id, level.warehouse_id)
    assert after is not None and after.on_hand == 10


async def test_count_below_the_reserved_units_is_refused(sessions):
    clerk, level = await stocked(sessions, 10)
    async with sessions.unit_of_work() as session:
        await Factory(session).reservation(level, 6)
    request = CountRequest(level.item_id, level.warehouse_id, 5)
    with pytest.raises(ServiceError) as refused:
        await sessions.run(set_stock_count, request, actor_id=clerk.id)
    assert (refused.value.code, refused.value.field) == (ErrorCode.INSUFFICIENT_STOCK, ["counted"])


@pytest.mark.parametrize(("change", "field"), [
    ({"counted": -1}, ["counted"]),
    ({"counted": MAX_QUANTITY + 1}, ["counted"]),
    ({"counted": 1, "expected_on_hand": -1}, ["expected_on_hand"]),
    ({"counted": 1, "reason": "x" * 2001}, ["reason"]),
])
async def test_count_refusals_name_the_field(sessions, change, field):
    clerk, level = await stocked(sessions, 10)
    request = CountRequest(level.item_id, level.warehouse_id, **change)
    with pytest.raises(ServiceError) as refused:
        await sessions.run(set_stock_count, request, actor_id=clerk.id)
    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID, field)


async def test_counting_zero_on_a_new_level_records_a_zero_row(sessions):
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        clerk, item, warehouse = await make.user(), await make.item(), await make.warehouse()
    async with sessions.unit_of_work() as session:
        request = CountRequest(item.id, warehouse.id, 0)
        result = await set_stock_count(session, request, actor_id=clerk.id)
    assert (result.level.on_hand, result.movement.delta, result.movement.on_hand_after) == (0, 0, 0)


# ---------------------------------------------------------------- transfer


async def two_warehouses(sessions: Sessions, a: int, b: int, *, reorder_point: int = 0):
    """Given: a clerk and one item stocked at ``a`` in warehouse A and ``b`` in warehouse B."""
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        clerk, item = await make.user(), await make.item(reorder_point=reorder_point)
        first = await make.stock(item, await make.warehouse("A"), a)
        second = await make.stock(item, await make.warehouse("B"), b)
        return clerk, first, second


@pytest.mark.parametrize("direction", ["A to B", "B to A"])
async def test_transfer_moves_units_out_then_in(sessions, direction):
    clerk, a, b = await two_warehouses(sessions, 10, 4)
    source, target = (a, b) if direction == "A to B" else (b, a)
    source_code, target_code = direction.split(" to ")
    async with sessions.unit_of_work() as session:
        request = TransferRequest(
            a.item_id, source.warehouse_id, target.warehouse_id, 3, reference="T-1"
        )
        result = await transfer_stock(session, request, actor_id=clerk.id)
        events = list(pending(session))
    assert (result.source.id, result.target.id) == (source.id, target.id)
    assert (result.source.on_hand, result.target.on_hand) == (source.on_hand - 3,
                                                              target.on_hand + 3)
    out, into = result.movements
    assert (out.kind, out.delta, out.warehouse_id) == (
        MovementKind.TRANSFER_OUT, -3, source.warehouse_id)
    assert (into.kind, into.delta, into.warehouse_id) == (
        MovementKind.TRANSFER_IN, 3, target.warehouse_id)
    assert (out.reason, into.reason) == (f"Transfer to {target_code}",
                                         f"Transfer from {source_code}")
    assert out.reference == into.reference == "T-1"
    assert events == [
        changed(result.source, out.id, MovementKind.TRANSFER_OUT, -3),
        changed(result.target, into.id, MovementKind.TRANSFER_IN, 3),
    ]


async def test_transfer_to_a_warehouse_without_the_item_creates_its_level(sessions):
    clerk, level = await stocked(sessions, 10)
    async with sessions.unit_of_work() as session:
        empty = await Factory(session).warehouse()
    async with sessions.unit_of_work() as session:
        request = TransferRequest(level.item_id, level.warehouse_id, empty.id, 4)
        await transfer_stock(session, request, actor_id=clerk.id)
    async with sessions.unit_of_work() as session:
        created = await level_of(session, level.item_id, empty.id)
    assert created is not None and (created.on_hand, created.reserved) == (4, 0)


@pytest.mark.parametrize(("item", "source", "target", "quantity", "code", "field"), [
    ("item", "A", "B", 0, ErrorCode.INVALID, ["quantity"]),
    ("item", "A", "A", 1, ErrorCode.INVALID, ["to_warehouse_id"]),
    ("item", "A", "B", 11, ErrorCode.INSUFFICIENT_STOCK, ["quantity"]),
    ("item", "A", "B", 7, ErrorCode.INSUFFICIENT_STOCK, ["quantity"]),  # 4 of A's 10 are held
    ("missing", "A", "B", 1, ErrorCode.NOT_FOUND, ["item_id"]),
    ("item", "missing", "B", 1, ErrorCode.NOT_FOUND, ["from_warehouse_id"]),
    ("item", "A", "missing", 1, ErrorCode.NOT_FOUND, ["to_warehouse_id"]),
])
async def test_transfer_refusals_name_the_field_and_change_nothing(
    sessions, item, source, target, quantity, code, field
):
    clerk, a, b = await two_warehouses(sessions, 10, 0)
    async with sessions.unit_of_work() as session:
        await Factory(session).reservation(a, 4)
    async with sessions.unit_of_work() as session:
        before = await stock_state(session)
    ids = {"item": a.item_id, "A": a.warehouse_id, "B": b.warehouse_id, "missing": MISSING}
    request = TransferRequest(ids[item], ids[source], ids[target], quantity)
    with pytest.raises(ServiceError) as refused:
        await sessions.run(transfer_stock, request, actor_id=clerk.id)
    assert (refused.value.code, refused.value.field) == (code, field)
    async with sessions.unit_of_work() as session:
        assert await stock_state(session) == before


# ---------------------------------------------------------------- the ledger and its events


# Each change from the same start: A holds 10 (2 of them reserved by ``held``), B holds 2;
# with the levels it touches, in the order it writes their ledger rows.
CHANGES = {
    "receipt": (lambda s, a, b, held, actor: adjust_stock(
        s, AdjustRequest(a.item_id, a.warehouse_id, 5, RECEIPT), actor_id=actor), "A"),
    "shipment": (lambda s, a, b, held, actor: adjust_stock(
        s, AdjustRequest(a.item_id, a.warehouse_id, -3, SHIPMENT), actor_id=actor), "A"),
    "adjustment": (lambda s, a, b, held, actor: adjust_stock(
        s, AdjustRequest(b.item_id, b.warehouse_id, -1, ADJUSTMENT), actor_id=actor), "B"),
    "count": (lambda s, a, b, held, actor: set_stock_count(
        s, CountRequest(a.item_id, a.warehouse_id, 9), actor_id=actor), "A"),
    "transfer A to B": (lambda s, a, b, held, actor: transfer_stock(
        s, TransferRequest(a.item_id, a.warehouse_id, b.warehouse_id, 4), actor_id=actor), "AB"),
    "transfer B to A": (lambda s, a, b, held, actor: transfer_stock(
        s, TransferRequest(a.item_id, b.warehouse_id, a.warehouse_id, 2), actor_id=actor), "BA"),
    "reserve": (lambda s, a, b, held, actor: reserve_stock(
        s, ReserveRequest(a.item_id, a.warehouse_id, 3), actor_id=actor), "A"),
    "release": (lambda s, a, b, held, actor: release_reservation(s, held, actor_id=actor), "A"),
    "fulfil": (lambda s, a, b, held, actor: fulfill_reservation(s, held, actor_id=actor), "A"),
}


@pytest.mark.parametrize("change", list(CHANGES))
async def test_every_change_writes_one_ledger_row_per_level_that_agrees_with_it(
    sessions, change
):
    clerk, a, b = await two_warehouses(sessions, 10, 2)
    async with sessions.unit_of_work() as session:
        held = await Factory(session).reservation(a, 2)
    levels = {"A": a, "B": b}
    async with sessions.unit_of_work() as session:
        rows_before = {name: len(await ledger(session, lv.item_id, lv.warehouse_id))
                       for name, lv in levels.items()}
    perform, touched = CHANGES[change]
    async with sessions.unit_of_work() as session:
        await perform(session, a, b, held.id, clerk.id)
        events = of_type(pending(session), StockChanged)
    async with sessions.unit_of_work() as session:
        ledgers = {name: await ledger(session, lv.item_id, lv.warehouse_id)
                   for name, lv in levels.items()}
        now = {name: await level_of(session, lv.item_id, lv.warehouse_id)
               for name, lv in levels.items()}
    new = {name: rows[rows_before[name]:] for name, rows in ledgers.items()}
    # one ledger row for each level the change touched, none for the other
    assert {name: len(rows) for name, rows in new.items()} == {
        name: int(name in touched) for name in levels}
    # each row states the level just after it, and replaying the ledger gives the level
    for name, rows in ledgers.items():
        level = now[name]
        assert level is not None
        assert recorded(rows) == replayed(rows)
        assert replayed(rows)[-1] == (level.on_hand, level.reserved)
    # and one event per new row, saying the same
    assert [(e.stock_level_id, e.movement_id, e.on_hand, e.reserved) for e in events] == [
        (levels[name].id, row.id, row.on_hand_after, row.reserved_after)
        for name in touched for row in new[name]]


async def test_low_stock_is_recorded_once_on_the_crossing(sessions):
    clerk, level = await stocked(sessions, 7, reorder_point=5)
    alerts = []
    for _ in range(3):  # available 6, 5 (the crossing), 4
        async with sessions.unit_of_work() as session:
            request = AdjustRequest(level.item_id, level.warehouse_id, -1, SHIPMENT)
            await adjust_stock(session, request, actor_id=clerk.id)
            alerts.append(of_type(pending(session), LowStock))
    low = LowStock(item_id=level.item_id, warehouse_id=level.warehouse_id, available=5,
                   reorder_point=5)
    assert alerts == [[], [low], []]
    assert of_type(sessions.published, LowStock) == [low]


async def test_low_stock_is_recorded_again_after_stock_recovered(sessions):
    clerk, level = await stocked(sessions, 4, reorder_point=5)
    alerts = []
    for delta, kind in ((3, RECEIPT), (-2, SHIPMENT)):  # back to 7, then down to 5 again
        async with sessions.unit_of_work() as session:
            request = AdjustRequest(level.item_id, level.warehouse_id, delta, kind)
            await adjust_stock(session, request, actor_id=clerk.id)
            alerts.append([alert.available for alert in of_type(pending(session), LowStock)])
    assert alerts == [[], [5]]


@pytest.mark.parametrize("change", ["count", "transfer"])
async def test_counts_and_transfers_record_the_crossing_too(sessions, change):
    clerk, a, b = await two_warehouses(sessions, 6, 0, reorder_point=5)
    async with sessions.unit_of_work() as session:
        if change == "count":
            await set_stock_count(
                session, CountRequest(a.item_id, a.warehouse_id, 5), actor_id=clerk.id
            )
        else:
            request = TransferRequest(a.item_id, a.warehouse_id, b.warehouse_id, 1)
            await transfer_stock(session, request, actor_id=clerk.id)
        alerts = of_type(pending(session), LowStock)
    # a transfer's target (0 -> 1) was already low before: no alert for it
    assert alerts == [LowStock(item_id=a.item_id, warehouse_id=a.warehouse_id, available=5,
                               reorder_point=5)]
