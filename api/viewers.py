"""Who a token stands for, without a database round trip on every request.

A request's viewer needs the user's current role, whether they are active, and their token
version (bumping it revokes every older token). Reading that row per request was one of the
two statements of a one-row query; each worker keeps it instead, per user, for a short while:

- the worker that commits a change (role, deactivation, password: ``db.events.UserChanged``)
  forgets the user before it answers the mutation, so its next request reads the new row;
- every other worker uses an entry for at most ``ttl`` seconds after its read *started*, so a
  request that starts ``ttl`` after the commit reads the committed row. This bound needs no
  broker (a change made while it is down, or from the CLI or SQL, is covered the same way);
  the default 0.5 s keeps "a revoked token stops working on every worker within a second".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import users
from db.events import Event, UserChanged
from db.session import Publisher

# Far more users than any worker serves at once; a full cache starts over (one read each).
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class _Entry:
    state: users.TokenState | None
    fresh_until: float


@dataclass(slots=True)
class _Load:
    task: asyncio.Future[users.TokenState | None]
    epoch: int


class ViewerCache:
    """Per-worker cache of users' token state, each entry trusted for at most ``ttl`` s."""

    def __init__(
        self,
        read_factory: async_sessionmaker[AsyncSession],
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = read_factory
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[int, _Entry] = {}
        self._loading: dict[int, _Load] = {}
        # Bumped by every forget: a read that started before it must not be stored after it.
        self._epoch = 0

    async def state(self, user_id: int) -> users.TokenState | None:
        """The user's token state as the database had it less than ``ttl`` seconds ago."""
        entry = self._entries.get(user_id)
        if entry is not None and entry.fresh_until > self._clock():
            return entry.state
        load = self._loading.get(user_id)
        if load is None or load.epoch != self._epoch:
            # One read per user however many requests miss at once.
            load = _Load(asyncio.ensure_future(self._read(user_id)), self._epoch)
            self._loading[user_id] = load
            load.task.add_done_callback(lambda _: self._done(user_id, load))
        # Shielded: one waiter giving up (its client went away) must not cancel the others'.
        return await asyncio.shield(load.task)

    async def _read(self, user_id: int) -> users.TokenState | None:
        started, epoch = self._clock(), self._epoch
        async with self._factory() as session:
            state = await users.token_state(session, user_id)
        if epoch == self._epoch and self._ttl > 0:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[user_id] = _Entry(state, started + self._ttl)
        return state

    def _done(self, user_id: int, load: _Load) -> None:
        if self._loading.get(user_id) is load:
            del self._loading[user_id]
        if not load.task.cancelled():
            load.task.exception()  # retrieved: every waiter sees it; none is left unawaited

    def forget(self, user_id: int) -> None:
        """The user changed: the next request reads their row again."""
        self._epoch += 1
        self._entries.pop(user_id, None)
        self._loading.pop(user_id, None)

    def clear(self) -> None:
        self._epoch += 1
        self._entries.clear()
        self._loading.clear()

    def forgetting(self, publish: Publisher) -> Publisher:
        """``publish``, after forgetting locally every user the committed events changed."""

        async def forget_then_publish(events: list[Event]) -> None:
            for event in events:
                if isinstance(event, UserChanged):
                    self.forget(event.user_id)
            await publish(events)

        return forget_then_publish
