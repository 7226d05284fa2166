"""W4: N WebSocket subscribers on one server; time from the commit to each delivery.

Each delivery is timed twice: from the ``committedAt`` the server stamped on the event as its
transaction wrote it (the target's measure: the mutation's HTTP round trip is not in it), and
from sending the mutation. Executions per event come from the server's ``/metrics``: one per
subscriber group that the event matches, not one per subscriber.

The subscribers are ``bench/wsload.py``'s raw-protocol sockets in child processes, which report
their own CPU per event so that a reader can tell the client's share of a delivery's time from
the server's. ``client="websockets"`` runs the previous client (one ``websockets`` connection
and coroutine per subscriber in this process) for comparison.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

from bench import wsload
from bench.servers import Server
from tests import wsclient
from tests.queries import W4_ADJUST, W4_STOCK_CHANGED

EVENTS_METRIC = "stockroom_subscription_events_total"
EXECUTIONS_METRIC = "stockroom_subscription_executions_total"
ACTIVE_METRIC = "stockroom_active_subscriptions"
GROUPS_METRIC = "stockroom_subscription_groups"
CLIENTS = ("raw", "websockets")


@dataclass(frozen=True)
class FanoutResult:
    subscribers: int
    events: int
    p50_ms: float  # from sending the mutation to the delivery
    p99_ms: float
    last_ms: float
    kib_per_subscriber: float
    commit_p50_ms: float  # from the event's committedAt to its delivery
    commit_p99_ms: float
    executions_per_event: float
    client: str = "raw"
    processes: int = 1  # load generator processes (raw client)
    groups: float = 0.0  # subscription groups on the server while measuring
    commit_first_ms: float = 0.0  # from the commit to the event's first and last delivery
    commit_last_ms: float = 0.0
    server_cpu_ms: float | None = None  # server CPU per event: the mutation and its fan-out
    client_cpu_ms: float | None = None  # load generator CPU per event, all its processes
    client_spread_ms: float | None = None  # widest first-to-last arrival within one process
    client_lag_ms: float | None = None  # the load generator's worst event-loop lag


def _metrics(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in (EVENTS_METRIC, EXECUTIONS_METRIC, ACTIVE_METRIC, GROUPS_METRIC):
            found[name] = float(value)
    return found


def _percentile(ordered: list[float], share: float) -> float:
    return ordered[max(0, int(len(ordered) * share) - 1)]


def _open_files_limit(pid: int) -> int | None:
    """The soft RLIMIT_NOFILE of process ``pid`` (from /proc), None if unreadable."""
    try:
        limits = Path(f"/proc/{pid}/limits").read_text()
    except OSError:
        return None
    for line in limits.splitlines():
        if line.startswith("Max open files"):
            soft = line.split()[3]
            return None if soft == "unlimited" else int(soft)
    return None


def check_file_limits(server: Server, subscribers: int, processes: int) -> None:
    """Fail before opening anything if the server or a client process cannot hold the sockets."""
    margin = 256  # the worker's database pool, log, listening socket, the loop's own fds
    limit = _open_files_limit(server.process.pid)
    if limit is not None and limit < subscribers + margin:
        raise RuntimeError(
            f"the server may open {limit} files, {subscribers} subscribers need about "
            f"{subscribers + margin}: raise `ulimit -n` before starting the bench (its "
            "servers inherit the limit, and `python -m bench` raises it to the hard limit)"
        )
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    per_process = -(-subscribers // processes)
    if hard != resource.RLIM_INFINITY and hard < per_process + margin:
        raise RuntimeError(
            f"the hard open-files limit is {hard}: {per_process} sockets per load generator "
            f"process do not fit; use more processes (--w4-processes) or raise the limit"
        )


def _wait_subscribed(
    url: str, subscribers: int, timeout: float, errors: Any = None
) -> dict[str, float]:
    """Wait until the server's hub counts every subscription: subscribe has no answer in
    graphql-transport-ws, and the last ones sent are still being executed when the client
    has sent them all."""
    deadline = time.monotonic() + timeout
    while True:
        found = _metrics(url)
        active = found.get(ACTIVE_METRIC, 0.0)
        if active >= subscribers:
            return found
        if time.monotonic() > deadline:
            detail = f"; the sockets said: {errors()[:5]}" if errors is not None else ""
            raise RuntimeError(
                f"only {active:.0f} of {subscribers} subscriptions reached the server's hub "
                f"within {timeout:.0f} s{detail}"
            )
        time.sleep(0.2)


def _change(item: str, warehouse: str) -> dict[str, Any]:
    return {"input": {"itemId": item, "warehouseId": warehouse, "delta": 1, "kind": "RECEIPT"}}


def _check(body: Any) -> None:
    if body.get("errors") or body["data"]["adjustStock"]["errors"]:
        raise RuntimeError(f"adjustStock failed: {body}"[:500])


@dataclass
class _Sample:
    since_request: list[float]  # sorted, seconds
    since_commit: list[float]  # sorted, seconds
    server_cpu_s: float
    client_cpu_s: float | None = None
    client_spread_s: float | None = None
    client_lag_s: float | None = None


def _summarise(
    samples: list[_Sample],
    subscribers: int,
    per_subscriber: float,
    before: dict[str, float],
    after: dict[str, float],
    client: str,
    processes: int,
) -> FanoutResult:
    def median(values: list[float]) -> float:
        return statistics.median(values) * 1000

    dispatched = after.get(EVENTS_METRIC, 0.0) - before.get(EVENTS_METRIC, 0.0)
    executed = after.get(EXECUTIONS_METRIC, 0.0) - before.get(EXECUTIONS_METRIC, 0.0)
    client_cpu = [s.client_cpu_s for s in samples if s.client_cpu_s is not None]
    spread = [s.client_spread_s for s in samples if s.client_spread_s is not None]
    lag = [s.client_lag_s for s in samples if s.client_lag_s is not None]
    return FanoutResult(
        subscribers=subscribers,
        events=len(samples),
        p50_ms=median([s.since_request[len(s.since_request) // 2] for s in samples]),
        p99_ms=median([_percentile(s.since_request, 0.99) for s in samples]),
        last_ms=median([s.since_request[-1] for s in samples]),
        kib_per_subscriber=per_subscriber,
        commit_p50_ms=median([s.since_commit[len(s.since_commit) // 2] for s in samples]),
        commit_p99_ms=median([_percentile(s.since_commit, 0.99) for s in samples]),
        executions_per_event=executed / dispatched if dispatched else 0.0,
        client=client,
        processes=processes,
        groups=before.get(GROUPS_METRIC, 0.0),
        commit_first_ms=median([s.since_commit[0] for s in samples]),
        commit_last_ms=median([s.since_commit[-1] for s in samples]),
        server_cpu_ms=median([s.server_cpu_s for s in samples]),
        client_cpu_ms=median(client_cpu) if client_cpu else None,
        client_spread_ms=median(spread) if spread else None,
        client_lag_ms=median(lag) if lag else None,
    )


def measure(
    server: Server,
    token: str,
    item: str,
    warehouse: str,
    subscribers: int,
    events: int,
    *,
    client: str = "raw",
    processes: int = 0,
) -> FanoutResult:
    """W4 at one size on ``server``, which should have no other subscribers.

    One uncounted event first: the group's first execution and each socket's first send do
    work that later events do not. RSS per subscriber is measured after it, so it counts
    what a worker holds for subscribers that have been served.
    """
    if client == "websockets":
        return asyncio.run(_measure_websockets(server, token, item, warehouse, subscribers,
                                               events))
    if client != "raw":
        raise ValueError(f"unknown W4 client {client!r}: one of {CLIENTS}")
    processes = processes or wsload.processes(subscribers)
    check_file_limits(server, subscribers, processes)
    rss_before = server.rss_mib()
    change = {"query": W4_ADJUST, "variables": _change(item, warehouse)}
    # Ten seconds past the slowest delivery we would still call a measurement.
    timeout = 10.0 + subscribers / 1000
    generator = wsload.LoadGenerator(
        "127.0.0.1", server.port, "/graphql", token, W4_STOCK_CHANGED, {"item": item},
        subscribers, processes,
    )
    with (
        generator,
        httpx.Client(base_url=server.url, timeout=60,
                     headers={"Authorization": f"Bearer {token}"}) as http,
    ):
        # A single worker answers some hundreds of handshakes and subscribes a second.
        generator.open(timeout=60 + subscribers / 50)
        _wait_subscribed(server.url, subscribers, 30 + subscribers / 200, generator.errors)

        def event() -> _Sample:
            generator.arm(timeout)
            cpu = server.cpu_seconds()
            requested = time.time()
            _check(http.post("/graphql", json=change).json())
            got = generator.collect(timeout)
            server_cpu = server.cpu_seconds() - cpu
            if got.errors or got.missing:
                raise RuntimeError(
                    f"{got.missing} of {subscribers} subscribers got nothing within "
                    f"{timeout:.0f} s; errors: {got.errors[:5]}"
                )
            return _Sample(
                since_request=sorted(t - requested for t in got.times),
                since_commit=sorted(t - c for t, c in zip(got.times, got.committed, strict=True)),
                server_cpu_s=server_cpu,
                client_cpu_s=sum(got.cpu_s),
                client_spread_s=max(got.spread_s),
                client_lag_s=max(got.lag_s),
            )

        event()  # the uncounted first
        per_subscriber = (server.rss_mib() - rss_before) * 1024 / subscribers
        time.sleep(0.2)
        before = _metrics(server.url)
        samples = []
        for _ in range(events):
            samples.append(event())
            time.sleep(0.2)
        after = _metrics(server.url)
    return _summarise(samples, subscribers, per_subscriber, before, after, "raw", processes)


# ---------------------------------------------------------------- the previous client


async def _open(ws_url: str, token: str, item: str, n: int) -> ClientConnection:
    ws = await wsclient.connect(ws_url, max_size=2**20)
    ack = await wsclient.init(ws, token)
    if ack.get("type") != "connection_ack":
        raise RuntimeError(f"subscriber {n}: no connection_ack: {ack}")
    await wsclient.subscribe(ws, str(n), W4_STOCK_CHANGED, {"item": item})
    return ws


async def _delivered(ws: ClientConnection) -> tuple[float, float]:
    """When the event reached ``ws`` (wall clock) and how long after its commit: the stamp
    is taken only once this socket's coroutine runs, after the frames parsed before it."""
    message = await asyncio.wait_for(wsclient.receive(ws), 60)
    wall = time.time()
    if message.get("type") != "next" or message["payload"].get("errors"):
        raise RuntimeError(f"unexpected subscription message: {message}")
    committed = datetime.fromisoformat(message["payload"]["data"]["stockChanged"]["committedAt"])
    return wall, wall - committed.timestamp()


async def _measure_websockets(
    server: Server, token: str, item: str, warehouse: str, subscribers: int, events: int
) -> FanoutResult:
    ws_url = f"ws://127.0.0.1:{server.port}/graphql"
    rss_before = server.rss_mib()
    sockets: list[ClientConnection] = []
    change = _change(item, warehouse)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        # Open in batches: a thousand simultaneous handshakes measure the accept queue.
        for start in range(0, subscribers, 100):
            batch = range(start, min(start + 100, subscribers))
            sockets += await asyncio.gather(*(_open(ws_url, token, item, n) for n in batch))
        await asyncio.to_thread(_wait_subscribed, server.url, subscribers, 60.0)
        async with httpx.AsyncClient(base_url=server.url, timeout=60, headers=headers) as http:

            async def event() -> _Sample:
                waiting = [asyncio.ensure_future(_delivered(ws)) for ws in sockets]
                await asyncio.sleep(0)  # let every reader start before the clock does
                cpu = server.cpu_seconds()
                requested = time.time()
                response = await http.post(
                    "/graphql", json={"query": W4_ADJUST, "variables": change}
                )
                _check(response.json())
                delivered = await asyncio.gather(*waiting)
                return _Sample(
                    since_request=sorted(wall - requested for wall, _ in delivered),
                    since_commit=sorted(since for _, since in delivered),
                    server_cpu_s=server.cpu_seconds() - cpu,
                )

            await event()  # uncounted, as for the raw client
            per_subscriber = (server.rss_mib() - rss_before) * 1024 / subscribers
            await asyncio.sleep(0.2)
            before = _metrics(server.url)
            samples = []
            for _ in range(events):
                samples.append(await event())
                await asyncio.sleep(0.2)
            after = _metrics(server.url)
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return _summarise(samples, subscribers, per_subscriber, before, after, "websockets", 1)
