"""The in-memory rate limiter decides exactly as the ``limits`` library's memory storage."""

from __future__ import annotations

import random

import pytest
from limits import parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from api.ratelimit import MemoryWindows


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize("limit", ["5/2second", "3/minute", "20/second"])
async def test_the_same_hits_are_allowed_and_refused_as_by_limits(
    limit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given both limiters on one clock, and a burst-and-pause pattern from three clients
    clock = Clock()
    monkeypatch.setattr("time.time", clock)
    item = parse(limit)
    reference = SlidingWindowCounterRateLimiter(storage_from_string("async+memory://"))
    ours = MemoryWindows(item, clock=clock)
    expiry = item.get_expiry()
    rng = random.Random(limit)
    decisions = []
    for _ in range(150):
        # a pause, then a burst from one client of up to a few more hits than the limit
        clock.t += rng.choice([0.0, expiry / 7, expiry * 0.6, expiry * 1.3, expiry * 2.5])
        key = rng.choice(["user:1", "user:2", "ip:10.0.0.1"])
        for _ in range(rng.randint(1, item.amount + 3)):
            clock.t += expiry / 200
            # when each sees the same hit
            allowed = await reference.hit(item, key)
            retry = ours.hit(key)
            # then they agree on it, and on how long a refused client must wait
            if allowed:
                assert retry is None, (clock.t, key)
            else:
                stats = await reference.get_window_stats(item, key)
                assert retry == max(1.0, -(-(stats.reset_time - clock.t) // 1)), (clock.t, key)
            decisions.append(allowed)
    assert any(decisions) and not all(decisions)  # both outcomes were exercised


def test_idle_clients_are_forgotten() -> None:
    clock = Clock()
    windows = MemoryWindows(parse("10/second"), clock=clock)
    for n in range(5000):
        windows.hit(f"ip:{n}")
        clock.t += 0.01
    # only the clients of the last two windows are still held
    assert len(windows._windows) < 1100
