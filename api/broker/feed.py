"""Each worker's one reader of the event log, handing new events to its subscriptions.

The feed reads when the broker rings, when the hub asks (a resuming subscriber from a worker
that is further on), and every ``poll_seconds`` regardless: a worker that starts, reconnects
to its broker or simply missed a ring catches up from the last position it handed on. Every
row is read once per worker however many subscribers want it. Gaps (ids not committed yet)
stay open for ``gap_seconds`` (see ``db/eventlog.py``) and are then given up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import eventlog
from db.eventlog import Delivery, Position
from db.models import utcnow

log = logging.getLogger("stockroom.feed")

BATCH = 500
CHECKPOINT_SECONDS = 0.1


class EventSink(Protocol):
    """Where the feed hands events (this worker's ``schema.fanout.Hub``)."""

    def start(self, position: Position) -> None: ...

    def dispatch(self, deliveries: list[Delivery], position: Position) -> None: ...


class EventFeed:
    """Follows the log from this worker's position; see the module docstring."""

    def __init__(
        self,
        read_factory: async_sessionmaker[AsyncSession],
        sink: EventSink,
        *,
        poll_seconds: float,
        gap_seconds: float,
    ) -> None:
        self._factory = read_factory
        self._sink = sink
        self._poll = poll_seconds
        self._gap = gap_seconds
        self.position: Position | None = None
        self.reads = 0
        self._wanted = asyncio.Event()
        # Others on this worker that follow the log too (the webhook dispatcher).
        self._listeners: list[Callable[[list[Delivery]], None]] = []
        self._task: asyncio.Task[None] | None = None
        # (monotonic time, high) as reads went by, one per CHECKPOINT_SECONDS: a gap at or
        # below the high seen one window ago was taken before then, so its window is over.
        self._checkpoints: deque[tuple[float, int]] = deque()

    def listen(self, listener: Callable[[list[Delivery]], None]) -> None:
        """Also hand every batch of new events to ``listener`` (it must not block)."""
        self._listeners.append(listener)

    def wake(self, upto: int | None = None) -> None:
        """Read the log soon: a commit rang for ``upto`` (None: something may be new)."""
        position = self.position
        if upto is not None and position is not None and upto <= position.high:
            if not position.gaps or position.gaps[0][0] > upto:
                return  # nothing this worker lacks: a ring it already read past
        self._wanted.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-feed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        delay, failing = 0.1, False
        while True:
            try:
                if self.position is None:
                    await self._begin()
                else:
                    await self._read_all()
                if failing:
                    log.info("event log readable again")
                delay, failing = 0.1, False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: keep the position, retry
                if not failing:
                    log.warning("cannot read the event log (%s); retrying", exc)
                failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._poll)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), self._poll)
            self._wanted.clear()

    async def _begin(self) -> None:
        window_start = utcnow() - timedelta(seconds=self._gap)
        async with self._factory() as session:
            position = await eventlog.start_position(session, window_start)
        self.position = position
        self._checkpoints.append((time.monotonic(), position.high))
        self._sink.start(position)

    async def _read_all(self) -> None:
        while True:
            assert self.position is not None
            self._wanted.clear()  # a ring from here on asks for another read
            async with self._factory() as session:
                rows = await eventlog.read_new(session, self.position, BATCH)
            self.reads += 1
            position = self.position
            deliveries: list[Delivery] = []
            for row in rows:
                position = position.after(row.id)
                logged = row.decoded()
                if logged is not None:
                    deliveries.append(Delivery(logged, position))
            position = self._expire(position).capped()
            if deliveries or position != self.position:
                self.position = position
                self._sink.dispatch(deliveries, position)
                if deliveries:
                    for listener in self._listeners:
                        listener(deliveries)
            if len(rows) < BATCH:
                return

    def _expire(self, position: Position) -> Position:
        now = time.monotonic()
        marks = self._checkpoints
        if marks and now - marks[-1][0] < CHECKPOINT_SECONDS:
            marks[-1] = (marks[-1][0], position.high)  # one mark per interval: the latest high
        else:
            marks.append((now, position.high))
        # A mark's high was seen by the end of its interval at the latest.
        settled_before = now - self._gap - CHECKPOINT_SECONDS
        while len(marks) > 1 and marks[1][0] <= settled_before:
            marks.popleft()
        if marks[0][0] <= settled_before:
            return position.forget_gaps_through(marks[0][1])
        return position
