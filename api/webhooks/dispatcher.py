"""Each worker's webhook dispatcher: makes deliveries from the log and sends the due ones.

It runs in the lifespan beside the event feed and hears from it: a logged event that
webhooks carry means deliveries are to be made, and a ``WebhooksChanged`` means the endpoints
changed. Making deliveries and claiming them are shared safely across workers and hosts (see
``db/webhooks/deliveries.py``); sending happens in tasks, at most ``STOCKROOM_WEBHOOK_CONCURRENCY``
at once, each working through one webhook's run in event order, so a slow receiver holds one
slot and never a request or another webhook. With no active webhook and nothing to send, it
sends no statement at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from functools import partial

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.observability import Metrics
from api.settings import Settings
from api.webhooks import sender
from api.webhooks.guard import UrlGuard
from db import events, webhooks
from db.eventlog import Delivery
from db.events import WebhooksChanged
from db.models import utcnow
from db.session import Publisher, unit_of_work

log = logging.getLogger("stockroom.webhooks")

RUN = 50  # deliveries of one webhook claimed behind its head, sent one after another
RECORD_EVERY = 10  # attempts of a run recorded together (in flight until then)
LEASE_SLACK_SECONDS = 5.0
DEACTIVATE_AFTER = 5  # give-ups in a row


class WebhookDispatcher:
    def __init__(
        self,
        *,
        read_factory: async_sessionmaker[AsyncSession],
        write_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        guard: UrlGuard,
        publish: Publisher | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.read_factory = read_factory
        self.write_factory = write_factory
        self.settings = settings
        self.guard = guard
        self.publish = publish
        self.metrics = metrics
        self.id = f"{uuid.uuid4().hex[:12]}-{id(self):x}"[:64]
        self._wake = asyncio.Event()
        self._stopping = False
        self._active: bool | None = None  # any active webhook? None: look
        self._to_make = True  # events may wait for deliveries (at start: catch up)
        self._sending: set[asyncio.Task[None]] = set()
        # Claimed here and not yet recorded. Never claimed again by this worker even once
        # the lease has lapsed (a record stuck behind SQLite's writer lock, say): only
        # another worker may take them over, as it would from a dead one.
        self._in_flight: set[int] = set()
        self._http: httpx.AsyncClient | None = None
        self._lease = timedelta(seconds=settings.webhook_timeout + LEASE_SLACK_SECONDS)

    # --- what wakes it ------------------------------------------------------------------

    def wake(self) -> None:
        """Something is due here now (a ping, a redelivery, a new webhook)."""
        self._wake.set()

    def heard(self, deliveries: Sequence[Delivery]) -> None:
        """The event feed's listener: new events in the log (read by this worker)."""
        for delivery in deliveries:
            logged = delivery.logged
            if isinstance(logged.event, WebhooksChanged):
                self._active = None
                self._to_make = True
                self._wake.set()
            elif self._active is not False and webhooks.kind_of(logged) is not None:
                self._to_make = True
                self._wake.set()

    async def check_url(self, url: str) -> None:
        await self.guard.check(url)

    # --- the loop -------------------------------------------------------------------------

    async def run_forever(self) -> None:
        self._http = sender.client(self.settings.webhook_concurrency)
        delay = 0.1
        try:
            while not self._stopping:
                timeout = await self._pass_safely()
                if timeout is None:
                    delay = min(delay * 2, self.settings.webhook_poll_seconds * 5)
                    timeout = delay
                else:
                    delay = 0.1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                self._wake.clear()
        finally:
            await self._drain()
            await self._http.aclose()

    async def _pass_safely(self) -> float | None:
        """One pass; how long to sleep after it (None: it failed, back off)."""
        try:
            return await self._pass()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database is away, say: try again shortly
            log.warning("webhook dispatcher: %s: %s; retrying", type(exc).__name__, exc)
            return None

    async def _pass(self) -> float | None:
        if self._active is None:
            async with self.read_factory() as session:
                self._active = await webhooks.any_active(session)
        if not self._active:
            # No webhook wants events: nothing to make, and nothing to look for until one
            # is switched on (its WebhooksChanged) or a ping or redelivery wakes this loop.
            self._to_make = False
        elif self._to_make:
            await self._make()
        return await self._send_due()

    async def _make(self) -> None:
        while True:
            # Cleared first: a ring during the read asks for another pass.
            self._to_make = False
            async with unit_of_work(self.write_factory) as session:
                made = await webhooks.make_deliveries(
                    session, gap_seconds=self.settings.event_gap_seconds
                )
            if made.locked:
                self._to_make = True  # another worker is at it; look again after it
                return
            if made.made:
                log.debug("made %d webhook deliveries from %d events", made.made, made.read)
            if made.read < webhooks.deliveries.READ_BATCH:
                if made.read:
                    self._to_make = True  # ids may still be open as gaps: look again soon
                return

    async def _send_due(self) -> float:
        """Claim what is due into free slots; the seconds until it should look again."""
        poll = self.settings.webhook_poll_seconds
        free = self.settings.webhook_concurrency - len(self._sending)
        if free <= 0 or self._stopping:
            return poll
        now = utcnow()
        async with self.read_factory() as session:
            found = await webhooks.due(session, now)
        candidates = [i for i in found.ids if i not in self._in_flight]
        if not candidates:
            if found.ids:
                return poll  # ours, in flight: the run's end wakes this loop
            if found.next_at is None:
                return poll if (self._active or self._to_make) else 3600.0
            return min(poll, max((found.next_at - now).total_seconds(), 0.01))
        async with unit_of_work(self.write_factory) as session:
            runs = await webhooks.claim(
                session, sender=self.id, now=now, lease=self._lease, heads=free, run=RUN,
                candidates=candidates,
            )
        for run in runs:
            self._in_flight.update(d.id for d in run)
            task = asyncio.create_task(self._send_run(run), name="webhook-send")
            self._sending.add(task)
            task.add_done_callback(self._sent)
        return 0.0 if len(runs) == free else poll

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook send failed", exc_info=task.exception())
        self._wake.set()

    async def _send_run(self, run: list[webhooks.Claimed]) -> None:
        try:
            await self._send_in_order(run)
        finally:
            self._in_flight.difference_update(d.id for d in run)

    async def _send_in_order(self, run: list[webhooks.Claimed]) -> None:
        assert self._http is not None
        timeout = self.settings.webhook_timeout
        # Each send starts only while the claim outlasts a whole timeout from now.
        lease_end = time.monotonic() + self._lease.total_seconds()
        attempts: list[webhooks.Attempt] = []
        unsent: list[int] = []
        for index, delivery in enumerate(run):
            # (The first always goes: its claim was made to outlast one timeout.)
            if self._stopping or (index and time.monotonic() + timeout > lease_end):
                unsent = [d.id for d in run[index:]]
                break
            attempt = await sender.send(self._http, self.guard, delivery, timeout=timeout)
            attempts.append(attempt)
            if not attempt.ok:
                unsent = [d.id for d in run[index + 1:]]  # the order waits for this one
                break
            if len(attempts) == RECORD_EVERY:
                # Recorded as the run goes: a worker killed mid-run resends at most these.
                await self._record(attempts, [])
                attempts = []
        await self._record(attempts, unsent)

    async def _record(self, attempts: list[webhooks.Attempt], unsent: list[int]) -> None:
        if not attempts and not unsent:
            return
        settings = self.settings
        for tries in range(5):
            try:
                async with unit_of_work(self.write_factory, self.publish) as session:
                    result = await webhooks.record(
                        session,
                        self.id,
                        attempts,
                        unsent,
                        now=utcnow(),
                        max_attempts=settings.webhook_max_attempts,
                        backoff=partial(sender.backoff, settings.webhook_backoff),
                        deactivate_after=DEACTIVATE_AFTER,
                    )
                    for webhook_id in result.deactivated:
                        events.record(session, WebhooksChanged(webhook_id))
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Unrecorded, the claims lapse and the deliveries go again: at least once.
                log.warning("webhook results not recorded (%s); retrying", exc)
                await asyncio.sleep(0.2 * 2**tries)
        else:
            return
        if self.metrics is not None:
            self.metrics.webhook_attempts(result.delivered, result.failed, result.gave_up,
                                          len(result.deactivated))
        for webhook_id in result.deactivated:
            log.warning(
                "webhook %d deactivated: %d deliveries in a row gave up",
                webhook_id, DEACTIVATE_AFTER,
            )

    async def stop(self, task: asyncio.Task[None], grace: float) -> None:
        """Stop claiming; let sends in flight finish and be recorded for up to ``grace``."""
        self._stopping = True
        self._wake.set()
        await asyncio.wait({task}, timeout=grace)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _drain(self) -> None:
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=self.settings.webhook_timeout + 1)
        for task in list(self._sending):
            task.cancel()
