"""Redis pub/sub broker: events shared by every worker and host on one Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from redis import asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api.broker.base import BrokerBackend

log = logging.getLogger("stockroom.broker")
PREFIX = "stockroom:"
PUBLISH_RETRY_SECONDS = 5.0


class RedisBroker(BrokerBackend):
    name = "redis"

    def __init__(self, url: str, *, queue_size: int = 256) -> None:
        super().__init__(queue_size=queue_size)
        self.url = url
        self.connected = False
        self._client: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._client = aioredis.from_url(self.url, socket_connect_timeout=2,
                                         health_check_interval=5)
        self._reader = asyncio.create_task(self._run(), name="redis-broker")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
        if self._client is not None:
            await self._client.aclose()

    async def _connect(self) -> None:
        assert self._client is not None
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        # A placeholder channel keeps the connection in subscribe mode even when idle.
        channels = [PREFIX + "_"] + [PREFIX + c for c in self._subscribers]
        await pubsub.subscribe(*channels)
        self._pubsub = pubsub

    async def _run(self) -> None:
        """Read messages forever; on a dropped connection, reconnect with backoff."""
        delay = 0.1
        while True:
            try:
                async with self._lock:
                    await self._connect()
                if not self.connected:
                    if delay > 0.1:
                        log.info("broker reconnected to %s", self.name)
                    self.connected = True
                delay = 0.1
                async for message in self._pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    channel = message["channel"].decode().removeprefix(PREFIX)
                    self.deliver(channel, orjson.loads(message["data"]))
                raise RedisConnectionError("subscription ended")
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self.connected:
                    log.warning("broker connection lost (%s), reconnecting", exc)
                self.connected = False
                with contextlib.suppress(RedisError, OSError):
                    if self._pubsub is not None:
                        await self._pubsub.aclose()
                self._pubsub = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _on_first_subscriber(self, channel: str) -> None:
        async with self._lock:
            if self._pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.subscribe(PREFIX + channel)

    async def _on_last_unsubscribe(self, channel: str) -> None:
        async with self._lock:
            if self._pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.unsubscribe(PREFIX + channel)

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        """Publish; while Redis is away retry briefly, then drop with an error logged.

        The change is already committed: a broker outage must not fail the mutation.
        """
        assert self._client is not None
        payload = orjson.dumps(message)
        deadline = asyncio.get_running_loop().time() + PUBLISH_RETRY_SECONDS
        while True:
            try:
                await self._client.publish(PREFIX + channel, payload)
                return
            except (RedisError, OSError) as exc:
                if asyncio.get_running_loop().time() > deadline:
                    log.error("dropped a %s event: broker unavailable (%s)", channel, exc)
                    return
                await asyncio.sleep(0.2)

    async def healthy(self) -> bool:
        if self._client is None or not self.connected:
            return False
        try:
            return bool(await asyncio.wait_for(self._client.ping(), 1.0))
        except (RedisError, RedisTimeoutError, OSError, TimeoutError):
            return False
