"""The delivery log on both backends: made exactly once from the log (also when ids commit
out of order and when two workers read at once), claimed in event order, leases that lapse,
results recorded only by the claim holder, and retention."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from db import eventlog, webhooks
from db.engine import create_engine, write_sessionmaker
from db.events import ItemChange, ItemChanged, StockChanged
from db.models import (
    DeliveryStatus,
    MovementKind,
    Webhook,
    WebhookDelivery,
    WebhookEventType,
    utcnow,
)
from db.session import unit_of_work
from db.webhooks import Attempt, WebhookRequest
from tests.conftest import Database

GAP = 30.0


@pytest.fixture
async def engine(empty_db: Database) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(empty_db.url)
    try:
        yield engine
    finally:
        await engine.dispose()


def stock(item: int = 1) -> StockChanged:
    return StockChanged(item_id=item, warehouse_id=1, stock_level_id=1, movement_id=1,
                        kind=MovementKind.RECEIPT, delta=1, on_hand=1, reserved=0, available=1)


async def make_webhook(engine: AsyncEngine, events: list[WebhookEventType]) -> int:
    async with unit_of_work(write_sessionmaker(engine)) as session:
        hook, _ = await webhooks.create_webhook(
            session, WebhookRequest("http://127.0.0.1:9/x", events), actor_id=None
        )
        return hook.id


async def log(engine: AsyncEngine, *events: object) -> list[int]:
    async with unit_of_work(write_sessionmaker(engine)) as session:
        return [row.id for row in await eventlog.write(session, list(events))]


async def make_all(engine: AsyncEngine) -> int:
    made = 0
    while True:
        async with unit_of_work(write_sessionmaker(engine)) as session:
            result = await webhooks.make_deliveries(session, gap_seconds=GAP)
        made += result.made
        if result.read < webhooks.deliveries.READ_BATCH:
            return made


async def delivered_ids(engine: AsyncEngine, webhook_id: int) -> list[int]:
    async with write_sessionmaker(engine)() as session:
        rows = await session.scalars(
            select(WebhookDelivery.event_id)
            .where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookDelivery.id)
        )
        return [i for i in rows if i is not None]


async def test_each_event_gets_one_delivery_per_webhook_that_wants_it(engine):
    before = await log(engine, stock())
    stocky = await make_webhook(engine, [WebhookEventType.STOCK_CHANGED])
    items = await make_webhook(engine, [WebhookEventType.ITEM_UPDATED,
                                        WebhookEventType.ITEM_DELETED])
    ids = await log(engine, stock(), ItemChanged(ItemChange.UPDATED, 1),
                    ItemChanged(ItemChange.CREATED, 1), stock(2))
    assert await make_all(engine) == 3
    assert await make_all(engine) == 0  # read again: nothing twice
    assert await delivered_ids(engine, stocky) == [ids[0], ids[3]]
    assert await delivered_ids(engine, items) == [ids[1]]
    assert before[0] not in await delivered_ids(engine, stocky)  # older than the webhook


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_an_id_that_commits_after_a_higher_one_is_still_delivered(engine):
    hook = await make_webhook(engine, [WebhookEventType.ITEM_UPDATED])
    factory = write_sessionmaker(engine)
    wrote, release = asyncio.Event(), asyncio.Event()

    async def slow() -> int:
        async with unit_of_work(factory) as session:
            [row] = await eventlog.write(session, [ItemChanged(ItemChange.UPDATED, 41)])
            wrote.set()
            await release.wait()
            return row.id

    holder = asyncio.create_task(slow())
    await wrote.wait()
    [fast] = await log(engine, ItemChanged(ItemChange.UPDATED, 42))
    await make_all(engine)
    assert await delivered_ids(engine, hook) == [fast]
    release.set()
    late = await holder
    assert late < fast  # the lower id committed second
    await make_all(engine)
    assert await delivered_ids(engine, hook) == [fast, late]
    await make_all(engine)
    assert await delivered_ids(engine, hook) == [fast, late]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_two_readers_at_once_never_make_a_delivery_twice(engine):
    hook = await make_webhook(engine, [WebhookEventType.STOCK_CHANGED])
    ids = await log(engine, *[stock(i) for i in range(1, 301)])
    factory = write_sessionmaker(engine)
    gate = asyncio.Event()

    async def reader() -> list[webhooks.Made]:
        results = []
        await gate.wait()
        for _ in range(5):
            async with unit_of_work(factory) as session:
                results.append(await webhooks.make_deliveries(session, gap_seconds=GAP,
                                                              limit=50))
        return results

    tasks = [asyncio.create_task(reader()) for _ in range(4)]
    gate.set()
    results = [r for rs in await asyncio.gather(*tasks) for r in rs]
    await make_all(engine)
    assert await delivered_ids(engine, hook) == ids
    assert sum(r.made for r in results) <= len(ids)
    assert any(r.locked for r in results) or sum(r.made for r in results) == len(ids)


async def _claim(engine: AsyncEngine, sender: str = "a", heads: int = 10, run: int = 10,
                 now_shift: float = 0.0) -> list[list[webhooks.Claimed]]:
    async with unit_of_work(write_sessionmaker(engine)) as session:
        return await webhooks.claim(
            session, sender=sender, now=utcnow() + timedelta(seconds=now_shift),
            lease=timedelta(seconds=5), heads=heads, run=run,
        )


async def _record(engine: AsyncEngine, sender: str, attempts: list[Attempt],
                  unsent: list[int] | None = None) -> webhooks.Recorded:
    async with unit_of_work(write_sessionmaker(engine)) as session:
        return await webhooks.record(
            session, sender, attempts, unsent or [], now=utcnow(), max_attempts=3,
            backoff=lambda attempt, retry: 60.0, deactivate_after=2,
        )


async def test_a_webhooks_deliveries_are_claimed_in_order_behind_their_head(engine):
    hook = await make_webhook(engine, [WebhookEventType.STOCK_CHANGED])
    other = await make_webhook(engine, [WebhookEventType.STOCK_CHANGED])
    ids = await log(engine, *[stock(i) for i in range(1, 6)])
    await make_all(engine)
    runs = await _claim(engine, run=3)
    by_hook = {run[0].webhook_id: [c.event_key for c in run] for run in runs}
    assert by_hook == {hook: [str(i) for i in ids[:4]], other: [str(i) for i in ids[:4]]}
    assert all(c.attempt == 1 for run in runs for c in run)
    assert await _claim(engine, sender="b") == []  # claimed: nothing for another sender

    # The head fails: it waits for its retry and nothing behind it may overtake it.
    [head, *rest] = next(run for run in runs if run[0].webhook_id == hook)
    await _record(engine, "a", [Attempt(head.id, hook, 1, 500, "HTTP 500")],
                  [c.id for c in rest])
    again = await _claim(engine, sender="b")
    assert {run[0].webhook_id for run in again} == set()  # other's run is still claimed
    async with write_sessionmaker(engine)() as session:
        row = await session.get(WebhookDelivery, head.id)
        assert row is not None and row.status is DeliveryStatus.FAILED
        assert row.attempts == 1 and row.claimed_by is None
        unsent_row = await session.get(WebhookDelivery, rest[0].id)
        assert unsent_row is not None and unsent_row.attempts == 0  # handed back untried
    retried = await _claim(engine, sender="b", now_shift=61)
    [run] = [r for r in retried if r[0].webhook_id == hook]
    assert [c.id for c in run][:2] == [head.id, rest[0].id] and run[0].attempt == 2


async def test_a_lapsed_claim_is_taken_over_and_the_old_holder_cannot_record(engine):
    hook = await make_webhook(engine, [WebhookEventType.STOCK_CHANGED])
    await log(engine, stock())
    await make_all(engine)
    [[first]] = await _claim(engine, sender="dead")
    assert await _claim(engine, sender="b", now_shift=1) == []
    [[taken]] = await _claim(engine, sender="b", now_shift=6)  # the 5 s lease lapsed
    assert taken.id == first.id and taken.attempt == 2
    stale = await _record(engine, "dead", [Attempt(first.id, hook, 1, 200, None)])
    assert stale.delivered == 0
    fresh = await _record(engine, "b", [Attempt(taken.id, hook, 2, 200, None)])
    assert fresh.delivered == 1


async def test_give_ups_in_a_row_switch_a_webhook_off_and_a_success_resets_them(engine):
    hook = await make_webhook(engine, [WebhookEventType.STOCK_CHANGED])
    await log(engine, *[stock(i) for i in range(1, 5)])
    await make_all(engine)
    async with unit_of_work(write_sessionmaker(engine)) as session:
        await session.execute(update(WebhookDelivery).values(attempts=2))  # the last try

    async def fail_next() -> webhooks.Recorded:
        [[head, *_]] = await _claim(engine, run=0, now_shift=120)
        return await _record(engine, "a", [Attempt(head.id, hook, head.attempt, 500, "x")])

    assert (await fail_next()).gave_up == 1
    [[head]] = await _claim(engine, run=0, now_shift=120)
    await _record(engine, "a", [Attempt(head.id, hook, head.attempt, 204, None)])
    assert (await fail_next()).deactivated == []  # the success reset the streak
    assert (await fail_next()).deactivated == [hook]
    async with write_sessionmaker(engine)() as session:
        webhook = await session.get(Webhook, hook)
        assert webhook is not None and not webhook.is_active
        assert webhook.disabled_reason == "2 deliveries in a row gave up"


async def test_finished_deliveries_past_retention_are_pruned_in_batches(engine):
    hook = await make_webhook(engine, [WebhookEventType.STOCK_CHANGED])
    await log(engine, *[stock(i) for i in range(1, 8)])
    await make_all(engine)
    old = utcnow() - timedelta(days=31)
    async with unit_of_work(write_sessionmaker(engine)) as session:
        ids = list(await session.scalars(select(WebhookDelivery.id).order_by(WebhookDelivery.id)))
        await session.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(ids[:5]))
                              .values(created_at=old, status=DeliveryStatus.DELIVERED))
        await session.execute(update(WebhookDelivery).where(WebhookDelivery.id == ids[5])
                              .values(created_at=old))  # old but still open: kept
    cutoff = utcnow() - timedelta(days=30)
    async with unit_of_work(write_sessionmaker(engine)) as session:
        assert await webhooks.prune(session, cutoff, 3) == 3
    async with unit_of_work(write_sessionmaker(engine)) as session:
        assert await webhooks.prune(session, cutoff, 3) == 2
    async with write_sessionmaker(engine)() as session:
        left = list(await session.scalars(select(WebhookDelivery.id).order_by(WebhookDelivery.id)))
        total = await session.scalar(select(func.count()).select_from(WebhookDelivery))
    assert left == ids[5:] and total == 2
    assert hook


async def test_deleting_a_webhook_deletes_its_delivery_log(engine):
    hook = await make_webhook(engine, [WebhookEventType.STOCK_CHANGED])
    await log(engine, stock())
    await make_all(engine)
    async with unit_of_work(write_sessionmaker(engine)) as session:
        assert await webhooks.delete_webhook(session, hook) == hook
    assert await delivered_ids(engine, hook) == []
