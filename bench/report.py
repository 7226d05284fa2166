"""The markdown report: one table of cases with ratios, W4, and the targets."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bench.fanout import FanoutResult
from bench.peers import postgraphile
from bench.servers import Server

if TYPE_CHECKING:
    from bench.database import Dataset
    from bench.runner import Case, Options

FLOOR_PEERS = {"floor: json_agg", "floor", "bare UPDATE"}
PGL = "PostGraphile 5"
ROUTER_CEILING = "router ceiling"
FASTAPI_CEILING = "FastAPI ceiling"
W2 = "W2 item(id)"


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _postgres_version() -> str:
    from tests.throwaway import pg_bin

    binary = pg_bin("postgres")
    if binary is None:
        return "PostgreSQL"
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip().replace("postgres (PostgreSQL)", "PostgreSQL")


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}×" if base else "–"


def _rps(case: Case | None) -> float | None:
    return case.median("rps") if case is not None and case.results else None


def _find(cases: list[Case], workload: str, peers: set[str]) -> Case | None:
    for case in cases:
        if case.workload == workload and case.peer in peers and case.results:
            return case
    return None


def _cpu_ms(case: Case) -> str:
    cpu = case.cpu_ms_per_request
    return f"{cpu:.3f}" if cpu is not None else "–"


def table(cases: list[Case]) -> list[str]:
    lines = [
        "| workload | peer | req/s | p50 ms | p99 ms | SQL/req | CPU ms/req | RSS MiB "
        "| × floor | × PostGraphile | failed | planned |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for case in cases:
        if not case.results:
            lines.append(
                f"| {case.workload} | {case.peer} | {case.unavailable or 'n/a'} | | | | | | | | | |"
            )
            continue
        rps = case.median("rps")
        if rps == 0:
            lines.append(
                f"| {case.workload} | {case.peer} | 0 (no request finished within "
                "a round) | | | | | | | | | |"
            )
            continue
        floor = _rps(_find(cases, case.workload, FLOOR_PEERS))
        pgl = _rps(_find(cases, case.workload, {PGL}))
        sql = f"{case.sql_per_request:.1f}" if case.sql_per_request is not None else "–"
        failed = sum(r.failed for r in case.results)
        share = case.planned_share
        # Mutations are never planned: the share is shown for reads only.
        planned = "–" if share is None or case.workload.startswith("W3") else f"{share:.0%}"
        lines.append(
            f"| {case.workload} | {case.peer} | {rps:,.0f} | {case.median('p50_ms'):.1f} "
            f"| {case.median('p99_ms'):.1f} | {sql} | {_cpu_ms(case)} | {case.rss_mib:.0f} "
            f"| {_ratio(rps, floor)} | {_ratio(rps, pgl)} | {failed} | {planned} |"
        )
    return lines


def per_request(cases: list[Case]) -> list[str]:
    """W2 against each base in one table: where Stockroom stands between the ceilings."""
    rows = [c for c in cases if c.workload == W2 and c.results and c.median("rps") > 0]
    if not rows:
        return []
    bases = [("floor", FLOOR_PEERS), ("PostGraphile", {PGL}),
             ("router ceiling", {ROUTER_CEILING}), ("FastAPI ceiling", {FASTAPI_CEILING})]
    found = [(label, _rps(_find(cases, W2, peers))) for label, peers in bases]
    lines = [
        "| peer | req/s | CPU ms/req | " + " | ".join(f"× {label}" for label, _ in found) + " |",
        "|---|--:|--:|" + "--:|" * len(found),
    ]
    for case in rows:
        rps = case.median("rps")
        ratios = " | ".join(_ratio(rps, base) for _, base in found)
        lines.append(f"| {case.peer} | {rps:,.0f} | {_cpu_ms(case)} | {ratios} |")
    return lines


W4Results = list[FanoutResult | str]


def _w4_at(w4: W4Results | None, size: int) -> FanoutResult | None:
    """The smallest W4 measured with at least ``size`` subscribers (a target met with more
    subscribers is met with ``size``)."""
    sizes = [r for r in w4 or [] if isinstance(r, FanoutResult) and r.subscribers >= size]
    return min(sizes, key=lambda r: r.subscribers) if sizes else None


def _w4_targets(w4: W4Results | None, verdict: Callable[[bool | None], str]) -> list[str]:
    if w4 is None:
        return []
    measured = [r for r in w4 if isinstance(r, FanoutResult)]
    shown = ", ".join(f"{r.subscribers:,}" for r in measured) or "none"
    lines = []
    for size, limit, label in (
        (1000, 100.0, "W4 p99 < 100 ms from commit, 1,000 subscribers"),
        (10000, 1000.0, "W4 p99 < 1 s from commit, 10,000 subscribers on one worker"),
    ):
        found = _w4_at(w4, size)
        if found is None:
            lines.append(f"| {label} | not run at this size (measured: {shown}) | n/a |")
        else:
            lines.append(
                f"| {label} | {found.commit_p99_ms:.0f} ms with {found.subscribers:,} "
                f"| {verdict(found.commit_p99_ms < limit)} |"
            )
    found = _w4_at(w4, 10000)
    if found is None:
        lines.append(
            f"| W4 RSS ≤ 30 KiB per subscriber at 10,000 | not run at this size "
            f"(measured: {shown}) | n/a |"
        )
    else:
        lines.append(
            f"| W4 RSS ≤ 30 KiB per subscriber at 10,000 | {found.kib_per_subscriber:.0f} KiB "
            f"with {found.subscribers:,} | {verdict(found.kib_per_subscriber <= 30)} |"
        )
    if measured:
        each = ", ".join(
            f"{r.executions_per_event:.2f} for {r.groups:.0f} group(s) of {r.subscribers:,}"
            for r in measured
        )
        lines.append(
            f"| W4 executions per event = groups, not subscribers | {each} "
            f"| {verdict(all(r.executions_per_event == r.groups for r in measured))} |"
        )
    return lines


def targets(cases: list[Case], w4: W4Results | None) -> list[str]:
    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "**not met**")

    lines = ["| target | measured | verdict |", "|---|---|---|"]
    ours = {c.workload: c for c in cases if c.peer == "Stockroom" and c.results}
    small = [c for c in ours.values() if c.workload.startswith("W1")]
    sqls = [c.sql_per_request for c in small if c.sql_per_request is not None]
    if sqls:
        shown = ", ".join(
            f"{c.workload.split('(')[1].rstrip(')')}: {c.sql_per_request:.1f}" for c in small
        )
        lines.append(
            f"| SQL per W1 request constant and ≤ 4 | {shown} "
            f"| {verdict(max(sqls) <= 4 and max(sqls) == min(sqls))} |"
        )
    reads = [c for c in ours.values() if c.workload.startswith(("W1", "W2", "W5"))]
    shares = [c.planned_share for c in reads if c.planned_share is not None]
    if shares:
        shown = ", ".join(
            f"{c.workload.split(' ')[0]}: {c.planned_share:.0%}"
            for c in reads
            if c.planned_share is not None
        )
        lines.append(f"| W1, W2, W5 served 100% planned | {shown} | {verdict(min(shares) == 1)} |")
    for workload, base_peers, wanted, label in (
        ("W1 items(first: 100)", {PGL}, 2.0, "W1 items(first: 100) ≥ 2.0× PostGraphile req/s"),
        ("W1 items(first: 10)", {PGL}, 1.0, "W1 items(first: 10) ≥ 1.0× PostGraphile req/s"),
        ("W5 nested connections", {PGL}, 1.0, "W5 ≥ 1.0× PostGraphile req/s"),
        (W2, {PGL}, 1.0, "W2 ≥ 1.0× PostGraphile req/s"),
        (W2, {ROUTER_CEILING}, 0.8, "W2 ≥ 0.8× router ceiling req/s"),
        ("W3 adjustStock", {PGL}, 1.0, "W3 ≥ 1.0× PostGraphile's adjust_stock() req/s"),
        ("W3 adjustStock", {"bare UPDATE"}, 0.5, "W3 ≥ 0.5× bare UPDATE req/s"),
    ):
        if not any(c.workload == workload for c in cases):
            continue  # left out by --only
        ours_rps = _rps(ours.get(workload))
        base = _rps(_find(cases, workload, base_peers))
        if ours_rps is None or base is None:
            lines.append(f"| {label} | – | n/a |")
        else:
            ratio = ours_rps / base
            lines.append(f"| {label} | {ratio:.2f}× | {verdict(ratio >= wanted)} |")
    w3 = ours.get("W3 adjustStock")
    if w3 is not None and w3.lost is not None:
        lines.append(
            f"| W3 zero lost updates | {w3.lost} lost of {w3.verified:,} adjustments "
            f"checked against the ledger | {verdict(w3.lost == 0)} |"
        )
    return lines + _w4_targets(w4, verdict)


def _ms(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def fanout_table(w4: W4Results) -> list[str]:
    """One row per W4 size; a size that failed is a line under the table."""
    rows = [r for r in w4 if isinstance(r, FanoutResult)]
    lines = []
    if rows:
        lines += [
            "| subscribers | events | from commit p50 / p99 ms | first / last from commit ms "
            "| from request p50 / p99 ms | RSS per subscriber | executions per event | groups "
            "| server CPU ms per event | load generator | its CPU ms per event "
            "| its spread / lag ms |",
            "|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|",
        ]
        for r in rows:
            client = f"raw ×{r.processes}" if r.client == "raw" else r.client
            lines.append(
                f"| {r.subscribers:,} | {r.events} | {r.commit_p50_ms:.0f} / "
                f"{r.commit_p99_ms:.0f} | {r.commit_first_ms:.0f} / {r.commit_last_ms:.0f} "
                f"| {r.p50_ms:.0f} / {r.p99_ms:.0f} | {r.kib_per_subscriber:.0f} KiB "
                f"| {r.executions_per_event:.2f} | {r.groups:.0f} | {_ms(r.server_cpu_ms)} "
                f"| {client} | {_ms(r.client_cpu_ms, 1)} "
                f"| {_ms(r.client_spread_ms)} / {_ms(r.client_lag_ms)} |"
            )
        lines.append("")
    lines += [f"W4 {r}" for r in w4 if isinstance(r, str)]
    return lines


def render(
    cases: list[Case],
    w4: W4Results | None,
    dataset: Dataset,
    options: Options,
    servers: dict[str, Server | str],
    *,
    seconds: float,
) -> str:
    counts = dataset.counts
    pgl = servers.get("postgraphile")
    pgl_version = f"PostGraphile {postgraphile.version()}" if isinstance(pgl, Server) else str(pgl)
    mode = " (--quick: a smoke run, not a measurement)" if options.quick else ""
    lines = [
        f"# Stockroom benchmark{mode}",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {_cpu()}, {os.cpu_count()} cores · "
        f"Python {platform.python_version()} · {_postgres_version()} · {pgl_version}",
        "",
        f"Data: {counts['items']:,} items, {counts['categories']} categories, "
        f"{counts['warehouses']} warehouses, {counts['stock_levels']:,} stock levels, "
        f"{counts['stock_movements']:,} movements. Load: wrk, 1 thread, "
        f"{options.connections} connections, {options.seconds:g} s per round after a "
        f"{options.warmup:g} s warm-up; median of {options.rounds} round(s), peers "
        "interleaved; servers pinned to the first core, wrk to the last. SQL/req counts "
        "statements in pg_stat_statements over sequential requests, without BEGIN/COMMIT. "
        "Stockroom runs `stockroom serve` with STOCKROOM_ENV=prod and a bearer token (its "
        "reservation sweeper hourly, to keep its timer out of the SQL counts); "
        "W3 writes to 100 hot stock levels.",
        "",
        *table(cases),
        "",
    ]
    w2 = per_request(cases)
    if w2:
        lines += [
            "## W2: per request",
            "",
            *w2,
            "",
            "The router ceiling is Strawberry's stock `GraphQLRouter` on FastAPI answering W2's "
            "document with its parser and validation caches and execution skipped by an "
            "`on_execute` extension (no database); the FastAPI ceiling is one route with one "
            "async dependency that reads the body and answers W2's JSON. CPU ms/req is the "
            "server process's user + system time (/proc/PID/stat) over the requests of a round.",
            "",
        ]
    if w4 is not None:
        lines += [
            "## W4: subscription fan-out",
            "",
            *fanout_table(w4),
            "",
            "Time to each subscriber's `next` message (one `stockChanged` subscription per "
            "WebSocket, all with the same document and variables, graphql-transport-ws, memory "
            "broker), from the `committedAt` the server stamped on the event and from sending "
            "`adjustStock`; medians over the events, after one uncounted event. Each size runs "
            "on a fresh `stockroom serve` worker pinned to the server core; RSS per subscriber "
            "is its growth from before the sockets opened to after that first event. "
            "Executions per event are the server's own count (`/metrics`): one per subscriber "
            "group the event matched; server CPU is the worker's user + system time over the "
            "mutation and its fan-out (10 ms ticks).",
            "",
            "The load generator (`bench/wsload.py`, \"raw\") holds the sockets as bare asyncio "
            "protocols in the shown number of processes on the load core, each stamping a "
            "delivery as its bytes are read, before any parsing. Its CPU per event is all its "
            "processes' CPU from arming to the last delivery; spread is the widest first-to-"
            "last delivery within one process; lag is the worst lateness of a 1 ms timer in "
            "its event loops during the event: no delivery was stamped later than that after "
            "its bytes were readable, so a from-commit time well above it is the server's. "
            "\"websockets\" is the previous client: a `websockets` connection and coroutine "
            "per subscriber in the harness, each stamped when its coroutine runs.",
        ]
    if options.only:
        lines += ["", f"Workloads run: {', '.join(options.only)} (--only)."]
    lines += [
        "",
        "## Targets",
        "",
        *targets(cases, w4),
        "",
        f"Run took {seconds / 60:.1f} min.",
        "",
    ]
    return "\n".join(lines)
