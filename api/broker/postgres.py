"""PostgreSQL LISTEN/NOTIFY broker: events shared through the database itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
import orjson

from api.broker.base import BrokerBackend

log = logging.getLogger("stockroom.broker")
PREFIX = "stockroom_"
NOTIFY_LIMIT = 7900  # NOTIFY refuses payloads of 8000 bytes or more
PUBLISH_RETRY_SECONDS = 5.0


def _ids_only(message: dict[str, Any]) -> dict[str, Any]:
    """What still fits: the ids a subscriber needs to re-read the rows itself."""
    slim = {k: v for k, v in message.items()
            if k in ("channel", "kind") or k.endswith(("Id", "Ids", "_id", "_ids"))}
    slim["truncated"] = True
    return slim


class PostgresBroker(BrokerBackend):
    name = "postgres"

    def __init__(self, url: str, *, queue_size: int = 256) -> None:
        super().__init__(queue_size=queue_size)
        self.dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self.connected = False
        self._listener: asyncpg.Connection | None = None
        self._sender: asyncpg.Connection | None = None
        self._watch: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._watch = asyncio.create_task(self._keep_connected(), name="pg-broker")

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for conn in (self._listener, self._sender):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)

    def _on_notify(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        self.deliver(channel.removeprefix(PREFIX), orjson.loads(payload))

    async def _connect(self) -> None:
        listener = await asyncpg.connect(self.dsn, timeout=5)
        listener.add_termination_listener(lambda _conn: self._lost.set())
        for channel in list(self._subscribers):
            await listener.add_listener(PREFIX + channel, self._on_notify)
        self._listener = listener
        self._sender = await asyncpg.connect(self.dsn, timeout=5)

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
                for conn in (self._listener, self._sender):
                    if conn is not None:
                        conn.terminate()
                self._listener = self._sender = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _on_first_subscriber(self, channel: str) -> None:
        async with self._lock:
            if self._listener is not None:
                with contextlib.suppress(Exception):
                    await self._listener.add_listener(PREFIX + channel, self._on_notify)

    async def _on_last_unsubscribe(self, channel: str) -> None:
        async with self._lock:
            if self._listener is not None:
                with contextlib.suppress(Exception):
                    await self._listener.remove_listener(PREFIX + channel, self._on_notify)

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        payload = orjson.dumps(message)
        if len(payload) > NOTIFY_LIMIT:
            payload = orjson.dumps(_ids_only(message))
        deadline = asyncio.get_running_loop().time() + PUBLISH_RETRY_SECONDS
        while True:
            sender = self._sender
            try:
                if sender is None:
                    raise ConnectionError("not connected")
                await sender.execute("SELECT pg_notify($1, $2)", PREFIX + channel,
                                     payload.decode())
                return
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
                    ConnectionError) as exc:
                if asyncio.get_running_loop().time() > deadline:
                    log.error("dropped a %s event: broker unavailable (%s)", channel, exc)
                    return
                await asyncio.sleep(0.2)

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
