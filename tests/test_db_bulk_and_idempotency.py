"""db/stock bulk adjustments under both error policies, and idempotency keys replayed.

On SQLite and PostgreSQL, each call in a unit of work of its own as a request would make it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from db.errors import ErrorCode, ServiceError
from db.events import StockChanged, pending
from db.models import MovementKind, Reservation, ReservationStatus, utcnow
from db.stock import (
    MAX_BULK_ROWS,
    AdjustRequest,
    BulkRejected,
    CountRequest,
    ErrorPolicy,
    ReserveRequest,
    TransferRequest,
    adjust_stock,
    bulk_adjust_stock,
    reserve_stock,
    set_stock_count,
    transfer_stock,
)
from tests.factories import Factory, Sessions
from tests.ledger import level_of, of_type, stock_state

RECEIPT, SHIPMENT = MovementKind.RECEIPT, MovementKind.SHIPMENT


async def two_levels(sessions: Sessions, a: int, b: int):
    """Given: a clerk and two items stocked at ``a`` and ``b`` in one warehouse."""
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        clerk, warehouse = await make.user(), await make.warehouse()
        first = await make.stock(await make.item(), warehouse, a)
        second = await make.stock(await make.item(), warehouse, b)
        return clerk, first, second


async def on_hand(sessions: Sessions, *levels) -> list[int]:
    async with sessions.unit_of_work() as session:
        found = [await level_of(session, lv.item_id, lv.warehouse_id) for lv in levels]
    return [level.on_hand for level in found if level is not None]


# ---------------------------------------------------------------- bulk


async def test_reject_everything_rolls_every_row_back_when_one_fails(sessions):
    clerk, a, b = await two_levels(sessions, 5, 5)
    rows = [AdjustRequest(a.item_id, a.warehouse_id, 2, RECEIPT),
            AdjustRequest(b.item_id, b.warehouse_id, -9, SHIPMENT)]
    with pytest.raises(BulkRejected) as rejected:
        await sessions.run(
            bulk_adjust_stock, rows, ErrorPolicy.REJECT_EVERYTHING, actor_id=clerk.id
        )
    assert [[(e.code, e.field) for e in row.errors] for row in rejected.value.rows] == [
        [], [(ErrorCode.INSUFFICIENT_STOCK, ["delta"])]]
    assert await on_hand(sessions, a, b) == [5, 5]
    assert sessions.published == []


async def test_reject_failed_rows_keeps_the_good_rows_and_only_their_events(sessions):
    clerk, a, b = await two_levels(sessions, 5, 5)
    rows = [AdjustRequest(a.item_id, a.warehouse_id, 2, RECEIPT),
            AdjustRequest(b.item_id, b.warehouse_id, -9, SHIPMENT),
            AdjustRequest(b.item_id, b.warehouse_id, -1, SHIPMENT)]
    async with sessions.unit_of_work() as session:
        results = await bulk_adjust_stock(
            session, rows, ErrorPolicy.REJECT_FAILED_ROWS, actor_id=clerk.id
        )
        events = of_type(pending(session), StockChanged)
    assert [row.index for row in results] == [0, 1, 2]
    assert [row.result is not None for row in results] == [True, False, True]
    assert [e.code for e in results[1].errors] == [ErrorCode.INSUFFICIENT_STOCK]
    assert await on_hand(sessions, a, b) == [7, 4]
    assert [(e.stock_level_id, e.delta) for e in events] == [(a.id, 2), (b.id, -1)]
    assert sessions.published == events


async def test_a_failed_row_leaves_nothing_of_what_it_did_before_failing(sessions):
    # given a level whose reservation is due: touching it releases the reservation first
    clerk, a, b = await two_levels(sessions, 10, 5)
    async with sessions.unit_of_work() as session:
        due = await Factory(session).reservation(a, 4, expires_at=utcnow() - timedelta(minutes=1))
    rows = [AdjustRequest(b.item_id, b.warehouse_id, 1, RECEIPT),
            AdjustRequest(a.item_id, a.warehouse_id, -20, SHIPMENT)]
    # when that level's row then fails
    async with sessions.unit_of_work() as session:
        results = await bulk_adjust_stock(
            session, rows, ErrorPolicy.REJECT_FAILED_ROWS, actor_id=clerk.id
        )
        events = list(pending(session))
    # then its savepoint took the release back with it, and its events
    assert [bool(row.errors) for row in results] == [False, True]
    assert [(e.stock_level_id, e.kind) for e in of_type(events, StockChanged)] == [
        (b.id, RECEIPT)]
    async with sessions.unit_of_work() as session:
        assert (await session.get_one(Reservation, due.id)).status is ReservationStatus.ACTIVE
        level = await level_of(session, a.item_id, a.warehouse_id)
    assert level is not None and (level.on_hand, level.reserved) == (10, 4)
    assert sessions.published == events


async def test_rows_that_failed_to_parse_arrive_as_their_errors(sessions):
    clerk, a, _ = await two_levels(sessions, 5, 5)
    unparsed = ServiceError(ErrorCode.NOT_FOUND, "No such item", ["item_id"])
    rows = [unparsed, AdjustRequest(a.item_id, a.warehouse_id, 1, RECEIPT)]
    results = await sessions.run(
        bulk_adjust_stock, rows, ErrorPolicy.REJECT_FAILED_ROWS, actor_id=clerk.id
    )
    assert results[0].errors == [unparsed] and results[0].result is None
    assert results[1].errors == [] and results[1].result is not None
    assert await on_hand(sessions, a) == [6]


async def test_concurrent_bulk_calls_over_the_same_levels_in_opposite_orders_both_apply(
    sessions,
):
    # given two bulk calls touching the same two levels, listed in opposite orders (on
    # PostgreSQL each row's UPDATE locks its level until COMMIT)
    clerk, a, b = await two_levels(sessions, 0, 0)
    forward = [AdjustRequest(a.item_id, a.warehouse_id, 1, RECEIPT),
               AdjustRequest(b.item_id, b.warehouse_id, 1, RECEIPT)] * 20
    backward = list(reversed(forward))

    async def call(rows: list[AdjustRequest]):
        return await sessions.run(
            bulk_adjust_stock, rows, ErrorPolicy.REJECT_EVERYTHING, actor_id=clerk.id
        )

    # when both run at once, many times over
    results = await asyncio.gather(*(call(rows) for rows in [forward, backward] * 3))
    # then none deadlocked: every row applied, and each answer is in its own input order
    assert await on_hand(sessions, a, b) == [120, 120]
    for rows, result in zip([forward, backward] * 3, results, strict=True):
        assert [row.index for row in result] == list(range(len(rows)))
        assert [r.result.level.item_id for r in result if r.result] == [
            row.item_id for row in rows]


async def test_bulk_refuses_more_than_its_row_limit(sessions):
    clerk, a, _ = await two_levels(sessions, 5, 5)
    rows = [AdjustRequest(a.item_id, a.warehouse_id, 1, RECEIPT)] * (MAX_BULK_ROWS + 1)
    with pytest.raises(ServiceError) as refused:
        await sessions.run(
            bulk_adjust_stock, rows, ErrorPolicy.REJECT_FAILED_ROWS, actor_id=clerk.id
        )
    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID, ["inputs"])
    assert await on_hand(sessions, a) == [5]


# ---------------------------------------------------------------- idempotency keys


def keyed(a, b, operation: str, key: str = "k-1"):
    """One keyed request of each operation, over levels ``a`` and ``b`` of one item."""
    item, here, there = a.item_id, a.warehouse_id, b.warehouse_id
    return {
        "adjust": (adjust_stock, AdjustRequest(item, here, 3, RECEIPT, idempotency_key=key)),
        "count": (set_stock_count, CountRequest(item, here, 4, idempotency_key=key)),
        "transfer": (transfer_stock, TransferRequest(item, here, there, 2, idempotency_key=key)),
        "reserve": (reserve_stock, ReserveRequest(item, here, 2, idempotency_key=key)),
    }[operation]


async def one_item_two_warehouses(sessions: Sessions):
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        clerk, other, item = await make.user(), await make.user(), await make.item()
        a = await make.stock(item, await make.warehouse(), 10)
        b = await make.stock(item, await make.warehouse(), 0)
        return clerk, other, a, b


@pytest.mark.parametrize("operation", ["adjust", "count", "transfer", "reserve"])
async def test_a_replayed_key_returns_the_first_result_and_changes_nothing(sessions, operation):
    clerk, _, a, b = await one_item_two_warehouses(sessions)
    service, request = keyed(a, b, operation)
    first = await sessions.run(service, request, actor_id=clerk.id)
    async with sessions.unit_of_work() as session:
        after_first = await stock_state(session)
    published = len(sessions.published)
    async with sessions.unit_of_work() as session:
        again = await service(session, request, actor_id=clerk.id)
        assert list(pending(session)) == []
    assert again.recorded() == first.recorded()
    async with sessions.unit_of_work() as session:
        assert await stock_state(session) == after_first
    assert len(sessions.published) == published


async def test_a_replay_returns_the_first_movement_after_later_changes(sessions):
    clerk, _, a, b = await one_item_two_warehouses(sessions)
    service, request = keyed(a, b, "adjust")
    first = await sessions.run(service, request, actor_id=clerk.id)
    await sessions.run(adjust_stock, AdjustRequest(a.item_id, a.warehouse_id, 1, RECEIPT),
                       actor_id=clerk.id)
    again = await sessions.run(service, request, actor_id=clerk.id)
    assert again.movement.id == first.movement.id
    assert again.movement.on_hand_after == 13
    assert again.level.on_hand == 14  # the level as it is now


@pytest.mark.parametrize("other_use", ["other input", "other operation"])
async def test_a_key_reused_with_other_input_is_refused(sessions, other_use):
    clerk, _, a, b = await one_item_two_warehouses(sessions)
    service, request = keyed(a, b, "adjust")
    await sessions.run(service, request, actor_id=clerk.id)
    async with sessions.unit_of_work() as session:
        before = await stock_state(session)
    if other_use == "other input":
        service, request = adjust_stock, AdjustRequest(
            a.item_id, a.warehouse_id, 4, RECEIPT, idempotency_key="k-1")
    else:
        service, request = keyed(a, b, "count")
    with pytest.raises(ServiceError) as refused:
        await sessions.run(service, request, actor_id=clerk.id)
    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID, ["idempotency_key"])
    async with sessions.unit_of_work() as session:
        assert await stock_state(session) == before


async def test_keys_belong_to_their_user(sessions):
    clerk, other, a, b = await one_item_two_warehouses(sessions)
    service, request = keyed(a, b, "adjust")
    mine = await sessions.run(service, request, actor_id=clerk.id)
    theirs = await sessions.run(service, request, actor_id=other.id)
    assert theirs.movement.id != mine.movement.id
    assert (theirs.movement.actor_id, theirs.level.on_hand) == (other.id, 16)


async def test_a_refused_keyed_change_leaves_its_key_free(sessions):
    clerk, _, a, _ = await one_item_two_warehouses(sessions)
    too_many = AdjustRequest(a.item_id, a.warehouse_id, -20, SHIPMENT, idempotency_key="k-1")
    with pytest.raises(ServiceError):
        await sessions.run(adjust_stock, too_many, actor_id=clerk.id)
    fixed = AdjustRequest(a.item_id, a.warehouse_id, -2, SHIPMENT, idempotency_key="k-1")
    result = await sessions.run(adjust_stock, fixed, actor_id=clerk.id)
    assert result.level.on_hand == 8
