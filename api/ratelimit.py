"""Per-user and per-IP rate limits (sliding window counter), in memory or Redis via ``limits``.

The sliding window counter is O(1) per hit: two counters per key weighted by the window's
elapsed share. A moving window keeps one entry per request in the window, so its cost and
memory grow with the limit (600/minute is 600 entries per client; more is worse).
"""

from __future__ import annotations

import math
import time

from limits import parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string


class RateLimiter:
    def __init__(self, storage_url: str, default: str, login: str) -> None:
        storage = storage_from_string(
            storage_url.replace("redis://", "async+redis://", 1)
            if storage_url.startswith("redis://")
            else storage_url.replace("memory://", "async+memory://", 1)
        )
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._default = parse(default)
        self._login = parse(login)

    async def _hit(self, item: object, key: str) -> float | None:
        """None when allowed; otherwise seconds until a request would be allowed."""
        if await self._limiter.hit(item, key):  # type: ignore[arg-type]
            return None
        stats = await self._limiter.get_window_stats(item, key)  # type: ignore[arg-type]
        return max(1.0, math.ceil(stats.reset_time - time.time()))

    async def request(self, key: str) -> float | None:
        return await self._hit(self._default, key)

    async def login(self, client: str) -> float | None:
        return await self._hit(self._login, f"login:{client}")
