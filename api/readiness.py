"""Readiness probes: the database and the broker, each answered within a second.

The database probe opens its own connection (no pool): under load every pooled connection
may be busy, and a probe that queued behind requests would call a healthy instance down;
with the database gone, a fresh connection fails at once instead of a pooled one that has
not yet noticed. Each probe is bounded, so ``/readyz`` turns 503 within a second of an
outage (a refused connection fails at once, a silent host after ``PROBE_TIMEOUT``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from api.broker import BrokerBackend

PROBE_TIMEOUT = 0.8  # seconds; both probes run at once


class Readiness:
    def __init__(self, database_url: str, broker: BrokerBackend) -> None:
        connect_args: dict[str, Any] = {}
        if database_url.startswith("postgresql"):
            connect_args["timeout"] = PROBE_TIMEOUT  # asyncpg's connect timeout
        self.engine = create_async_engine(database_url, poolclass=NullPool,
                                          connect_args=connect_args)
        self.broker = broker

    async def database(self) -> str:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                async with self.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
        except TimeoutError:
            return "error: no answer within the probe timeout"
        except Exception as exc:  # any failure means not ready; say which
            return f"error: {type(exc).__name__}"
        return "ok"

    async def broker_state(self) -> str:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                healthy = await self.broker.healthy()
        except TimeoutError:
            healthy = False
        return "ok" if healthy else "disconnected"

    async def checks(self) -> dict[str, str]:
        """``{"database": "ok" | "error: …", "broker": "ok" | "disconnected"}``."""
        database, broker = await asyncio.gather(self.database(), self.broker_state())
        return {"database": database, "broker": broker}

    async def close(self) -> None:
        await self.engine.dispose()
