"""Background release of expired reservations (they are also released lazily on touch)."""

from __future__ import annotations

import asyncio
import logging

from api.state import AppState
from db import stock
from db.session import EventSink, unit_of_work

log = logging.getLogger("stockroom.sweeper")


async def publish_events(state: AppState, events: EventSink) -> None:
    for event in events:
        await state.broker.publish(event["channel"], event)


async def sweep_once(state: AppState) -> int:
    async def publish(events: EventSink) -> None:
        await publish_events(state, events)

    async with unit_of_work(state.write_factory, publish) as session:
        return await stock.expire_due_reservations(session)


async def sweep_forever(state: AppState) -> None:
    interval = state.settings.reservation_sweep_seconds
    while True:
        await asyncio.sleep(interval)
        try:
            released = await sweep_once(state)
            if released:
                log.info("released expired reservations on %d stock levels", released)
        except asyncio.CancelledError:
            raise
        except Exception:  # keep sweeping; the next pass retries
            log.exception("reservation sweep failed")
