"""``python -m bench.stock_at``: stock as of a date over a long ledger, timed end to end.

Seeds 1,000 items in 5 warehouses (5,000 levels) with the CLI, then prepends history in
SQL until the ledger holds about 1,000,000 rows (pairs of a receipt and a shipment per
level, spread over the 60 days before the seed, so each level's chain of ``on_hand_after``
still adds up), and asks `stockroom serve` for a month-end report in the middle of it:
``inventorySummary(at:)`` over every level, per warehouse, and every level of every
warehouse page by page through ``Warehouse.stockAt``. The target is under a second per
request on PostgreSQL; ``--quick`` is a smoke test with small data.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from bench.database import Dataset, Shape, prepare
from bench.servers import stockroom
from schema.ids import to_global_id

RESULTS = Path(__file__).resolve().parent / "results"
FULL = Shape(items=1000, categories=50, warehouses=5, movements_per_level=2)
QUICK = Shape(items=60, categories=8, warehouses=2, movements_per_level=2)
TARGET_SECONDS = 1.0

# Pairs of (receipt of q, shipment of q) before the seed's first row: each pair ends at 0, so
# the seed's own rows (which start from 0) still add up.
HISTORY = """
insert into stock_movements (item_id, warehouse_id, kind, delta, on_hand_after, reserved_after,
  damaged_after, quality_control_after, safety_stock_after, reason, created_at)
select l.item_id, l.warehouse_id,
  case when g % 2 = 0 then 'RECEIPT' else 'SHIPMENT' end,
  case when g % 2 = 0 then 1 + (l.id * 7 + g / 2) % 50 else -(1 + (l.id * 7 + g / 2) % 50) end,
  case when g % 2 = 0 then 1 + (l.id * 7 + g / 2) % 50 else 0 end,
  0, 0, 0, 0, 'History',
  $1::timestamptz - ($2 - g) * ($3::float8 / $2) * interval '1 second'
from stock_levels l cross join generate_series(0, $2 - 1) as g
"""

LOGIN = """mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }"""
SUMMARY = """query($wh: ID, $at: DateTime) { inventorySummary(warehouseId: $wh, at: $at) {
  itemCount totalOnHand totalValue lowStockCount } }"""
PAGE = """query($id: ID!, $at: DateTime!, $after: String) { node(id: $id) { ... on Warehouse {
  stockAt(at: $at, first: 100, after: $after) { pageInfo { hasNextPage endCursor }
    edges { node { onHand reserved available item { sku } } } } } } }"""


@dataclass(frozen=True)
class Timing:
    what: str
    requests: int
    median: float
    worst: float


async def _add_history(dataset: Dataset, pairs: int) -> tuple[datetime, datetime, int]:
    """Prepend ``pairs`` receipt/shipment pairs per level; (start, seed start, row count)."""
    connection = await asyncpg.connect(dataset.dsn)
    try:
        first: datetime = await connection.fetchval("select min(created_at) from stock_movements")
        end = first - timedelta(hours=1)
        span = timedelta(days=60)
        await connection.execute(HISTORY, end, pairs * 2, span.total_seconds())
        await connection.execute("vacuum analyze stock_movements")
        rows: int = await connection.fetchval("select count(*) from stock_movements")
        return end - span, end, rows
    finally:
        await connection.close()


async def _explain(dataset: Dataset, at: datetime) -> str:
    """PostgreSQL's own timing of the summary's snapshot statement, and its plan's shape."""
    from sqlalchemy.dialects import postgresql

    from db.stock.history import snapshots_at

    compiled = snapshots_at(at).compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    connection = await asyncpg.connect(dataset.dsn)
    try:
        rows = await connection.fetch(f"explain (analyze, format json) {compiled}")
    finally:
        await connection.close()
    plan = json.loads(rows[0][0])[0]
    text = json.dumps(plan["Plan"])
    index = (
        "uses ix_stock_movements_level_created_at"
        if ("ix_stock_movements_level_created_at" in text)
        else "does NOT use the level index"
    )
    return f"{plan['Execution Time']:.1f} ms in PostgreSQL, {index}"


async def _time(http: httpx.AsyncClient, rounds: int, body: dict[str, object]) -> list[float]:
    samples = []
    for _ in range(rounds + 1):  # the first is a warm-up
        started = time.perf_counter()
        response = await http.post("/graphql", json=body)
        elapsed = time.perf_counter() - started
        payload = response.json()
        if response.status_code != 200 or payload.get("errors"):
            raise RuntimeError(f"request failed: {response.text[:500]}")
        samples.append(elapsed)
    return samples[1:]


async def _report_pages(http: httpx.AsyncClient, warehouse: str, at: str) -> list[float]:
    samples, after = [], None
    while True:
        started = time.perf_counter()
        response = await http.post(
            "/graphql",
            json={"query": PAGE, "variables": {"id": warehouse, "at": at, "after": after}},
        )
        samples.append(time.perf_counter() - started)
        page = response.json()["data"]["node"]["stockAt"]
        if not page["pageInfo"]["hasNextPage"]:
            return samples
        after = page["pageInfo"]["endCursor"]


async def _measure(url: str, dataset: Dataset, at: datetime, rounds: int) -> list[Timing]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        login = await http.post(
            "/graphql",
            json={"query": LOGIN, "variables": {"e": "viewer@example.com", "p": "viewer"}},
        )
        token = login.json()["data"]["login"]["accessToken"]
        http.headers["Authorization"] = f"Bearer {token}"
        iso = at.isoformat()
        warehouse = to_global_id("Warehouse", dataset.warehouse_ids[0])
        timings = []
        for what, variables in (
            ("inventorySummary(at:), every level", {"at": iso}),
            ("inventorySummary(warehouseId:, at:)", {"wh": warehouse, "at": iso}),
            ("inventorySummary() now, for comparison", {}),
        ):
            samples = await _time(http, rounds, {"query": SUMMARY, "variables": variables})
            timings.append(Timing(what, len(samples), statistics.median(samples), max(samples)))
        pages: list[float] = []
        for warehouse_id in dataset.warehouse_ids:
            pages += await _report_pages(http, to_global_id("Warehouse", warehouse_id), iso)
        timings.append(
            Timing(
                "Warehouse.stockAt(at:, first: 100), every page",
                len(pages),
                statistics.median(pages),
                max(pages),
            )
        )
        return timings


def _table(timings: list[Timing], counts: dict[str, int], explain: str, at: datetime) -> str:
    lines = [
        "# Stock as of a date",
        "",
        f"{counts['stock_levels']:,} levels, {counts['stock_movements']:,} ledger rows; "
        f"month end at {at.isoformat(timespec='seconds')}. PostgreSQL's time for the "
        f"snapshot of every level: {explain}.",
        "",
        "| request | requests | median | worst | under 1 s |",
        "|---|---:|---:|---:|:---:|",
    ]
    for timing in timings:
        ok = "yes" if timing.worst < TARGET_SECONDS else "NO"
        lines.append(
            f"| {timing.what} | {timing.requests} | {timing.median * 1000:.0f} ms | "
            f"{timing.worst * 1000:.0f} ms | {ok} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stock_at", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small data: a smoke test")
    parser.add_argument("--movements", type=int, help="ledger rows to reach (default 1M)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, help="markdown report (default under bench/results)")
    args = parser.parse_args(argv)
    shape = QUICK if args.quick else FULL
    target_rows = args.movements or (20_000 if args.quick else 1_000_000)
    print(f"preparing PostgreSQL with {shape.items} items ...", flush=True)
    dataset = prepare(shape)
    tmp = Path(tempfile.mkdtemp(prefix="stockroom-stock-at-"))
    try:
        levels = dataset.counts["stock_levels"]
        pairs = max(1, (target_rows - dataset.counts["stock_movements"]) // (2 * levels))
        print(f"adding {pairs * 2 * levels:,} ledger rows of history ...", flush=True)
        start, end, rows = asyncio.run(_add_history(dataset, pairs))
        dataset.counts["stock_movements"] = rows
        month_end = start + (end - start) / 2
        server = stockroom(dataset.url, tmp)
        try:
            timings = asyncio.run(_measure(server.url, dataset, month_end, args.rounds))
        finally:
            server.stop()
        explain = asyncio.run(_explain(dataset, month_end))
    finally:
        dataset.server.close()
    report = _table(timings, dataset.counts, explain, month_end)
    print(report)
    out = args.out or (tmp / "stock_at.md" if args.quick else RESULTS / "stock_at.md")
    out.write_text(report)
    if any(t.worst >= TARGET_SECONDS for t in timings) and not args.quick:
        sys.exit("a request took a second or more")


if __name__ == "__main__":
    main()
