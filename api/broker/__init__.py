"""Event brokers for subscriptions, picked by ``STOCKROOM_BROKER_URL``."""

from __future__ import annotations

from api.broker.base import BrokerBackend, SubscriberTooSlow
from api.broker.memory import MemoryBroker


def create_broker(url: str, *, queue_size: int = 256) -> BrokerBackend:
    if url.startswith("memory://"):
        return MemoryBroker(queue_size=queue_size)
    if url.startswith(("redis://", "rediss://")):
        from api.broker.redis import RedisBroker

        return RedisBroker(url, queue_size=queue_size)
    if url.startswith(("postgresql://", "postgres://")):
        from api.broker.postgres import PostgresBroker

        return PostgresBroker(url, queue_size=queue_size)
    raise ValueError(f"unsupported broker URL: {url}")


__all__ = ["BrokerBackend", "MemoryBroker", "SubscriberTooSlow", "create_broker"]
