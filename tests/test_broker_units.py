"""Broker backends directly: fan-out between instances, slow subscribers, big payloads."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import pytest

from api.broker import SubscriberTooSlow, create_broker


@asynccontextmanager
async def brokers(url: str, count: int = 2, queue_size: int = 256):
    made = [create_broker(url, queue_size=queue_size) for _ in range(count)]
    for broker in made:
        await broker.start()
    for _ in range(100):
        if all([await b.healthy() for b in made]):
            break
        await asyncio.sleep(0.05)
    try:
        yield made
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


async def test_publish_reaches_subscribers_of_that_channel_only(broker_url):
    shared = broker_url != "memory://"
    async with brokers(broker_url) as (a, b):
        publisher = b if shared else a
        async with a.subscribe("stock") as stock, a.subscribe("items") as items:
            await asyncio.sleep(0.2)  # the backend subscribes asynchronously
            await publisher.publish("stock", {"channel": "stock", "itemId": 1})
            got = await asyncio.wait_for(anext(stock), 5)
            assert got["itemId"] == 1
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(anext(items), 0.3)
        assert a.subscriber_count == 0


async def test_slow_subscriber_is_cut_off_and_others_continue(broker_url):
    async with (
        brokers(broker_url, count=1, queue_size=2) as (broker,),
        broker.subscribe("stock") as slow,
        broker.subscribe("stock") as fast,
    ):
        await asyncio.sleep(0.2)
        received = []
        for n in range(10):
            await broker.publish("stock", {"n": n})
            received.append(await asyncio.wait_for(anext(fast), 5))
        assert [m["n"] for m in received] == list(range(10))
        with pytest.raises(SubscriberTooSlow):
            await _drain(slow, 10)


async def _drain(events, count: int) -> None:
    for _ in range(count):
        await asyncio.wait_for(anext(events), 5)


@pytest.mark.postgres
async def test_postgres_oversized_payload_sends_ids_only(postgres_server):
    async with brokers(postgres_server.dsn) as (a, b), a.subscribe("stock") as events:
        await asyncio.sleep(0.2)
        await b.publish("stock", {"channel": "stock", "itemId": 7, "movementId": 9,
                                  "reason": "x" * 9000})
        got = await asyncio.wait_for(anext(events), 5)
    assert got == {"channel": "stock", "itemId": 7, "movementId": 9, "truncated": True}
