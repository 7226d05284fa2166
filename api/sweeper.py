"""Background housekeeping: release expired reservations, remove abandoned upload files,
prune the event log and the webhook delivery log.

Expired reservations are also released lazily on touch; the sweep catches levels nobody
touches. An upload killed before its rename leaves a temp file, and one cancelled between
the rename and the row's insert leaves a blob no row names: both go once an hour old. Events
older than ``STOCKROOM_EVENT_RETENTION`` are deleted in bounded batches, each its own
transaction, so pruning never holds a long lock on the log the workers read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from api.state import AppState
from db import eventlog, stock, uploads, webhooks
from db.engine import write_sessionmaker
from db.models import utcnow
from db.session import unit_of_work

log = logging.getLogger("stockroom.sweeper")

TEMP_SWEEP_SECONDS = 600.0
TEMP_MAX_AGE_SECONDS = 3600.0
EVENT_PRUNE_SECONDS = 60.0
EVENT_PRUNE_BATCH = 1000
EVENT_PRUNE_BATCHES = 100  # per pass: a backlog is worked off over several passes
# Pruned a little later than retention says: a cursor inside retention must still find every
# event after it, including one stamped a moment earlier by a concurrent transaction.
EVENT_PRUNE_SLACK = timedelta(minutes=1)


async def sweep_once(state: AppState) -> int:
    """Release due reservations; the count of stock levels that had any."""
    factory = write_sessionmaker(state.engine, origin="sweeper")
    async with unit_of_work(factory, state.broker.publish_events) as session:
        return await stock.expire_due_reservations(session)


Prune = Callable[[AsyncSession, datetime, int], Awaitable[int]]


async def _prune_in_batches(
    state: AppState, prune: Prune, before: datetime, batch: int, batches: int
) -> int:
    """``prune`` rows older than ``before``, ``batch`` per transaction; how many went."""
    removed = 0
    # Tagged like the reservation sweep: statement counts of requests leave it out.
    factory = write_sessionmaker(state.engine, origin="sweeper")
    for _ in range(batches):
        async with unit_of_work(factory) as session:
            count = await prune(session, before, batch)
        removed += count
        if count < batch:
            break
        await asyncio.sleep(0)  # let requests in between batches
    return removed


async def prune_events(
    state: AppState, batch: int = EVENT_PRUNE_BATCH, batches: int = EVENT_PRUNE_BATCHES
) -> int:
    """Delete events older than the retention, ``batch`` rows per transaction; how many."""
    before = utcnow() - state.settings.event_retention - EVENT_PRUNE_SLACK
    return await _prune_in_batches(state, eventlog.prune, before, batch, batches)


async def prune_webhook_deliveries(
    state: AppState, batch: int = EVENT_PRUNE_BATCH, batches: int = EVENT_PRUNE_BATCHES
) -> int:
    """Delete finished webhook deliveries older than ``STOCKROOM_WEBHOOK_LOG_RETENTION``."""
    before = utcnow() - state.settings.webhook_log_retention
    return await _prune_in_batches(state, webhooks.prune, before, batch, batches)


async def sweep_upload_files(state: AppState) -> int:
    """Remove old temp files and old blobs without an image row; how many went."""
    storage = state.storage
    removed = await asyncio.to_thread(storage.sweep_temp, TEMP_MAX_AGE_SECONDS)
    old = await asyncio.to_thread(storage.blobs_older_than, TEMP_MAX_AGE_SECONDS)
    if old:
        async with state.read_factory() as session:
            recorded = await uploads.recorded_digests(session, old)
        for digest in set(old) - recorded:
            await storage.delete(digest)
            removed += 1
    return removed


async def sweep_forever(state: AppState) -> None:
    interval = state.settings.reservation_sweep_seconds
    temp_due = events_due = time.monotonic()
    while True:
        await asyncio.sleep(interval)
        try:
            released = await sweep_once(state)
            if released:
                log.info("released expired reservations on %d stock levels", released)
            if time.monotonic() >= temp_due:
                temp_due = time.monotonic() + TEMP_SWEEP_SECONDS
                removed = await sweep_upload_files(state)
                if removed:
                    log.info("removed %d abandoned upload temp files", removed)
            if time.monotonic() >= events_due:
                events_due = time.monotonic() + EVENT_PRUNE_SECONDS
                pruned = await prune_events(state)
                if pruned:
                    log.info("pruned %d events past retention", pruned)
                pruned = await prune_webhook_deliveries(state)
                if pruned:
                    log.info("pruned %d webhook deliveries past retention", pruned)
        except asyncio.CancelledError:
            raise
        except Exception:  # keep sweeping; the next pass retries
            log.exception("sweep failed")
