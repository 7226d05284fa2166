"""W6 (``python -m bench.imports``): import 100,000 items and export them, on SQLite and
PostgreSQL, as rows per second and peak RSS.

For each backend and file size: a fresh database (migrated, the demo users and warehouses,
no items) and ``stockroom serve`` as users run it (STOCKROOM_ENV=prod, pinned to the server
core). A CSV of the size is written to disk row by row and uploaded by a manager, streamed
from the file; the job is followed over REST until it finishes. Then the items export is
streamed and its rows counted, and the export is imported again (a round trip: every row
must come back unchanged). The server's RSS is sampled every 20 ms throughout; the peak of
each phase is reported beside the RSS before the upload. Each size gets its own server,
so the peaks of a small and a large file compare like with like: flat means the large
file's peak stays within 25% of the small one's.

Targets: the 100,000-row import under 60 s, the export at least 50,000 rows/s, RSS flat.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.servers import Server, stockroom
from tests.throwaway import start_postgres

RESULTS = Path(__file__).resolve().parent / "results"
HEADER = "sku,name,description,category,unit_price,unit_cost,reorder_point,archived\n"
FULL_SIZES = (10_000, 100_000)
QUICK_SIZES = (500, 2_000)
IMPORT_TARGET_SECONDS = 60.0
EXPORT_TARGET_ROWS = 50_000.0
FLAT = 1.25


@dataclass
class Measure:
    backend: str
    rows: int
    file_mib: float
    import_s: float
    job_s: float
    export_s: float
    exported: int
    reimport_s: float
    unchanged: int
    rss_before: float
    rss_import: float
    rss_export: float

    @property
    def import_rate(self) -> float:
        return self.rows / self.import_s

    @property
    def export_rate(self) -> float:
        return self.exported / self.export_s


class PeakRss:
    """Samples a process's resident set every 20 ms in a thread; ``phase()`` reads the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def now(self) -> float:
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.now())

    @contextlib.contextmanager
    def phase(self) -> Iterator[PeakRss]:
        self.peak = self.now()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self.now())


def write_items(path: Path, rows: int) -> None:
    """A realistic catalogue file, written row by row (never held whole)."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER)
        for i in range(rows):
            out.write(
                f"B-{i:07d},Bench item {i},\"A description, with a comma\",Bench/Range "
                f"{i % 40},{(i % 5000) / 10 + 0.99:.2f},{(i % 3000) / 10 + 0.5:.2f},{i % 25},"
                f"{'true' if i % 97 == 0 else 'false'}\r\n"
            )


def _cli(url: str, *args: str) -> None:
    env = {**os.environ, "STOCKROOM_DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, check=True,
                   capture_output=True)


def _login(http: httpx.Client) -> str:
    response = http.post("/graphql", json={
        "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) "
                 "{ accessToken } }",
        "variables": {"e": "manager@example.com", "p": "manager"}})
    token: str = response.json()["data"]["login"]["accessToken"]
    return token


def _import(http: httpx.Client, path: Path, timeout: float = 1800) -> dict[str, object]:
    with path.open("rb") as handle:
        response = http.post("/imports/items", files={"file": ("items.csv", handle, "text/csv")})
    if response.status_code != 202:
        raise RuntimeError(f"upload refused: {response.status_code} {response.text[:300]}")
    url = response.json()["url"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, object] = http.get(url).json()
        if job["status"] not in ("QUEUED", "RUNNING"):
            if job["status"] != "SUCCEEDED":
                raise RuntimeError(f"import ended {job['status']}: {job.get('failureReason')}")
            return job
        time.sleep(0.05)
    raise RuntimeError(f"import did not finish in {timeout:.0f} s")


def _seconds(job: dict[str, object]) -> float:
    started = datetime.fromisoformat(str(job["startedAt"]))
    finished = datetime.fromisoformat(str(job["finishedAt"]))
    return (finished - started).total_seconds()


def measure(backend: str, url: str, rows: int, tmp: Path) -> Measure:
    """One fresh server: import ``rows`` items, export them, import the export again."""
    _cli(url, "migrate")
    _cli(url, "seed", "--demo", "--items=0")
    source = tmp / f"items-{rows}.csv"
    write_items(source, rows)
    server: Server = stockroom(url, tmp, max_import_bytes=str(512 * 1024 * 1024))
    try:
        rss = PeakRss(server.process.pid)
        with httpx.Client(base_url=server.url, timeout=600) as http:
            http.headers["Authorization"] = f"Bearer {_login(http)}"
            before = rss.now()
            with rss.phase():
                started = time.perf_counter()
                job = _import(http, source)
                import_s = time.perf_counter() - started
            rss_import = rss.peak
            exported_file = tmp / f"export-{rows}.csv"
            with rss.phase(), exported_file.open("wb") as out:
                started = time.perf_counter()
                # identity, as curl or a script fetches it (a browser's gzip costs CPU here)
                with http.stream("GET", "/exports/items.csv",
                                 headers={"Accept-Encoding": "identity"}) as response:
                    for chunk in response.iter_raw():
                        out.write(chunk)
                export_s = time.perf_counter() - started
            rss_export = rss.peak
            with exported_file.open("rb") as handle:
                exported = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20),
                                                                   b"")) - 1
            started = time.perf_counter()
            again = _import(http, exported_file)
            reimport_s = time.perf_counter() - started
    finally:
        server.stop()
    return Measure(
        backend, rows, source.stat().st_size / 2**20, import_s, _seconds(job), export_s,
        exported, reimport_s, int(str(again["unchanged"])), before, rss_import, rss_export,
    )


def run(sizes: tuple[int, ...], backends: tuple[str, ...]) -> list[Measure]:
    results: list[Measure] = []
    for backend in backends:
        postgres = start_postgres() if backend == "postgresql" else None
        try:
            for rows in sizes:
                tmp = Path(tempfile.mkdtemp(prefix="stockroom-w6-"))
                try:
                    if postgres is not None:
                        url = postgres.create_database(f"w6_{rows}")
                    else:
                        url = f"sqlite+aiosqlite:///{tmp / 'w6.db'}"
                    print(f"W6 {backend}: {rows:,} rows ...", flush=True)
                    result = measure(backend, url, rows, tmp)
                    print(f"  import {result.import_rate:,.0f} rows/s, export "
                          f"{result.export_rate:,.0f} rows/s, peak RSS {result.rss_import:.0f} "
                          "MiB", flush=True)
                    results.append(result)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
        finally:
            if postgres is not None:
                postgres.close()
    return results


def report(results: list[Measure], quick: bool) -> str:
    mode = " (--quick: a smoke run, not a measurement)" if quick else ""
    lines = [
        f"# W6: bulk import and export{mode}",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {os.cpu_count()} cores · Python "
        f"{platform.python_version()}. One `stockroom serve` per row (STOCKROOM_ENV=prod, "
        "pinned to the server core) over a fresh database; a manager uploads a CSV of items "
        "(REJECT_EVERYTHING: every row checked, then written in batches of 1,000), streams "
        "`GET /exports/items.csv`, and imports the export again (every row unchanged). RSS is "
        "the server's, sampled every 20 ms.",
        "",
        "| backend | rows | file MiB | import s | import rows/s | job s | export s "
        "| export rows/s | re-import s | unchanged | RSS before | peak RSS import "
        "| peak RSS export |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for m in results:
        lines.append(
            f"| {m.backend} | {m.rows:,} | {m.file_mib:.1f} | {m.import_s:.1f} "
            f"| {m.import_rate:,.0f} | {m.job_s:.1f} | {m.export_s:.2f} | {m.export_rate:,.0f} "
            f"| {m.reimport_s:.1f} | {m.unchanged:,} | {m.rss_before:.0f} MiB "
            f"| {m.rss_import:.0f} MiB | {m.rss_export:.0f} MiB |"
        )
    lines += ["", "| target | measured | verdict |", "|---|---|---|"]
    largest = max((m.rows for m in results), default=0)
    smallest = min((m.rows for m in results), default=0)
    for backend in sorted({m.backend for m in results}):
        big = next(m for m in results if m.backend == backend and m.rows == largest)
        small = next(m for m in results if m.backend == backend and m.rows == smallest)
        verdict = "met" if big.import_s < IMPORT_TARGET_SECONDS else "**not met**"
        lines.append(f"| {backend}: {largest:,}-row import under {IMPORT_TARGET_SECONDS:.0f} s "
                     f"| {big.import_s:.1f} s | {verdict} |")
        verdict = "met" if big.export_rate >= EXPORT_TARGET_ROWS else "**not met**"
        lines.append(f"| {backend}: export ≥ {EXPORT_TARGET_ROWS:,.0f} rows/s "
                     f"| {big.export_rate:,.0f} rows/s | {verdict} |")
        peak_big = max(big.rss_import, big.rss_export)
        peak_small = max(small.rss_import, small.rss_export)
        flat = peak_big <= FLAT * peak_small
        lines.append(f"| {backend}: RSS flat in file size ({largest:,} vs {smallest:,} rows, "
                     f"within {FLAT:.2f} times) | {peak_big:.0f} vs {peak_small:.0f} MiB "
                     f"| {'met' if flat else '**not met**'} |")
        verdict = "met" if big.unchanged == big.rows else "**not met**"
        lines.append(f"| {backend}: the export re-imports unchanged | {big.unchanged:,} of "
                     f"{big.rows:,} | {verdict} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("--quick", action="store_true", help="small files: a smoke run")
    parser.add_argument("--sizes", help="comma-separated row counts (default 10000,100000)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--w6-out", dest="out", type=Path,
                        help="markdown report (default bench/results/imports.md)")
    # `make bench` passes the main harness's arguments too: ignore the ones W6 lacks.
    args, _ = parser.parse_known_args(argv)
    sizes = (tuple(int(s) for s in args.sizes.split(",")) if args.sizes
             else QUICK_SIZES if args.quick else FULL_SIZES)
    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    text = report(run(sizes, backends), args.quick)
    out = args.out or RESULTS / ("imports-quick.md" if args.quick else "imports.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
