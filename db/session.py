"""Per-request database access shared by resolvers and dataloader batches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import eventlog
from db.eventlog import Logged
from db.events import pending

P = ParamSpec("P")
T = TypeVar("T")


class Reader:
    """One read session per request, used by one coroutine at a time.

    Dataloaders dispatch several batches concurrently and an AsyncSession refuses
    concurrent use, so every read goes through one lock. The session is opened lazily and
    ``reset`` ends its transaction so reads after a mutation's commit see the new rows.
    """

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = factory
        self._session: AsyncSession | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    async def __call__(
        self,
        fn: Callable[Concatenate[AsyncSession, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        async with self._lock:
            if self._closed:
                # A stray batch after the response (a sibling field already failed):
                # its result is discarded, so refuse rather than reopen a session.
                raise RuntimeError("the request is finished")
            if self._session is None:
                self._session = self._factory()
            return await fn(self._session, *args, **kwargs)

    async def reset(self) -> None:
        async with self._lock:
            if self._session is not None:
                await self._session.rollback()

    async def close(self) -> None:
        # Under the lock: a batch still running must finish before its session closes.
        async with self._lock:
            self._closed = True
            session, self._session = self._session, None
            if session is not None:
                await session.close()


Publisher = Callable[[Sequence[Logged]], Awaitable[None]]


@asynccontextmanager
async def unit_of_work(
    factory: async_sessionmaker[AsyncSession], publish: Publisher | None = None
) -> AsyncIterator[AsyncSession]:
    """One transaction that commits on success, rolls back on any exception.

    The events the services recorded are written to the event log as the transaction's last
    statement, so they commit or roll back with the change. After the commit ``publish``
    (the broker's doorbell) hears which were written; a lost doorbell only delays readers,
    who find the rows in the log anyway.
    """
    async with factory() as session, session.begin():
        yield session
        logged = await eventlog.write(session, pending(session))
    if logged and publish is not None:
        await publish(logged)
