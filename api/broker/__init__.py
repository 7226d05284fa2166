"""Doorbell brokers for the event log, picked by ``STOCKROOM_BROKER_URL``."""

from __future__ import annotations

from api.broker.base import BrokerBackend
from api.broker.memory import MemoryBroker


def create_broker(url: str) -> BrokerBackend:
    if url.startswith("memory://"):
        return MemoryBroker()
    if url.startswith(("redis://", "rediss://")):
        from api.broker.redis import RedisBroker

        return RedisBroker(url)
    if url.startswith(("postgresql://", "postgres://")):
        from api.broker.postgres import PostgresBroker

        return PostgresBroker(url)
    raise ValueError(f"unsupported broker URL: {url}")


__all__ = ["BrokerBackend", "MemoryBroker", "create_broker"]
