"""The event log: outbox writes, positions and cursors, the gap window, replay and pruning.

Runs on SQLite and PostgreSQL; the out-of-order commit needs two concurrent write
transactions, which only PostgreSQL has.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.broker.feed import EventFeed
from api.sweeper import prune_events
from db import eventlog, events
from db.engine import create_engine, read_sessionmaker, write_sessionmaker
from db.eventlog import CursorError, Delivery, Position
from db.events import ItemChange, ItemChanged, LowStock, StockChanged
from db.models import EventRecord, MovementKind, utcnow
from db.session import unit_of_work
from tests.conftest import Database
from tests.queries import ADJUST
from tests.seeded import seeded_ids

BULK = """mutation($inputs: [AdjustStockInput!]!) {
  bulkAdjustStock(inputs: $inputs, errorPolicy: REJECT_FAILED_ROWS) {
    results { index errors { code } } errors { code } } }"""


def stock(item: int = 1, warehouse: int = 1, movement: int = 1) -> StockChanged:
    return StockChanged(item_id=item, warehouse_id=warehouse, stock_level_id=1,
                        movement_id=movement, kind=MovementKind.RECEIPT, delta=1, on_hand=1,
                        reserved=0, available=1)


@pytest.fixture
async def engine(empty_db: Database) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(empty_db.url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def log_rows(engine: AsyncEngine) -> list[eventlog.Row]:
    async with read_sessionmaker(engine)() as session:
        return await eventlog.read_new(session, Position(), 10_000)


class Recorder:
    """The feed's consumer in these tests: what it was handed, in order."""

    def __init__(self) -> None:
        self.position: Position | None = None
        self.deliveries: list[Delivery] = []
        self.moved = asyncio.Event()

    def start(self, position: Position) -> None:
        self.position = position

    def dispatch(self, deliveries: list[Delivery], position: Position) -> None:
        self.deliveries += deliveries
        self.position = position
        self.moved.set()

    @property
    def ids(self) -> list[int]:
        return [d.logged.id for d in self.deliveries]


async def read_once(feed: EventFeed) -> None:
    """One read of the log, as a ring would cause."""
    await feed._read_all()


# -- positions and cursors (no database) ------------------------------------------------


def test_position_opens_and_fills_gaps():
    # given a reader that has everything up to 40
    position = Position(40)
    # when 42 and 45 arrive before 41, 43 and 44
    position = position.after(42).after(45)
    # then 41 and 43-44 stay open, and filling 43 splits its gap
    assert position == Position(45, ((41, 41), (43, 44)))
    assert not position.has(41) and position.has(42) and not position.has(46)
    position = position.after(43)
    assert position == Position(45, ((41, 41), (44, 44)))
    assert position.after(41).after(44) == Position(45)


def test_position_covers_and_union():
    # given a reader at 40 that has 38, and one at 45 still waiting for 38 and 41
    behind, ahead = Position(40), Position(45, ((38, 38), (41, 41)))
    # then neither has all the other has, and together they lack only 41
    assert not behind.covers(ahead) and not ahead.covers(behind)
    assert behind.union(ahead) == Position(45, ((41, 41),))
    assert ahead.covers(Position(37)) and Position(45).covers(ahead)


def test_replayed_position_keeps_what_is_still_missing():
    # given a cursor missing 12 (and everything after 20), and a reader at 30 missing 25
    cursor, until = Position(20, ((12, 12),)), Position(30, ((25, 25),))
    # when the replay has sent up to 22
    halfway = cursor.replayed(until, 22)
    # then 12 (handed on by `until`, so replayed before 22) is done, 25 and 23+ are not
    assert halfway.has(12) and halfway.has(22)
    assert not halfway.has(23) and not halfway.has(25)
    # and at the end of the replay the cursor holds what `until` holds
    assert cursor.replayed(until, 30).covers(until)


def test_forgotten_gaps_and_cap():
    position = Position(50, ((10, 12), (20, 20), (30, 31)))
    assert position.forget_gaps_through(20) == Position(50, ((30, 31),))
    assert position.forget_gaps_through(11) == Position(50, ((12, 12), (20, 20), (30, 31)))
    assert position.capped(1) == Position(50, ((30, 31),))


def test_cursor_round_trip_and_refusals():
    at = utcnow()
    position = Position(1234, ((7, 9), (1000, 1000)))
    token = position.token(at)
    parsed, stamped = Position.parse(token)
    assert parsed == position
    assert abs(stamped - at) < timedelta(microseconds=1)
    for bad in ("", "abc", "ev1.!!!", "ev1." + "x" * 9000, token[:-3] + "zzz",
                Position(5, ((7, 9),)).token(at)):  # a gap above its own high
        with pytest.raises(CursorError):
            Position.parse(bad)


# -- the outbox -------------------------------------------------------------------------


async def test_unit_of_work_logs_events_with_the_commit(engine):
    factory = write_sessionmaker(engine)
    published: list[list[eventlog.Logged]] = []

    async def publish(logged):
        published.append(list(logged))

    # given one unit of work that records two events and commits
    before = utcnow()
    async with unit_of_work(factory, publish) as session:
        events.record(session, stock(item=7, warehouse=3))
        events.record(session, ItemChanged(kind=ItemChange.UPDATED, item_id=7))
    # and one that records an event and fails
    async def failing() -> None:
        async with unit_of_work(factory, publish) as session:
            events.record(session, ItemChanged(kind=ItemChange.DELETED, item_id=8))
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await failing()
    # then only the committed events are in the log, typed, in order, stamped at commit
    rows = await log_rows(engine)
    assert [r.channel for r in rows] == ["stock", "items"]
    logged = [r.decoded() for r in rows]
    assert [entry.event for entry in logged if entry] == [
        stock(item=7, warehouse=3), ItemChanged(kind=ItemChange.UPDATED, item_id=7)]
    assert all(entry and before <= entry.committed_at <= utcnow() for entry in logged)
    # and the doorbell heard of them once, after the commit, with their ids
    assert [[entry.id for entry in call] for call in published] == [[r.id for r in rows]]


async def test_bulk_logs_only_the_rows_that_stayed(client):
    # given a bulk adjustment whose second row fails
    await client.login_as("clerk")
    [item], [wh] = await seeded_ids(client.data, ["SKU-00001"], ["BER-1"])
    row = {"itemId": item, "warehouseId": wh, "kind": "RECEIPT"}
    async with read_sessionmaker(client.engine)() as session:
        before = await eventlog.start_position(session, utcnow())
    result = await client.data(BULK, {"inputs": [{**row, "delta": 2},
                                                 {**row, "delta": -10**6, "kind": "SHIPMENT"},
                                                 {**row, "delta": 3}]})
    assert [r["errors"] for r in result["bulkAdjustStock"]["results"]][1]
    # then the log has the two movements that happened, not the one rolled back
    async with read_sessionmaker(client.engine)() as session:
        rows = await eventlog.read_new(session, before, 100)
    deltas = [r.payload["delta"] for r in rows if r.channel == "stock"]
    assert deltas == [2, 3]


async def test_mutation_and_its_event_commit_together(client):
    # given a clerk's stock change
    await client.login_as("clerk")
    [item], [wh] = await seeded_ids(client.data, ["SKU-00001"], ["BER-1"])
    async with read_sessionmaker(client.engine)() as session:
        before = await eventlog.start_position(session, utcnow())
    done = await client.data(ADJUST, {"input": {"itemId": item, "warehouseId": wh,
                                                "delta": 5, "kind": "RECEIPT"}})
    # then its event is in the log, naming the movement the mutation returned
    async with read_sessionmaker(client.engine)() as session:
        rows = await eventlog.read_new(session, before, 100)
    [row] = [r for r in rows if r.channel == "stock"]
    logged = row.decoded()
    assert logged is not None and isinstance(logged.event, StockChanged)
    assert logged.event.delta == 5
    movement = done["adjustStock"]["movement"]["id"]
    from schema.ids import from_global_id
    assert from_global_id(movement)[1] == logged.event.movement_id


# -- the feed and the gap window --------------------------------------------------------


async def insert_with_id(factory: async_sessionmaker[AsyncSession], event_id: int) -> None:
    """A row under a chosen id: stands in for a transaction that took it and commits now."""
    event = ItemChanged(kind=ItemChange.UPDATED, item_id=event_id)
    async with unit_of_work(factory) as session:
        await session.execute(insert(EventRecord), [{
            "id": event_id, "channel": event.channel, "payload": events.encode(event),
            "item_id": event_id, "warehouse_id": None, "committed_at": utcnow()}])


async def test_feed_delivers_a_late_id_after_a_later_one(engine):
    # given a feed at the start of an empty log
    factory = write_sessionmaker(engine)
    recorder = Recorder()
    feed = EventFeed(read_sessionmaker(engine), recorder, poll_seconds=60, gap_seconds=60)
    await feed._begin()
    # when id 2 commits while 1 has not yet
    await insert_with_id(factory, 2)
    await read_once(feed)
    # then 2 is delivered and 1 stays open
    assert recorder.ids == [2]
    assert recorder.position == Position(2, ((1, 1),))
    # when 1 commits after all, it is delivered on the next read, and nothing twice
    await insert_with_id(factory, 1)
    await read_once(feed)
    assert recorder.ids == [2, 1]
    assert recorder.position == Position(2)


async def test_feed_gives_up_a_gap_after_its_window(engine):
    # given a feed with a short gap window and a gap at 1 that never fills (rolled back)
    factory = write_sessionmaker(engine)
    recorder = Recorder()
    feed = EventFeed(read_sessionmaker(engine), recorder, poll_seconds=60, gap_seconds=0.3)
    await feed._begin()
    await insert_with_id(factory, 2)
    await read_once(feed)
    assert recorder.position == Position(2, ((1, 1),))
    # when the window passes, the gap is dropped; later events were never held back by it
    await insert_with_id(factory, 3)
    await read_once(feed)
    assert recorder.ids == [2, 3]
    await asyncio.sleep(0.4)
    await read_once(feed)
    assert recorder.position == Position(3)


async def test_feed_starts_with_recent_holes_open(engine):
    # given a log with ids 1, 2 and 4 written just now (3 may still commit)
    factory = write_sessionmaker(engine)
    for event_id in (1, 2, 4):
        await insert_with_id(factory, event_id)
    # when a worker's feed starts
    recorder = Recorder()
    feed = EventFeed(read_sessionmaker(engine), recorder, poll_seconds=60, gap_seconds=60)
    await feed._begin()
    # then it stands at 4 with 3 open, and picks 3 up when it commits
    assert recorder.position == Position(4, ((3, 3),))
    await insert_with_id(factory, 3)
    await read_once(feed)
    assert recorder.ids == [3]


async def test_feed_ignores_rings_it_has_read_past(engine):
    recorder = Recorder()
    feed = EventFeed(read_sessionmaker(engine), recorder, poll_seconds=60, gap_seconds=60)
    feed.position = Position(10, ((4, 4),))
    feed.wake(3)  # a commit up to 3 has nothing this feed lacks
    assert not feed._wanted.is_set()
    feed.wake(9)  # one up to 9 may have written 4 too (concurrent inserts interleave ids)
    assert feed._wanted.is_set()
    feed._wanted.clear()
    feed.wake(11)
    assert feed._wanted.is_set()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_out_of_order_commits_are_all_delivered(engine):
    """Two transactions take ids 1 and 2; 2 commits first. A feed that has read 2 must not
    skip 1, and a cursor taken after 2 must replay 1."""
    factory = write_sessionmaker(engine)
    recorder = Recorder()
    feed = EventFeed(read_sessionmaker(engine), recorder, poll_seconds=60, gap_seconds=60)
    await feed._begin()
    first_wrote, release_first = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with unit_of_work(factory) as session:
            # the outbox write itself, then a commit held back until the other committed
            [logged] = await eventlog.write(session, [ItemChanged(ItemChange.UPDATED, 41)])
            assert logged.id == 1
            first_wrote.set()
            await release_first.wait()

    async def second() -> None:
        await first_wrote.wait()
        async with unit_of_work(factory) as session:
            [logged] = await eventlog.write(session, [ItemChanged(ItemChange.UPDATED, 42)])
            assert logged.id == 2

    holder = asyncio.create_task(first())
    await second()
    # when the feed reads while 1 is still uncommitted
    await read_once(feed)
    assert recorder.ids == [2]
    cursor = recorder.deliveries[0].position
    assert cursor == Position(2, ((1, 1),))
    release_first.set()
    await holder  # 1 commits now, after 2
    await read_once(feed)
    # then the feed delivers 1 too, after 2, and a resume from the cursor after 2 replays 1
    assert recorder.ids == [2, 1]
    async with read_sessionmaker(engine)() as session:
        replayed = await eventlog.replay(session, cursor, recorder.position or Position(),
                                         channel="items")
    assert [r.id for r in replayed] == [1]


# -- replay and pruning -----------------------------------------------------------------


async def test_replay_filters_and_stops_at_until(engine):
    factory = write_sessionmaker(engine)
    async with unit_of_work(factory) as session:
        for event in (stock(1, 1), stock(2, 1), LowStock(1, 2, 0, 5), stock(1, 2),
                      stock(1, 1)):
            events.record(session, event)
    rows = await log_rows(engine)
    ids = [r.id for r in rows]
    until = Position(ids[3])  # a reader that has not yet read the last one
    async with read_sessionmaker(engine)() as session:
        mine = await eventlog.replay(session, Position(), until, channel="stock", item_id=1)
        there = await eventlog.replay(session, Position(ids[0]), until, channel="stock",
                                      item_id=1, warehouse_id=2)
        paged = await eventlog.replay(session, Position(), until, channel="stock",
                                      beyond=ids[0], limit=1)
    assert [r.id for r in mine] == [ids[0], ids[3]]
    assert [r.id for r in there] == [ids[3]]
    assert [r.id for r in paged] == [ids[1]]


async def test_prune_deletes_old_events_in_bounded_batches(engine):
    factory = write_sessionmaker(engine)
    async with unit_of_work(factory) as session:
        for n in range(5):
            events.record(session, stock(movement=n))
    old = utcnow() - timedelta(days=8)
    async with unit_of_work(factory) as session:
        await session.execute(
            EventRecord.__table__.update()
            .where(EventRecord.id <= 3)
            .values(committed_at=old)
        )
    cutoff = utcnow() - timedelta(days=7)
    async with unit_of_work(factory) as session:
        assert await eventlog.prune(session, cutoff, 2) == 2
    async with unit_of_work(factory) as session:
        assert await eventlog.prune(session, cutoff, 2) == 1
    async with unit_of_work(factory) as session:
        assert await eventlog.prune(session, cutoff, 2) == 0
    async with read_sessionmaker(engine)() as session:
        left = (await session.execute(select(func.count()).select_from(EventRecord)))
        assert left.scalar_one() == 2


async def test_sweeper_prunes_past_retention_one_batch_per_transaction(client):
    # given the app's log with three events, two of them older than the 7-day retention
    state = client.app.state.stockroom
    async with read_sessionmaker(client.engine)() as session:
        start = await eventlog.start_position(session, utcnow())
    async with unit_of_work(state.write_factory) as session:
        for n in range(3):
            events.record(session, stock(movement=n))
    async with read_sessionmaker(client.engine)() as session:
        ids = [r.id for r in await eventlog.read_new(session, start, 10)]
    async with unit_of_work(state.write_factory) as session:
        await session.execute(
            EventRecord.__table__.update()
            .where(EventRecord.id.in_(ids[:2]))
            .values(committed_at=utcnow() - timedelta(days=7, hours=1))
        )
    # when the sweeper prunes, one row per batch
    assert await prune_events(state, batch=1) == 2
    # then only the recent event is left
    async with read_sessionmaker(client.engine)() as session:
        assert [r.id for r in await eventlog.read_new(session, start, 10)] == ids[2:]
