"""The throwaway servers the suite relies on really start, answer, and survive a restart."""

from __future__ import annotations

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.throwaway import PostgresServer, RedisServer


async def _select_one(dsn: str) -> int:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        value: int = await conn.fetchval("SELECT 1")
        return value
    finally:
        await conn.close()


async def _ping(url: str) -> bool:
    client = aioredis.from_url(url)
    try:
        return bool(await client.ping())
    finally:
        await client.aclose()


@pytest.mark.postgres
async def test_postgres_answers(postgres_server: PostgresServer) -> None:
    assert postgres_server.url.startswith("postgresql+asyncpg://postgres@127.0.0.1:")
    assert await _select_one(postgres_server.dsn) == 1


@pytest.mark.postgres
async def test_postgres_creates_fresh_databases(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database("throwaway_probe")
    assert url == postgres_server.url_for("throwaway_probe")
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute("CREATE TABLE probe (id int)")
    finally:
        await conn.close()
    # Creating it again starts empty: the old copy (and its table) is dropped.
    postgres_server.create_database("throwaway_probe")
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        assert await conn.fetchval("SELECT to_regclass('probe')") is None
        assert await conn.fetchval("SHOW max_connections") == "300"
    finally:
        await conn.close()


@pytest.mark.postgres
async def test_postgres_restarts(postgres_server: PostgresServer) -> None:
    postgres_server.stop()
    with pytest.raises(OSError):
        await asyncpg.connect(postgres_server.dsn, timeout=5)
    postgres_server.start()
    assert await _select_one(postgres_server.dsn) == 1


@pytest.mark.redis
async def test_redis_answers_and_restarts(redis_server: RedisServer) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert await _ping(redis_server.url)
    redis_server.stop()
    with pytest.raises(aioredis.ConnectionError):
        await _ping(redis_server.url)
    redis_server.start()
    assert await _ping(redis_server.url)
