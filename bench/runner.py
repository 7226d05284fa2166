"""One benchmark run: data, servers, cases, warm-up, interleaved rounds, the report."""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from bench import fanout, load, report
from bench.database import FULL, QUICK, Dataset, prepare
from bench.peers import postgraphile
from bench.servers import Server, ceiling, floor, naive, postgraphile_server, stockroom
from schema.ids import to_global_id
from tests.queries import LOGIN, W1, W2, W3, W5

ROUTER_CEILING = "router ceiling"
FASTAPI_CEILING = "FastAPI ceiling"

# Statements that only bracket a transaction are not counted as SQL per request, nor is
# Stockroom's read of the token's user: each worker makes it once per
# STOCKROOM_VIEWER_CACHE_SECONDS (api/viewers.py), so whether it lands among a few sequential
# samples depends on the clock, and under load it is a few statements per second in all. Nor
# is the event feed's read of the log (once a second while idle, once per ring): the worker's.
SQL_COUNT = r"""
select coalesce(sum(calls), 0) from pg_stat_statements
where query !~* '^\s*(begin|commit|rollback|start transaction)'
  and query not ilike '%pg_stat_statements%'
  and query !~* '^select users\.id, users\.email, users\.role, users\.is_active, '
                 'users\.token_version\s+from users\s+where users\.id = '
  and query !~* '^select events\.id, events\.channel'
"""


@dataclass(frozen=True)
class Options:
    quick: bool = False
    rounds: int = 3
    seconds: float = 8.0
    warmup: float = 3.0
    connections: int = 32
    # W4's sizes, each on a fresh worker: the issue's targets are at 1,000 and 10,000.
    subscribers: tuple[int, ...] = (1000, 10000)
    events: int = 5
    w4_client: str = "raw"  # bench/wsload.py; "websockets" runs the previous client
    w4_processes: int = 0  # load generator processes; 0 picks by size (wsload.processes)
    postgraphile: bool = True
    # The naive Strawberry peer: only a reference point, and the slowest to run.
    naive: bool = True
    # How long PostgreSQL must see no statement before the next case starts.
    quiet: float = 1.0
    sql_samples: int = 10
    out: Path | None = None
    # Workloads to run, by prefix ("W2", "W1 items(first: 10)"); empty runs them all.
    only: tuple[str, ...] = ()

    def wants(self, workload: str) -> bool:
        return not self.only or any(workload.startswith(prefix) for prefix in self.only)

    @classmethod
    def quick_defaults(cls, **overrides: Any) -> Options:
        values: dict[str, Any] = {
            "quick": True,
            "rounds": 1,
            "seconds": 0.5,
            "warmup": 0.25,
            "connections": 8,
            "subscribers": (20,),
            "events": 2,
            "postgraphile": False,
            "naive": False,
            # A smoke run's 8 connections leave few abandoned requests behind.
            "quiet": 0.5,
            "sql_samples": 3,
        }
        return cls(**{**values, **overrides})


Check = Callable[[Any], str | None]


@dataclass
class Case:
    workload: str
    peer: str
    server: Server | None
    path: str = "/graphql"
    bodies: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    check: Check | None = None
    unavailable: str | None = None
    results: list[load.Result] = field(default_factory=list)
    sql_per_request: float | None = None
    rss_mib: float = 0.0
    # Server CPU (user + system, from /proc) per completed request, one entry per round.
    cpu_ms: list[float] = field(default_factory=list)
    # W3 on Stockroom: adjustments verified against the ledger, and how many did not add up.
    verified: int = 0
    lost: int | None = None
    # Stockroom reads: operations the planner answered, and those left to the resolvers.
    planned: float = 0.0
    fallback: float = 0.0

    @property
    def planned_share(self) -> float | None:
        done = self.planned + self.fallback
        return self.planned / done if done else None

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url + self.path

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(r, attribute) for r in self.results)

    @property
    def cpu_ms_per_request(self) -> float | None:
        return statistics.median(self.cpu_ms) if self.cpu_ms else None


def planner_counts(server: Server) -> tuple[float, float]:
    """(planned, fallback) operations so far, from the server's /metrics."""
    text = httpx.get(server.url + "/metrics", timeout=10).text
    counts = {"planned": 0.0, "fallback": 0.0}
    for line in text.splitlines():
        if line.startswith("stockroom_planner_operations_total{"):
            labels, value = line.rsplit(" ", 1)
            outcome = labels.split('outcome="', 1)[1].split('"', 1)[0]
            counts[outcome] = counts.get(outcome, 0.0) + float(value)
    return counts["planned"], counts["fallback"]


def _body(query: str, variables: dict[str, Any]) -> str:
    return orjson.dumps({"query": query, "variables": variables}).decode()


def _json(payload: dict[str, Any]) -> str:
    return orjson.dumps(payload).decode()


def _edges(*path: str, first: int) -> Check:
    def check(body: Any) -> str | None:
        node = body
        for key in path:
            node = node[key]
        if len(node) != first:
            return f"expected {first} edges, got {len(node)}"
        return None

    return check


def _has(*path: str) -> Check:
    def check(body: Any) -> str | None:
        node = body
        for key in path:
            if not isinstance(node, dict) or node.get(key) is None:
                return f"no {'.'.join(path)} in the response"
            node = node[key]
        return None

    return check


def _no_payload_errors(body: Any) -> str | None:
    errors = body["data"]["adjustStock"]["errors"]
    return f"payload errors: {errors}" if errors else None


def w2_bodies(dataset: Dataset) -> list[str]:
    """W2 for Stockroom: 200 different items by Relay ID."""
    return [_body(W2, {"id": to_global_id("Item", i)}) for i in dataset.item_ids[:200]]


def w3_bodies(dataset: Dataset) -> list[str]:
    """W3 for Stockroom: +1 on each hot level."""
    return [
        _body(
            W3,
            {
                "input": {
                    "itemId": to_global_id("Item", item),
                    "warehouseId": to_global_id("Warehouse", warehouse),
                    "delta": 1,
                    "kind": "RECEIPT",
                }
            },
        )
        for _, item, warehouse in dataset.hot_levels
    ]


def build_cases(
    dataset: Dataset, servers: dict[str, Server | str], token: str, first_small: int
) -> list[Case]:
    """Every (workload, peer) pair; a peer that did not start is listed with its reason."""
    auth = {"Authorization": f"Bearer {token}"}
    item_ids = dataset.item_ids[: min(200, len(dataset.item_ids))]
    cases: list[Case] = []

    def add(workload: str, peer: str, server_name: str, **kwargs: Any) -> None:
        server = servers.get(server_name)
        if isinstance(server, Server):
            cases.append(Case(workload, peer, server, **kwargs))
        else:
            cases.append(Case(workload, peer, None, unavailable=server or "not started"))

    for first in (100, first_small):
        workload = f"W1 items(first: {first})"
        edges = _edges("data", "items", "edges", first=first)
        w1 = [_body(W1, {"first": first})]
        add(
            workload,
            "floor: json_agg",
            "floor",
            path="/w1",
            bodies=[_json({"first": first})],
            check=edges,
        )
        if first == 100:
            add(
                workload,
                "floor: 3 queries",
                "floor",
                path="/w1-3q",
                bodies=[_json({"first": first})],
                check=edges,
            )
            add(workload, "naive Strawberry", "naive", bodies=w1, check=edges)
        add(
            workload,
            "PostGraphile 5",
            "postgraphile",
            bodies=[_body(postgraphile.W1, {"first": first})],
            check=_edges("data", "allItems", "edges", first=first),
        )
        add(workload, "Stockroom", "stockroom", bodies=w1, headers=auth, check=edges)
        # The same request from a browser, which always offers gzip: what compressing the
        # response costs in req/s (W1's 37 KB list is the usual frontend page).
        add(
            workload,
            "Stockroom, gzip",
            "stockroom",
            bodies=w1,
            headers={**auth, "Accept-Encoding": "gzip"},
            check=edges,
        )

    workload = "W2 item(id)"
    add(
        workload,
        "floor",
        "floor",
        path="/w2",
        bodies=[_json({"id": i}) for i in item_ids],
        check=_has("data", "item", "sku"),
    )
    relay = w2_bodies(dataset)
    add(workload, "naive Strawberry", "naive", bodies=relay, check=_has("data", "item", "sku"))
    add(
        workload,
        "PostGraphile 5",
        "postgraphile",
        bodies=[_body(postgraphile.W2, {"id": i}) for i in item_ids],
        check=_has("data", "item", "sku"),
    )
    # The frameworks' own cost: the stock router with execution skipped, and one route.
    add(workload, ROUTER_CEILING, "router-ceiling", bodies=relay,
        check=_has("data", "item", "sku"))
    add(workload, FASTAPI_CEILING, "fastapi-ceiling", path="/w2", bodies=relay,
        check=_has("data", "item", "sku"))
    add(
        workload,
        "Stockroom",
        "stockroom",
        bodies=relay,
        headers=auth,
        check=_has("data", "item", "sku"),
    )

    workload = "W5 nested connections"
    w5_check = _has("data", "categories", "edges")
    add(
        workload,
        "PostGraphile 5",
        "postgraphile",
        bodies=[_body(postgraphile.W5, {})],
        check=_has("data", "allCategories", "edges"),
    )
    add(workload, "Stockroom", "stockroom", bodies=[_body(W5, {})], headers=auth, check=w5_check)

    workload = "W3 adjustStock"
    add(
        workload,
        "bare UPDATE",
        "floor",
        path="/w3",
        bodies=[_json({"level": level}) for level, _, _ in dataset.hot_levels],
        check=_has("data", "onHand"),
    )
    add(
        workload,
        "PostGraphile 5",
        "postgraphile",
        bodies=[
            _body(postgraphile.W3, {"input": {"itemId": item, "warehouseId": warehouse,
                                              "delta": 1, "kind": "RECEIPT"}})
            for _, item, warehouse in dataset.hot_levels
        ],
        check=_has("data", "adjustStock", "result", "onHand"),
    )
    adjust = w3_bodies(dataset)
    add(workload, "Stockroom", "stockroom", bodies=adjust, headers=auth, check=_no_payload_errors)
    return cases


# Which servers each workload needs, so a subset (--only) starts only those.
SERVERS_FOR = {
    "W1": ("stockroom", "floor", "naive", "postgraphile"),
    "W2": ("stockroom", "floor", "naive", "postgraphile", "router-ceiling", "fastapi-ceiling"),
    "W3": ("stockroom", "floor", "postgraphile"),
    "W4": ("stockroom",),
}


def _validate(case: Case) -> None:
    """One request per distinct shape must answer correctly before it is timed."""
    for body in {case.bodies[0], case.bodies[-1]}:
        response = httpx.post(
            case.url,
            content=body,
            headers={"Content-Type": "application/json", **case.headers},
            timeout=60,
        )
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
        decoded = response.json()
        if decoded.get("errors"):
            raise RuntimeError(f"GraphQL errors: {decoded['errors']}"[:500])
        problem = case.check(decoded) if case.check else None
        if problem:
            raise RuntimeError(problem)


async def _quiesce(dsn: str, quiet_seconds: float = 1.0, limit: float = 120.0) -> None:
    """Wait until PostgreSQL sees no statements: requests wrk abandoned may still be running
    (a slow peer can hold dozens), and they must not load the next case or its SQL count."""
    connection = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + limit
        previous, quiet = -1, 0
        # 1 s without a statement by default: a starved peer's abandoned requests can pause
        # for half a second between statements, and were then counted as the next case's SQL.
        polls = max(2, round(quiet_seconds / 0.25))
        while quiet < polls and time.monotonic() < deadline:
            calls = await connection.fetchval(SQL_COUNT)
            quiet = quiet + 1 if calls == previous else 0
            previous = calls
            await asyncio.sleep(0.25)
    finally:
        await connection.close()


def settle(dsn: str, quiet_seconds: float = 1.0) -> None:
    asyncio.run(_quiesce(dsn, quiet_seconds))


async def _count_sql(dsn: str, case: Case, samples: int) -> float:
    """Statements per request, over sequential requests after an uncounted first pass."""
    headers = {"Content-Type": "application/json", **case.headers}
    connection = await asyncpg.connect(dsn)
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            for counted in (False, True):
                if counted:
                    await connection.execute("select pg_stat_statements_reset()")
                for n in range(samples):
                    body = case.bodies[n % len(case.bodies)]
                    await client.post(case.url, content=body, headers=headers)
        total = await connection.fetchval(SQL_COUNT)
    finally:
        await connection.close()
    return float(total) / samples


async def _ledger_snapshot(dsn: str, levels: list[int]) -> tuple[dict[int, int], int]:
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            rows = await connection.fetch(
                "select id, on_hand from stock_levels where id = any($1::int[])", levels
            )
            last = await connection.fetchval("select coalesce(max(id), 0) from stock_movements")
    finally:
        await connection.close()
    return {r["id"]: r["on_hand"] for r in rows}, last


async def _ledger_check(
    dsn: str, hot: list[tuple[int, int, int]], before: dict[int, int], last: int
) -> tuple[int, int]:
    """(adjustments, lost): every +1 must be one ledger row with the next on-hand value."""
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            now = {
                r["id"]: r["on_hand"]
                for r in await connection.fetch(
                    "select id, on_hand from stock_levels where id = any($1::int[])", list(before)
                )
            }
            rows = await connection.fetch(
                "select item_id, warehouse_id, array_agg(on_hand_after order by id) as after "
                "from stock_movements where id > $1 group by item_id, warehouse_id",
                last,
            )
    finally:
        await connection.close()
    ledger = {(r["item_id"], r["warehouse_id"]): list(r["after"]) for r in rows}
    adjustments = lost = 0
    for level, item, warehouse in hot:
        after = ledger.get((item, warehouse), [])
        adjustments += len(after)
        expected = list(range(before[level] + 1, before[level] + len(after) + 1))
        lost += abs(now[level] - before[level] - len(after)) + sum(
            1 for got, want in zip(after, expected, strict=True) if got != want
        )
    return adjustments, lost


def _login(server: Server) -> str:
    response = httpx.post(
        f"{server.url}/graphql",
        json={"query": LOGIN, "variables": {"e": "clerk@example.com", "p": "clerk"}},
        timeout=30,
    )
    token: str = response.json()["data"]["login"]["accessToken"]
    return token


def _start_servers(dataset: Dataset, tmp: Path, options: Options) -> dict[str, Server | str]:
    servers: dict[str, Server | str] = {}
    starters: dict[str, Callable[[], Server]] = {
        "stockroom": lambda: stockroom(dataset.url, tmp),
        "floor": lambda: floor(dataset.dsn, tmp),
        "router-ceiling": lambda: ceiling("router", tmp),
        "fastapi-ceiling": lambda: ceiling("fastapi", tmp),
    }
    if options.naive:
        starters["naive"] = lambda: naive(dataset.url, tmp)
    else:
        servers["naive"] = "n/a: skipped (--quick)"
    if options.postgraphile:
        starters["postgraphile"] = lambda: postgraphile_server(dataset.dsn, tmp)
    else:
        servers["postgraphile"] = "n/a: skipped (--no-postgraphile or --quick)"
    needed = {name for w, names in SERVERS_FOR.items() if options.wants(w) for name in names}
    for name, start in starters.items():
        if name not in needed:
            continue
        try:
            servers[name] = start()
        except Exception as exc:  # a peer that cannot start is reported, not fatal
            if name == "stockroom":
                raise
            servers[name] = f"n/a: {str(exc).splitlines()[0][:200]}"
    return servers


def _fanout(
    token: str, dataset: Dataset, tmp: Path, options: Options
) -> list[fanout.FanoutResult | str]:
    """W4 at each size, each on its own fresh `stockroom serve`: RSS per subscriber is then
    the growth of a worker that held nothing before, not of one whose allocator kept the
    arenas of the previous size (or of W1-W3) to reuse."""
    results: list[fanout.FanoutResult | str] = []
    for size in options.subscribers:
        _say(f"W4: {size:,} subscribers ({options.w4_client} client) on a fresh worker ...")
        home = tmp / f"w4-{size}"
        home.mkdir(exist_ok=True)
        server: Server | None = None
        try:
            server = stockroom(dataset.url, home)
            results.append(
                fanout.measure(
                    server,
                    token,
                    to_global_id("Item", dataset.hot_levels[0][1]),
                    to_global_id("Warehouse", dataset.hot_levels[0][2]),
                    size,
                    options.events,
                    client=options.w4_client,
                    processes=options.w4_processes,
                )
            )
        except Exception as exc:
            results.append(f"at {size:,} subscribers failed: {str(exc)[:1000]}")
        finally:
            if server is not None:
                server.stop()
    return results


def _say(message: str) -> None:
    print(message, flush=True)


def run(options: Options) -> str:
    """Run everything, write and return the markdown report."""
    started = time.monotonic()
    shape = QUICK if options.quick else FULL
    _say(f"preparing PostgreSQL with {shape.items} items ...")
    dataset = prepare(shape)
    tmp = Path(tempfile.mkdtemp(prefix="stockroom-bench-"))
    servers: dict[str, Server | str] = {}
    try:
        servers = _start_servers(dataset, tmp, options)
        stock = servers["stockroom"]
        assert isinstance(stock, Server)
        token = _login(stock)
        cases = [
            case for case in build_cases(dataset, servers, token, first_small=10)
            if options.wants(case.workload)
        ]
        live = [case for case in cases if case.unavailable is None]

        for case in live:
            try:
                _validate(case)
                case.sql_per_request = asyncio.run(
                    _count_sql(dataset.dsn, case, options.sql_samples)
                )
                load.run(
                    case.url,
                    case.bodies,
                    seconds=options.warmup,
                    connections=options.connections,
                    headers=case.headers,
                )
                settle(dataset.dsn, options.quiet)
            except Exception as exc:
                case.unavailable = f"n/a: {str(exc).splitlines()[0][:200]}"
            _say(f"warmed up {case.workload} / {case.peer}: {case.unavailable or 'ok'}")
        live = [case for case in live if case.unavailable is None]

        hot_ids = [level for level, _, _ in dataset.hot_levels]
        for round_number in range(options.rounds):
            for case in live:
                ledger = case.workload.startswith("W3") and case.peer == "Stockroom"
                if ledger:
                    before, last = asyncio.run(_ledger_snapshot(dataset.dsn, hot_ids))
                assert case.server is not None
                cpu_before = case.server.cpu_seconds()
                ours = case.peer.startswith("Stockroom")
                if ours:
                    planned, fallback = planner_counts(case.server)
                result = load.run(
                    case.url,
                    case.bodies,
                    seconds=options.seconds,
                    connections=options.connections,
                    headers=case.headers,
                )
                cpu = case.server.cpu_seconds() - cpu_before
                case.results.append(result)
                if result.requests:
                    case.cpu_ms.append(1000 * cpu / result.requests)
                if ours:
                    planned_after, fallback_after = planner_counts(case.server)
                    case.planned += planned_after - planned
                    case.fallback += fallback_after - fallback
                settle(dataset.dsn, options.quiet)
                case.rss_mib = max(case.rss_mib, case.server.rss_mib() if case.server else 0)
                if ledger:
                    adjustments, lost = asyncio.run(
                        _ledger_check(dataset.dsn, dataset.hot_levels, before, last)
                    )
                    case.verified += adjustments
                    case.lost = (case.lost or 0) + lost
                _say(
                    f"round {round_number + 1}: {case.workload} / {case.peer}: "
                    f"{result.rps:.0f} req/s, p99 {result.p99_ms:.1f} ms"
                )

        w4 = _fanout(token, dataset, tmp, options) if options.wants("W4") else None
        text = report.render(
            cases, w4, dataset, options, servers, seconds=time.monotonic() - started
        )
    finally:
        for server in servers.values():
            if isinstance(server, Server):
                server.stop()
        dataset.server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    if options.out is not None:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(text)
    return text
