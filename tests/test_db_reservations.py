"""db/stock reservations called directly: reserve, release, fulfil, and expiry.

Due reservations are written by the factory (the service refuses a past expiry), so expiry is
tested without waiting; on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from db.errors import ErrorCode, ServiceError
from db.events import StockChanged, pending
from db.models import MovementKind, Reservation, ReservationStatus, utcnow
from db.stock import (
    AdjustRequest,
    ReserveRequest,
    adjust_stock,
    expire_due_reservations,
    fulfill_reservation,
    release_reservation,
    reserve_stock,
)
from tests.factories import Factory, Sessions
from tests.ledger import ledger, level_of, of_type, recorded, replayed, stock_state

MISSING = 999_999


async def stocked(sessions: Sessions, on_hand: int, *, reserved: int = 0, due: bool = False):
    """Given: a clerk, an item stocked at ``on_hand`` and, with ``reserved``, a reservation."""
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        clerk, level = await make.user(), await make.stocked(on_hand)
        reservation = None
        if reserved:
            expires_at = utcnow() - timedelta(minutes=1) if due else None
            reservation = await make.reservation(level, reserved, expires_at=expires_at)
        return clerk, level, reservation


async def reservation_status(sessions: Sessions, reservation_id: int) -> ReservationStatus:
    async with sessions.unit_of_work() as session:
        return (await session.get_one(Reservation, reservation_id)).status


# ---------------------------------------------------------------- reserve


async def test_reserve_holds_units_back_without_moving_them(sessions):
    clerk, level, _ = await stocked(sessions, 10)
    request = ReserveRequest(level.item_id, level.warehouse_id, 6, reference="ORDER-1")
    async with sessions.unit_of_work() as session:
        result = await reserve_stock(session, request, actor_id=clerk.id)
        events = of_type(pending(session), StockChanged)
    reservation, movement = result.reservation, result.movement
    assert (result.level.on_hand, result.level.reserved, result.level.available) == (10, 6, 4)
    assert (reservation.status, reservation.quantity, reservation.created_by) == (
        ReservationStatus.ACTIVE, 6, clerk.id)
    assert movement is not None
    assert (movement.kind, movement.delta, movement.reservation_id) == (
        MovementKind.RESERVATION, 6, reservation.id)
    assert (movement.on_hand_after, movement.reserved_after, movement.reference) == (
        10, 6, "ORDER-1")
    assert [(e.kind, e.on_hand, e.reserved, e.available) for e in events] == [
        (MovementKind.RESERVATION, 10, 6, 4)]


async def test_reserve_more_than_available_is_refused(sessions):
    clerk, level, _ = await stocked(sessions, 10, reserved=6)
    request = ReserveRequest(level.item_id, level.warehouse_id, 5)
    with pytest.raises(ServiceError) as refused:
        await sessions.run(reserve_stock, request, actor_id=clerk.id)
    assert (refused.value.code, refused.value.field) == (ErrorCode.INSUFFICIENT_STOCK, ["quantity"])
    assert refused.value.message == "Only 4 units available to reserve"


async def test_archived_items_cannot_be_reserved(sessions):
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        clerk, item = await make.user(), await make.item(archived=True)
        warehouse = await make.warehouse()
        await make.stock(item, warehouse, 10)
    request = ReserveRequest(item.id, warehouse.id, 1)
    with pytest.raises(ServiceError) as refused:
        await sessions.run(reserve_stock, request, actor_id=clerk.id)
    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID, ["item_id"])


@pytest.mark.parametrize(("change", "field"), [
    ({"quantity": 0}, ["quantity"]),
    ({"quantity": 1, "expires_at": "past"}, ["expires_at"]),
    ({"quantity": 1, "reference": "x" * 2001}, ["reference"]),
])
async def test_reserve_refusals_name_the_field_and_change_nothing(sessions, change, field):
    clerk, level, _ = await stocked(sessions, 10)
    if change.get("expires_at") == "past":
        change = {**change, "expires_at": utcnow() - timedelta(seconds=1)}
    async with sessions.unit_of_work() as session:
        before = await stock_state(session)
    request = ReserveRequest(level.item_id, level.warehouse_id, **change)
    with pytest.raises(ServiceError) as refused:
        await sessions.run(reserve_stock, request, actor_id=clerk.id)
    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID, field)
    async with sessions.unit_of_work() as session:
        assert await stock_state(session) == before


# ---------------------------------------------------------------- release and fulfil


async def test_release_gives_the_units_back_to_available(sessions):
    clerk, _, held = await stocked(sessions, 10, reserved=6)
    result = await sessions.run(release_reservation, held.id, actor_id=clerk.id)
    assert result.reservation.status is ReservationStatus.RELEASED
    assert (result.level.on_hand, result.level.reserved) == (10, 0)
    assert result.movement is not None
    assert (result.movement.kind, result.movement.delta, result.movement.actor_id) == (
        MovementKind.RELEASE, -6, clerk.id)
    assert await reservation_status(sessions, held.id) is ReservationStatus.RELEASED


async def test_fulfil_ships_the_reserved_units(sessions):
    clerk, level, held = await stocked(sessions, 10, reserved=6)
    result = await sessions.run(fulfill_reservation, held.id, actor_id=clerk.id)
    assert result.reservation.status is ReservationStatus.FULFILLED
    assert (result.level.on_hand, result.level.reserved) == (4, 0)
    assert result.movement is not None
    assert (result.movement.kind, result.movement.delta) == (MovementKind.FULFILLMENT, -6)
    async with sessions.unit_of_work() as session:
        rows = await ledger(session, level.item_id, level.warehouse_id)
    assert recorded(rows) == replayed(rows) == [(10, 0), (10, 6), (4, 0)]


@pytest.mark.parametrize(("first", "then"), [
    (release_reservation, release_reservation),
    (release_reservation, fulfill_reservation),
    (fulfill_reservation, release_reservation),
    (fulfill_reservation, fulfill_reservation),
])
async def test_a_closed_reservation_cannot_change_again(sessions, first, then):
    clerk, _, held = await stocked(sessions, 10, reserved=6)
    await sessions.run(first, held.id, actor_id=clerk.id)
    with pytest.raises(ServiceError) as refused:
        await sessions.run(then, held.id, actor_id=clerk.id)
    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID, ["id"])


@pytest.mark.parametrize("close", [release_reservation, fulfill_reservation])
async def test_closing_an_unknown_reservation_is_not_found(sessions, close):
    clerk, _, _ = await stocked(sessions, 10)
    with pytest.raises(ServiceError) as refused:
        await sessions.run(close, MISSING, actor_id=clerk.id)
    assert (refused.value.code, refused.value.field) == (ErrorCode.NOT_FOUND, ["id"])


# ---------------------------------------------------------------- expiry


async def test_a_due_reservation_expires_when_its_level_is_touched(sessions):
    clerk, level, due = await stocked(sessions, 10, reserved=8, due=True)
    request = AdjustRequest(level.item_id, level.warehouse_id, 1, MovementKind.RECEIPT)
    async with sessions.unit_of_work() as session:
        result = await adjust_stock(session, request, actor_id=clerk.id)
        events = of_type(pending(session), StockChanged)
    assert (result.level.on_hand, result.level.reserved) == (11, 0)
    assert await reservation_status(sessions, due.id) is ReservationStatus.EXPIRED
    async with sessions.unit_of_work() as session:
        rows = await ledger(session, level.item_id, level.warehouse_id)
    release, receipt = rows[-2:]
    assert (release.kind, release.delta, release.actor_id, release.reservation_id) == (
        MovementKind.RELEASE, -8, None, due.id)
    assert release.reason == "Reservation expired"
    assert receipt.kind is MovementKind.RECEIPT
    assert recorded(rows) == replayed(rows)
    assert [(e.kind, e.reserved) for e in events] == [
        (MovementKind.RELEASE, 0), (MovementKind.RECEIPT, 0)]


async def test_a_reservation_not_yet_due_stays_when_its_level_is_touched(sessions):
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        clerk, level = await make.user(), await make.stocked(10)
        later = await make.reservation(level, 8, expires_at=utcnow() + timedelta(hours=1))
    request = AdjustRequest(level.item_id, level.warehouse_id, 1, MovementKind.RECEIPT)
    result = await sessions.run(adjust_stock, request, actor_id=clerk.id)
    assert (result.level.on_hand, result.level.reserved) == (11, 8)
    assert await reservation_status(sessions, later.id) is ReservationStatus.ACTIVE


async def test_releasing_a_due_reservation_finds_it_expired(sessions):
    clerk, _, due = await stocked(sessions, 10, reserved=8, due=True)
    with pytest.raises(ServiceError) as refused:
        await sessions.run(release_reservation, due.id, actor_id=clerk.id)
    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID, ["id"])
    assert "EXPIRED" in refused.value.message


async def test_the_sweeper_pass_releases_every_due_level_and_no_other(sessions):
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        past, future = utcnow() - timedelta(minutes=1), utcnow() + timedelta(hours=1)
        levels = [await make.stocked(10) for _ in range(3)]
        due = [await make.reservation(levels[0], 3, expires_at=past),
               await make.reservation(levels[0], 2, expires_at=past),
               await make.reservation(levels[1], 4, expires_at=past)]
        kept = [await make.reservation(levels[2], 5, expires_at=future),
                await make.reservation(levels[2], 1)]
    swept = await sessions.run(expire_due_reservations)
    assert swept == 2  # levels, not reservations
    for reservation in due:
        assert await reservation_status(sessions, reservation.id) is ReservationStatus.EXPIRED
    for reservation in kept:
        assert await reservation_status(sessions, reservation.id) is ReservationStatus.ACTIVE
    async with sessions.unit_of_work() as session:
        reserved = [(await level_of(session, lv.item_id, lv.warehouse_id)).reserved
                    for lv in levels]
    assert reserved == [0, 0, 6]
    released = of_type(sessions.published, StockChanged)
    assert sorted((e.stock_level_id, e.delta) for e in released) == sorted(
        [(levels[0].id, -3), (levels[0].id, -2), (levels[1].id, -4)])


async def test_the_sweeper_pass_stops_at_its_limit(sessions):
    async with sessions.unit_of_work() as session:
        make = Factory(session)
        past = utcnow() - timedelta(minutes=1)
        for _ in range(3):
            await make.reservation(await make.stocked(10), 1, expires_at=past)
    assert await sessions.run(expire_due_reservations, 2) == 2
    assert await sessions.run(expire_due_reservations, 2) == 1
    assert await sessions.run(expire_due_reservations, 2) == 0
