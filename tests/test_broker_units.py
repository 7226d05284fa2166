"""Doorbell brokers directly: rings between instances, catching up after a reconnect."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager

import pytest

from api.broker import BrokerBackend, create_broker


class Heard:
    """What one broker's listener was told."""

    def __init__(self, broker: BrokerBackend) -> None:
        self.rings: list[int | None] = []
        self.arrived = asyncio.Event()
        broker.listen(self)

    def __call__(self, upto: int | None) -> None:
        self.rings.append(upto)
        self.arrived.set()

    async def ring(self, upto: int, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while upto not in self.rings:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), max(0.01, deadline - time.monotonic()))


@asynccontextmanager
async def brokers(url: str, count: int = 2):
    made = [create_broker(url) for _ in range(count)]
    heard = [Heard(broker) for broker in made]
    for broker in made:
        await broker.start()
    for _ in range(100):
        if all([await b.healthy() for b in made]):
            break
        await asyncio.sleep(0.05)
    try:
        yield list(zip(made, heard, strict=True))
    finally:
        for broker in made:
            await broker.close()


@pytest.fixture(params=["memory", "redis", "postgres"])
def broker_url(request):
    if request.param == "memory":
        return "memory://"
    if request.param == "redis":
        return request.getfixturevalue("redis_server").url
    return request.getfixturevalue("postgres_server").dsn


async def test_a_ring_reaches_this_worker_at_once_and_the_others_through_the_broker(
    broker_url,
):
    shared = broker_url != "memory://"
    async with brokers(broker_url) as [(a, heard_a), (_b, heard_b)]:
        # when one instance rings for event 41
        a.ring(41)
        # then its own listener heard it before ring() returned, without the round trip
        assert 41 in heard_a.rings
        # and the other instance hears it through the service (the memory broker has none)
        if shared:
            await heard_b.ring(41)
        else:
            await asyncio.sleep(0.2)
            assert 41 not in heard_b.rings


async def test_rings_coalesce_while_one_is_being_sent(redis_server):
    async with brokers(redis_server.url) as [(a, _), (_b, heard_b)]:
        for upto in range(1, 51):
            a.ring(upto)
        await heard_b.ring(50)
        # fewer sends than rings, and never an older id after a newer one
        remote = [r for r in heard_b.rings if r is not None]
        assert remote == sorted(remote) and len(remote) < 50


@pytest.mark.redis
async def test_redis_outage_never_blocks_a_ring_and_reconnect_asks_for_a_read(redis_server):
    async with brokers(redis_server.url, count=1) as [(broker, heard)]:
        heard.rings.clear()
        redis_server.stop()
        for _ in range(100):
            if not broker.connected:
                break
            await asyncio.sleep(0.05)
        assert not broker.connected
        # a ring while the broker is away returns at once and still reaches this worker
        started = time.monotonic()
        broker.ring(7)
        assert time.monotonic() - started < 0.05 and 7 in heard.rings
        redis_server.start()
        # after reconnecting the listener is told it may have missed rings (None): read now
        for _ in range(400):
            if None in heard.rings:
                break
            await asyncio.sleep(0.05)
        assert None in heard.rings and broker.connected
