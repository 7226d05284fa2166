"""Per-user and per-IP rate limits (sliding window counter), in memory or Redis.

The sliding window counter is O(1) per hit: two counters per key weighted by the window's
elapsed share. A moving window keeps one entry per request in the window, so its cost and
memory grow with the limit (600/minute is 600 entries per client; more is worse).

Redis goes through the ``limits`` library. In memory (the default, one worker's own
counts) every request is a hit, so the same algorithm is a few dictionary operations here:
``limits``' asynchronous memory storage took locks and several awaits per hit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string


@dataclass(slots=True)
class _Window:
    index: int  # which window of ``expiry`` seconds since the epoch ``current`` counts
    current: int
    previous: int


class MemoryWindows:
    """One limit's sliding window counters in this process, as ``limits``' memory storage
    keeps them: windows aligned on multiples of the period, the previous one weighted by
    what is left of it, a hit refused when the weighted count would pass the limit."""

    def __init__(self, item: RateLimitItem, clock: Callable[[], float] = time.time) -> None:
        self._limit = item.amount
        self._expiry = item.get_expiry()
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._sweep_at = 1024

    def hit(self, key: str) -> float | None:
        """None when allowed (and counted); otherwise seconds until a hit would be."""
        limit, expiry = self._limit, self._expiry
        now = self._clock()
        index = int(now // expiry)
        window = self._windows.get(key)
        if window is None or window.index < index - 1:
            window = self._windows[key] = _Window(index, 0, 0)
            if len(self._windows) >= self._sweep_at:
                self._sweep(index)
        elif window.index == index - 1:
            window.index, window.current, window.previous = index, 0, window.current
        left = expiry - (now - index * expiry)  # of the current window: the previous' weight
        weighted = window.previous * left / expiry + window.current
        if math.floor(weighted) + 1 <= limit:
            window.current += 1
            return None
        reset = math.inf
        if window.previous:
            reset = left % (expiry / window.previous)
        if window.current:
            reset = min(reset, left)
        return max(1.0, math.ceil(reset))

    def _sweep(self, index: int) -> None:
        # Keys idle for two windows count nothing any more.
        self._windows = {k: w for k, w in self._windows.items() if w.index >= index - 1}
        self._sweep_at = max(1024, 2 * len(self._windows))


class RateLimiter:
    def __init__(self, storage_url: str, default: str, login: str) -> None:
        self._default = parse(default)
        self._login = parse(login)
        self._memory: dict[int, MemoryWindows] | None = None
        self._limiter: SlidingWindowCounterRateLimiter | None = None
        if storage_url.startswith("memory://"):
            self._memory = {id(item): MemoryWindows(item) for item in (self._default, self._login)}
        else:
            storage = storage_from_string(
                storage_url.replace("redis://", "async+redis://", 1)
                if storage_url.startswith("redis://")
                else storage_url
            )
            self._limiter = SlidingWindowCounterRateLimiter(storage)

    async def _hit(self, item: RateLimitItem, key: str) -> float | None:
        """None when allowed; otherwise seconds until a request would be allowed."""
        if self._memory is not None:
            return self._memory[id(item)].hit(key)
        assert self._limiter is not None
        if await self._limiter.hit(item, key):
            return None
        stats = await self._limiter.get_window_stats(item, key)
        return max(1.0, math.ceil(stats.reset_time - time.time()))

    async def request(self, key: str) -> float | None:
        return await self._hit(self._default, key)

    async def login(self, client: str) -> float | None:
        return await self._hit(self._login, f"login:{client}")
