"""Redis pub/sub doorbell: every worker and host on one Redis hears each commit's ring."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from redis import asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api.broker.base import BrokerBackend

log = logging.getLogger("stockroom.broker")
CHANNEL = "stockroom:events"


class RedisBroker(BrokerBackend):
    name = "redis"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.connected = False
        self._client: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._client = aioredis.from_url(self.url, socket_connect_timeout=2,
                                         health_check_interval=5)
        self._reader = asyncio.create_task(self._run(), name="redis-broker")

    async def close(self) -> None:
        await super().close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
        if self._client is not None:
            await self._client.aclose()

    async def _run(self) -> None:
        """Listen forever; on a dropped connection, reconnect with backoff and catch up."""
        assert self._client is not None
        delay, was_connected = 0.1, False
        while True:
            try:
                pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                self._pubsub = pubsub
                await pubsub.subscribe(CHANNEL)
                self.connected = True
                if was_connected:
                    log.info("broker reconnected to %s", self.name)
                was_connected, delay = True, 0.1
                self.heard(None)  # rings sent while we were away are lost: read the log
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        with contextlib.suppress(ValueError):
                            self.heard(int(message["data"]))
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

    async def _send(self, upto: int) -> None:
        assert self._client is not None
        await self._client.publish(CHANNEL, str(upto))

    async def healthy(self) -> bool:
        if self._client is None or not self.connected:
            return False
        try:
            return bool(await asyncio.wait_for(self._client.ping(), 1.0))
        except (RedisError, RedisTimeoutError, OSError, TimeoutError):
            return False
