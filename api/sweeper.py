"""Background housekeeping: release expired reservations, remove abandoned upload files.

Expired reservations are also released lazily on touch; the sweep catches levels nobody
touches. An upload killed before its rename leaves a temp file, and one cancelled between
the rename and the row's insert leaves a blob no row names: both go once an hour old.
"""

from __future__ import annotations

import asyncio
import logging
import time

from api.state import AppState
from db import stock, uploads
from db.engine import write_sessionmaker
from db.session import unit_of_work

log = logging.getLogger("stockroom.sweeper")

TEMP_SWEEP_SECONDS = 600.0
TEMP_MAX_AGE_SECONDS = 3600.0


async def sweep_once(state: AppState) -> int:
    """Release due reservations; the count of stock levels that had any."""
    factory = write_sessionmaker(state.engine, origin="sweeper")
    async with unit_of_work(factory, state.broker.publish_events) as session:
        return await stock.expire_due_reservations(session)


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
    temp_due = time.monotonic()
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
        except asyncio.CancelledError:
            raise
        except Exception:  # keep sweeping; the next pass retries
            log.exception("sweep failed")
