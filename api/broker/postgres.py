"""PostgreSQL LISTEN/NOTIFY doorbell: the database that holds the log also rings for it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

from api.broker.base import BrokerBackend

log = logging.getLogger("stockroom.broker")
CHANNEL = "stockroom_events"


class PostgresBroker(BrokerBackend):
    name = "postgres"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self.connected = False
        self._listener: asyncpg.Connection | None = None
        self._notifier: asyncpg.Connection | None = None
        self._watch: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._watch = asyncio.create_task(self._keep_connected(), name="pg-broker")

    async def close(self) -> None:
        await super().close()
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for conn in (self._listener, self._notifier):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError):
            self.heard(int(payload))

    async def _connect(self) -> None:
        listener = await asyncpg.connect(self.dsn, timeout=5)
        listener.add_termination_listener(lambda _conn: self._lost.set())
        await listener.add_listener(CHANNEL, self._on_notify)
        self._listener = listener
        self._notifier = await asyncpg.connect(self.dsn, timeout=5)

    async def _keep_connected(self) -> None:
        delay, reconnecting = 0.1, False
        while True:
            try:
                async with self._lock:
                    await self._connect()
                self.connected = True
                if reconnecting:
                    log.info("broker reconnected to %s", self.name)
                delay, reconnecting = 0.1, False
                self._lost.clear()
                self.heard(None)  # rings sent while we were away are lost: read the log
                # asyncpg reports a lost listener only when it next uses the socket: probe.
                while not self._lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._lost.wait(), 1.0)
                    if not self._lost.is_set():
                        assert self._listener is not None
                        async with self._lock:  # one operation at a time per connection
                            await self._listener.execute("SELECT 1")
                raise ConnectionError("listener connection closed")
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
                    ConnectionError, TimeoutError) as exc:
                if self.connected:
                    log.warning("broker connection lost (%s), reconnecting", exc)
                self.connected, reconnecting = False, True
                for conn in (self._listener, self._notifier):
                    if conn is not None:
                        conn.terminate()
                self._listener = self._notifier = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _send(self, upto: int) -> None:
        sender = self._notifier
        if sender is None:
            raise ConnectionError("not connected")
        await sender.execute("SELECT pg_notify($1, $2)", CHANNEL, str(upto))

    async def healthy(self) -> bool:
        listener = self._listener
        if listener is None or not self.connected:
            return False
        try:
            async with self._lock:
                await asyncio.wait_for(listener.execute("SELECT 1"), 1.0)
            return True
        except Exception:  # any failure means not healthy
            return False
