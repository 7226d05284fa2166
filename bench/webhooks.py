"""W7 (``python -m bench.webhooks``): events delivered per second to one fast local receiver
from a burst of 10,000 stock changes, and the delivery lag p50/p99.

For each backend (a SQLite file, a throwaway PostgreSQL): a fresh database (migrated, the
demo seed), ``stockroom serve`` pinned to the server core, and a receiver (``bench/receiver.py``)
in its own process pinned to the load core, answering 204 at once over kept-alive
connections. The admin creates one STOCK_CHANGED webhook pointing at it; then the burst goes
in as fast as the server takes it: ``bulkAdjustStock`` calls of 500 rows (the most one call
takes), one receipt of a unit per row, spread over 300 stock levels (``--burst single``:
``adjustStock`` mutations from 32 concurrent clients instead). Each POST's arrival time is
compared with the ``createdAt`` (the commit) in its body.

The server runs in STOCKROOM_ENV=dev: outside dev it refuses http URLs, and a TLS receiver
would put a handshake and encryption into what is measured. Every other webhook setting is
the default, as users run it.

Checked, not only timed: every StockChanged event the burst wrote to the event log (read
from the database) arrives exactly once, in increasing event id order, each stock level's
changes in order, every signature verifies, and every movement the burst's responses named
is in a body. The process exits with status 1 when a check fails, after writing the report.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.load import pinned
from bench.servers import ROOT, Server, stockroom
from db.stock import MAX_BULK_ROWS
from tests.queries import WAREHOUSE_IDS
from tests.throwaway import free_port, start_postgres
from tests.webhook_helpers import CREATE_WEBHOOK, DELIVERIES

RESULTS = Path(__file__).resolve().parent / "results"
FULL_CHANGES = 10_000
QUICK_CHANGES = 500
ITEMS = 100  # x the demo's 3 warehouses: the levels the burst spreads over
SINGLE_CLIENTS = 32
STALL_SECONDS = 60.0  # no delivery for this long: the rest is taken for missing
GRACE_SECONDS = 1.0  # after the last expected arrival: time for a duplicate to show
EXAMPLES = 5  # ids quoted per failed check

LOGIN = """mutation($e: String!, $p: String!) { login(email: $e, password: $p) {
  accessToken errors { code message } } }"""
ITEM_IDS = """query($first: Int!) { items(first: $first) { edges { node { id } } } }"""
BULK = """mutation($inputs: [AdjustStockInput!]!) { bulkAdjustStock(inputs: $inputs) {
  results { movement { id } } errors { code field message } } }"""
ADJUST = """mutation($input: AdjustStockInput!) { adjustStock(input: $input) {
  movement { id } errors { code field message } } }"""
STATUSES = ("DELIVERED", "PENDING", "FAILED", "GAVE_UP")
ATTEMPTS_METRIC = "stockroom_webhook_deliveries_total"


@dataclass
class Measure:
    backend: str
    burst: str
    clients: int
    changes: int
    burst_s: float
    logged: int  # StockChanged events the burst wrote, read from the database
    received: int  # POSTs that carried one of them (duplicates included)
    span_s: float  # first commit to last arrival
    drain_s: float  # end of the burst to last arrival
    during_burst: int  # arrived before the burst's last response
    lag_ms: list[float]  # per event, first arrival minus createdAt, sorted
    server_cpu_s: float
    duplicates: list[str] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)  # ids that are no burst event
    out_of_order: list[tuple[int, int]] = field(default_factory=list)  # (id, the higher before)
    out_of_level_order: list[str] = field(default_factory=list)  # event ids
    bad_signatures: int = 0
    movements_missing: int = 0  # movements the burst's responses named that no body carried
    server_log: dict[str, int] = field(default_factory=dict)  # delivery rows by status
    failed_attempts: int = 0
    server_log_tail: str = ""

    @property
    def distinct(self) -> int:
        return len(self.lag_ms)

    @property
    def rate(self) -> float:
        return self.distinct / self.span_s if self.span_s > 0 else 0.0

    @property
    def rate_after_burst(self) -> float:
        """Deliveries per second once the burst no longer held the server's core."""
        after = self.distinct - self.during_burst
        return after / self.drain_s if self.drain_s > 0 and after > 0 else 0.0

    @property
    def burst_rate(self) -> float:
        return self.changes / self.burst_s

    def lag(self, share: float) -> float:
        """Nearest-rank percentile of the lag (``share`` 1.0: the worst)."""
        if not self.lag_ms:
            return math.nan
        return self.lag_ms[max(0, math.ceil(share * len(self.lag_ms)) - 1)]

    @property
    def exactly_once(self) -> bool:
        return (self.logged == self.changes and not self.missing and not self.duplicates
                and not self.unexpected and self.movements_missing == 0)

    @property
    def in_order(self) -> bool:
        return not self.out_of_order

    @property
    def ok(self) -> bool:
        return (self.exactly_once and self.in_order and not self.out_of_level_order
                and self.bad_signatures == 0)


# --- the receiver ----------------------------------------------------------------------------


@dataclass
class Post:
    at: float
    signature: str
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.body)
        return value


class Receiver:
    """``bench/receiver.py`` in its own process on the load core."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.out = tmp / "received.jsonl"
        self.log = tmp / "receiver.log"
        command = [sys.executable, "-m", "bench.receiver", "--port", str(self.port),
                   "--out", str(self.out)]
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                pinned(command, "load"), cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.count()
                return
            except httpx.HTTPError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.process.kill()
                    raise RuntimeError(
                        f"receiver did not start:\n{self.log.read_text()}") from None
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def count(self) -> int:
        return int(httpx.get(f"http://127.0.0.1:{self.port}/count", timeout=5).text)

    def stop(self) -> list[Post]:
        """Stop it and read what it kept, in arrival order."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise RuntimeError("the receiver did not write its records") from None
        if not self.out.exists():
            raise RuntimeError(f"the receiver wrote no records:\n{self.log.read_text()}")
        posts = []
        with self.out.open("rb") as lines:
            for line in lines:
                record = orjson.loads(line)
                posts.append(Post(record["at"], record["signature"], record["body"].encode()))
        return posts


def signed(secret: str, header: str, body: bytes) -> bool:
    """The receiver's check (tests/receiver.py's ``verify``), without the clock tolerance:
    a slow burst must not read as a bad signature."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
        return hmac.compare_digest(expected.hexdigest(), parts["v1"])
    except (KeyError, ValueError):
        return False


# --- the server's side ---------------------------------------------------------------------


def _cli(url: str, *args: str) -> None:
    env = {**os.environ, "STOCKROOM_DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, check=True,
                   capture_output=True)


async def _graphql(http: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> Any:
    response = await http.post("/graphql", json={"query": query, "variables": variables})
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"GraphQL answered {response.status_code}: {str(body)[:500]}")
    return body["data"]


async def _last_event_id(url: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return int((await connection.scalar(text("select max(id) from events"))) or 0)
    finally:
        await engine.dispose()


async def _stock_events_after(url: str, after: int) -> list[int]:
    """The ids of the StockChanged events logged after ``after``: what must arrive."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("select id from events where channel = 'stock' and id > :after "
                     "order by id"), {"after": after})
            return [int(row[0]) for row in rows]
    finally:
        await engine.dispose()


async def _server_log(http: httpx.AsyncClient, webhook_id: str) -> dict[str, int]:
    counts = {}
    for status in STATUSES:
        data = await _graphql(http, DELIVERIES, {"id": webhook_id, "status": status, "first": 1})
        counts[status] = int(data["node"]["deliveries"]["totalCount"])
    return counts


async def _failed_attempts(http: httpx.AsyncClient) -> int:
    text_ = (await http.get("/metrics")).text
    for line in text_.splitlines():
        if line.startswith(ATTEMPTS_METRIC) and 'outcome="failed"' in line:
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


# --- the burst -----------------------------------------------------------------------------


def _rows(changes: int, items: Sequence[str], warehouses: Sequence[str]) -> list[dict[str, Any]]:
    """One receipt of a unit per change, round robin over the levels: receipts never go low,
    so no LowStock events interleave, and onHand rises by one per change of a level."""
    levels = list(itertools.product(items, warehouses))
    return [
        {"itemId": item, "warehouseId": warehouse, "delta": 1, "kind": "RECEIPT"}
        for item, warehouse in (levels[i % len(levels)] for i in range(changes))
    ]


async def _bulk(http: httpx.AsyncClient, rows: list[dict[str, Any]], clients: int) -> list[str]:
    """``bulkAdjustStock`` calls of MAX_BULK_ROWS rows, ``clients`` at a time; movement ids."""
    # Each call's rows sorted by level: concurrent calls then lock shared levels in one
    # order and wait for each other; in the round robin's order PostgreSQL finds deadlocks.
    batches = [sorted(rows[i:i + MAX_BULK_ROWS], key=lambda r: (r["itemId"], r["warehouseId"]))
               for i in range(0, len(rows), MAX_BULK_ROWS)]
    movements: list[list[str]] = [[] for _ in batches]
    queue = iter(range(len(batches)))

    async def client() -> None:
        for index in queue:
            data = await _graphql(http, BULK, {"inputs": batches[index]})
            payload = data["bulkAdjustStock"]
            if payload["errors"]:
                raise RuntimeError(f"bulkAdjustStock refused rows: {payload['errors'][:3]}")
            movements[index] = [r["movement"]["id"] for r in payload["results"]]

    await asyncio.gather(*(client() for _ in range(clients)))
    return [m for batch in movements for m in batch]


async def _single(http: httpx.AsyncClient, rows: list[dict[str, Any]], clients: int) -> list[str]:
    """One ``adjustStock`` per change from ``clients`` concurrent clients; movement ids."""
    movements: list[str] = []
    queue = iter(rows)

    async def client() -> None:
        for row in queue:
            payload = (await _graphql(http, ADJUST, {"input": row}))["adjustStock"]
            if payload["errors"]:
                raise RuntimeError(f"adjustStock refused a row: {payload['errors']}")
            movements.append(payload["movement"]["id"])

    await asyncio.gather(*(client() for _ in range(clients)))
    return movements


async def _wait_for(receiver: Receiver, expected: int) -> None:
    """Until ``expected`` POSTs arrived, or none arrived for STALL_SECONDS."""
    seen, moved = -1, time.monotonic()
    while True:
        count = await asyncio.to_thread(receiver.count)
        if count >= expected:
            break
        if count != seen:
            seen, moved = count, time.monotonic()
        elif time.monotonic() - moved > STALL_SECONDS:
            print(f"  stalled at {count:,} of {expected:,} POSTs", flush=True)
            return
        await asyncio.sleep(0.05)


# --- one backend ---------------------------------------------------------------------------


@dataclass
class Driven:
    webhook_id: str
    secret: str
    before: int
    burst_started: float
    burst_ended: float
    movements: list[str]
    logged: list[int]
    server_log: dict[str, int]
    failed_attempts: int
    server_cpu_s: float


async def _drive(server: Server, receiver: Receiver, url: str, changes: int, burst: str,
                 clients: int) -> Driven:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=server.url, timeout=600, limits=limits) as http:
        login = (await _graphql(http, LOGIN, {"e": "admin@example.com", "p": "admin"}))["login"]
        http.headers["Authorization"] = f"Bearer {login['accessToken']}"
        items = [e["node"]["id"] for e in
                 (await _graphql(http, ITEM_IDS, {"first": ITEMS}))["items"]["edges"]]
        warehouses = [e["node"]["id"] for e in
                      (await _graphql(http, WAREHOUSE_IDS, {}))["warehouses"]["edges"]]
        created = (await _graphql(http, CREATE_WEBHOOK, {"input": {
            "url": receiver.url, "events": ["STOCK_CHANGED"],
            "description": "W7 bench receiver"}}))["createWebhook"]
        if created["errors"]:
            raise RuntimeError(f"createWebhook refused: {created['errors']}")
        rows = _rows(changes, items, warehouses)
        # After the webhook (its WebhooksChanged event) and before the burst: what the burst
        # logs is exactly what comes after this id, as nothing else writes meanwhile.
        before = await _last_event_id(url)
        cpu_before = server.cpu_seconds()
        started = time.time()
        movements = await (_bulk if burst == "bulk" else _single)(http, rows, clients)
        ended = time.time()
        logged = await _stock_events_after(url, before)
        print(f"  burst: {changes:,} changes in {ended - started:.1f} s; waiting for "
              "deliveries ...", flush=True)
        await _wait_for(receiver, len(logged))
        cpu = server.cpu_seconds() - cpu_before
        await asyncio.sleep(GRACE_SECONDS)  # a duplicate or a stray POST would show now
        webhook_id = created["webhook"]["id"]
        return Driven(webhook_id, created["secret"], before, started, ended, movements, logged,
                      await _server_log(http, webhook_id), await _failed_attempts(http), cpu)


def _analyse(backend: str, burst: str, clients: int, changes: int, driven: Driven,
             posts: list[Post]) -> Measure:
    logged = set(driven.logged)
    first_at: dict[int, float] = {}
    committed: dict[int, float] = {}
    duplicates: list[str] = []
    unexpected: list[str] = []
    out_of_order: list[tuple[int, int]] = []
    out_of_level_order: list[str] = []
    on_hand: dict[str, int] = {}
    carried: set[str] = set()
    bad = 0
    highest = 0
    for post in posts:
        body = post.json
        key = str(body.get("id"))
        if not signed(driven.secret, post.signature, post.body):
            bad += 1
        if not key.isdigit() or int(key) not in logged or body.get("type") != "stock.changed":
            unexpected.append(key)
            continue
        event_id = int(key)
        if event_id in first_at:
            duplicates.append(key)
            continue
        first_at[event_id] = post.at
        committed[event_id] = datetime.fromisoformat(body["createdAt"]).timestamp()
        if event_id < highest:
            out_of_order.append((event_id, highest))
        highest = max(highest, event_id)
        data = body["data"]
        carried.add(data["movementId"])
        level = data["stockLevelId"]
        # Every change is +1, so a level's onHand must rise by exactly one per arrival.
        if level in on_hand and data["onHand"] != on_hand[level] + 1:
            out_of_level_order.append(key)
        on_hand[level] = data["onHand"]
    lags = sorted((first_at[e] - committed[e]) * 1000 for e in first_at)
    last = max(first_at.values(), default=driven.burst_ended)
    first_commit = min(committed.values(), default=driven.burst_started)
    return Measure(
        backend=backend, burst=burst, clients=clients, changes=changes,
        burst_s=driven.burst_ended - driven.burst_started, logged=len(driven.logged),
        received=len(first_at) + len(duplicates), span_s=last - first_commit,
        drain_s=last - driven.burst_ended,
        during_burst=sum(at <= driven.burst_ended for at in first_at.values()),
        lag_ms=lags, server_cpu_s=driven.server_cpu_s, duplicates=duplicates,
        missing=sorted(logged - first_at.keys()), unexpected=unexpected,
        out_of_order=out_of_order, out_of_level_order=out_of_level_order, bad_signatures=bad,
        movements_missing=len(set(driven.movements) - carried), server_log=driven.server_log,
        failed_attempts=driven.failed_attempts,
    )


def measure(backend: str, url: str, changes: int, burst: str, clients: int,
            tmp: Path) -> Measure:
    _cli(url, "migrate")
    _cli(url, "seed", "--demo")
    receiver = Receiver(tmp)
    server: Server | None = None
    try:
        server = stockroom(url, tmp, env="dev", log_level="WARNING",
                           webhook_allow_private="true")
        driven = asyncio.run(_drive(server, receiver, url, changes, burst, clients))
    finally:
        if server is not None:
            server.stop()
        posts = receiver.stop()
    result = _analyse(backend, burst, clients, changes, driven, posts)
    if not result.ok:
        result.server_log_tail = server.log.read_text(errors="replace")[-3000:] if server else ""
    return result


def run(changes: int, backends: tuple[str, ...], burst: str, clients: int,
        keep: bool) -> list[Measure]:
    results: list[Measure] = []
    for backend in backends:
        postgres = start_postgres() if backend == "postgresql" else None
        tmp = Path(tempfile.mkdtemp(prefix="stockroom-w7-"))
        try:
            if postgres is not None:
                url = postgres.create_database("w7")
            else:
                url = f"sqlite+aiosqlite:///{tmp / 'w7.db'}"
            print(f"W7 {backend}: {changes:,} stock changes ({burst}, {clients} "
                  f"client{'s' if clients > 1 else ''}) ...", flush=True)
            result = measure(backend, url, changes, burst, clients, tmp)
            print(f"  {result.distinct:,} of {result.logged:,} events delivered in "
                  f"{result.span_s:.1f} s from the first commit: {result.rate:,.0f}/s, lag p50 "
                  f"{result.lag(0.5):,.0f} ms, p99 {result.lag(0.99):,.0f} ms", flush=True)
            if not result.ok:
                print(f"  CHECK FAILED; the server log ends:\n{result.server_log_tail}",
                      flush=True)
            results.append(result)
        finally:
            if postgres is not None:
                postgres.close()
            if keep:
                print(f"  kept {tmp}", flush=True)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
    return results


# --- the report ----------------------------------------------------------------------------


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def _commit() -> str:
    head = _git("rev-parse", "--short", "HEAD") or "unknown"
    # The server runs this checkout: uncommitted code under test would make the commit lie.
    dirty = _git("status", "--porcelain", "--", "api", "db", "schema")
    return f"{head} + uncommitted changes in api/db/schema" if dirty else head


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _examples(values: Sequence[object]) -> str:
    shown = ", ".join(str(v) for v in values[:EXAMPLES])
    return f"{len(values):,}" + (f" ({shown}{', ...' if len(values) > EXAMPLES else ''})"
                                 if values else "")


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def report(results: list[Measure], quick: bool) -> str:
    mode = " (--quick: a smoke run, not a measurement)" if quick else ""
    lines = [
        f"# W7: webhook deliveries from a burst of stock changes{mode}",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {_cpu()}, {os.cpu_count()} cores · Python "
        f"{platform.python_version()} · commit {_commit()}. One `stockroom serve` per backend "
        "(STOCKROOM_ENV=dev, as http receivers need; webhook settings at their defaults; "
        "pinned to the server core) over a fresh database with the demo seed; one "
        "STOCK_CHANGED webhook to a receiver on 127.0.0.1 in its own process (pinned to the "
        "load core) that answers 204 at once over kept-alive connections.",
        "",
        "| backend | changes | burst | burst s | changes/s | delivered during burst "
        "| first commit → last delivery s | delivered/s | lag p50 ms | lag p99 ms "
        "| lag max ms | after the burst s | delivered/s after the burst | server CPU s |",
        "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for m in results:
        burst = f"{m.burst}, {m.clients} client{'s' if m.clients > 1 else ''}"
        lines.append(
            f"| {m.backend} | {m.changes:,} | {burst} | {m.burst_s:.1f} | {m.burst_rate:,.0f} "
            f"| {m.during_burst:,} | {m.span_s:.1f} | {m.rate:,.0f} | {m.lag(0.5):,.0f} "
            f"| {m.lag(0.99):,.0f} | {m.lag(1.0):,.0f} | {m.drain_s:.1f} "
            f"| {m.rate_after_burst:,.0f} | {m.server_cpu_s:.1f} |"
        )
    lines += [
        "",
        "| backend | events logged | arrived | duplicates | missing | out of id order "
        "| out of level order | bad signatures | server's log: delivered / pending / failed "
        "/ gave up | failed attempts |",
        "|---|--:|--:|--:|--:|--:|--:|--:|---|--:|",
    ]
    for m in results:
        log = " / ".join(f"{m.server_log.get(s, 0):,}" for s in STATUSES)
        inversions = [f"{low} after {high}" for low, high in m.out_of_order]
        lines.append(
            f"| {m.backend} | {m.logged:,} | {m.received:,} | {_examples(m.duplicates)} "
            f"| {_examples(m.missing)} | {_examples(inversions)} "
            f"| {_examples(m.out_of_level_order)} | {m.bad_signatures:,} | {log} "
            f"| {m.failed_attempts:,} |"
        )
    lines += ["", "| check | measured | verdict |", "|---|---|---|"]
    for m in results:
        lines.append(f"| {m.backend}: every event of the burst delivered exactly once "
                     f"| {m.distinct:,} of {m.logged:,}, {len(m.duplicates):,} duplicates "
                     f"| {_verdict(m.exactly_once)} |")
        lines.append(f"| {m.backend}: in increasing event id order "
                     f"| {len(m.out_of_order):,} out of order | {_verdict(m.in_order)} |")
        lines.append(f"| {m.backend}: each stock level's changes in order "
                     f"| {len(m.out_of_level_order):,} out of order "
                     f"| {_verdict(not m.out_of_level_order)} |")
        lines.append(f"| {m.backend}: every signature verifies | {m.bad_signatures:,} bad "
                     f"| {_verdict(m.bad_signatures == 0)} |")
    lines += [
        "",
        "**What the figures mean.** *Burst s*: from sending the first change to the last "
        "response (`bulk`: `bulkAdjustStock` calls of 500 rows, as many at a time as there "
        "are clients; `single`: one `adjustStock` per change from the clients, concurrently). "
        "*Delivered during burst*: "
        "events that reached the receiver before the burst's last response. *First commit → "
        "last delivery*: from the earliest `createdAt` (the commit time the server stamps on "
        "the event) to the arrival of the last event; *delivered/s* is the events over that "
        "span, so it includes the time the burst held the server's core. *Lag*: per event, "
        "its first arrival minus its `createdAt` (the same machine's wall clock), nearest-rank "
        "percentiles. *After the burst*: from the burst's last response to the last arrival; "
        "*delivered/s after the burst*: the events that arrived in that time over it, the "
        "dispatcher's pace with the core to itself. "
        "*Server CPU*: the server process's user and system time from the burst's start to "
        "the last arrival; close to *burst s* plus *after the burst s*, the server's one core "
        "was the limit (it makes the burst's changes and sends their deliveries). *Out of id "
        "order*: arrivals whose id is below one that arrived before them. *Server's log*: the "
        "webhook's delivery rows by status after the run; *failed attempts* from `/metrics`.",
        "",
        "Reproduce: `python -m bench.webhooks` (both backends, 10,000 changes; writes "
        "bench/results/webhooks.md), `--quick` (500 changes, writes webhooks-quick.md), "
        "`--backends sqlite`, `--changes N`, `--burst single --clients 32`, `--w7-out FILE`, "
        "`--keep` (keep the temporary directory with the server's and receiver's logs).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_CHANGES} changes: a smoke run")
    parser.add_argument("--changes", type=int,
                        help=f"stock changes in the burst (default {FULL_CHANGES:,})")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--burst", choices=("bulk", "single"), default="bulk",
                        help="bulkAdjustStock calls of 500 rows, or one adjustStock per change")
    parser.add_argument("--clients", type=int,
                        help=f"concurrent callers (default: 1 for bulk, {SINGLE_CLIENTS} for "
                             "single)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument("--w7-out", dest="out", type=Path,
                        help="markdown report (default bench/results/webhooks.md)")
    # `make bench` passes the main harness's arguments too: ignore the ones W7 lacks.
    args, _ = parser.parse_known_args(argv)
    changes = args.changes or (QUICK_CHANGES if args.quick else FULL_CHANGES)
    clients = args.clients or (1 if args.burst == "bulk" else SINGLE_CLIENTS)
    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    results = run(changes, backends, args.burst, clients, args.keep)
    text_ = report(results, args.quick)
    out = args.out or RESULTS / ("webhooks-quick.md" if args.quick else "webhooks.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text_)
    print(text_)
    print(f"written to {out}")
    if not all(m.ok for m in results):
        sys.exit("W7: a delivery check failed (see the report)")


if __name__ == "__main__":
    main()
