"""The broker contract and the local fan-out every backend shares."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from db.events import Event, encode
from schema.context import SubscriberTooSlow

__all__ = ["BrokerBackend", "SubscriberTooSlow"]

log = logging.getLogger("stockroom.broker")


class _Subscriber:
    __slots__ = ("overflowed", "queue")

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=size)
        self.overflowed = False

    def offer(self, message: dict[str, Any]) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflowed = True


class BrokerBackend:
    """Fan-out to local subscribers; subclasses carry messages between processes."""

    name = "base"

    def __init__(self, *, queue_size: int = 256) -> None:
        self._queue_size = queue_size
        self._subscribers: dict[str, set[_Subscriber]] = defaultdict(set)
        self.connected = True

    async def start(self) -> None:
        """Connect to the backing service, if any."""

    async def close(self) -> None:
        """Disconnect."""

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        self.deliver(channel, message)

    async def publish_events(self, events: list[Event]) -> None:
        """Announce committed domain events, each on its channel (a ``db.session.Publisher``)."""
        for event in events:
            await self.publish(event.channel, encode(event))

    def deliver(self, channel: str, message: dict[str, Any]) -> None:
        """Hand a message to every local subscriber without waiting on any of them."""
        for subscriber in list(self._subscribers.get(channel, ())):
            subscriber.offer(message)

    async def _on_first_subscriber(self, channel: str) -> None:
        """Backends start listening on the channel here."""

    async def _on_last_unsubscribe(self, channel: str) -> None:
        """Backends stop listening on the channel here."""

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    async def healthy(self) -> bool:
        return self.connected

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        subscriber = _Subscriber(self._queue_size)
        first = not self._subscribers.get(channel)
        self._subscribers[channel].add(subscriber)
        try:
            if first:
                await self._on_first_subscriber(channel)
            yield self._drain(subscriber)
        finally:
            subscribers = self._subscribers.get(channel)
            if subscribers is not None:
                subscribers.discard(subscriber)
                if not subscribers:
                    del self._subscribers[channel]
                    await self._on_last_unsubscribe(channel)

    @staticmethod
    async def _drain(subscriber: _Subscriber) -> AsyncIterator[dict[str, Any]]:
        while True:
            if subscriber.overflowed and subscriber.queue.empty():
                raise SubscriberTooSlow("subscriber fell too far behind the event stream")
            message = await subscriber.queue.get()
            if subscriber.overflowed:
                raise SubscriberTooSlow("subscriber fell too far behind the event stream")
            yield message
