"""The benchmark harness: a --quick smoke run end to end, and its lost-update check.

No timing is asserted here: numbers are only meaningful as ratios in `make bench`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from api.passwords import PRODUCTION_PARAMETERS
from bench.profile import summarise
from bench.runner import SERVERS_FOR, Options, _ledger_check, _ledger_snapshot
from tests.conftest import Database
from tests.throwaway import missing

ROOT = Path(__file__).resolve().parent.parent


def _row(report: str, workload: str, peer: str) -> list[str]:
    for line in report.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) > 2 and cells[0] == workload and cells[1] == peer:
            return cells
    raise AssertionError(f"no row for {workload} / {peer} in:\n{report}")


@pytest.mark.e2e
@pytest.mark.postgres
def test_quick_run_measures_every_workload(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        missing("wrk", "apt-get install wrk")
    out = tmp_path / "report.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = out.read_text()
    assert report in done.stdout  # printed as well as written

    for workload in (
        "W1 items(first: 100)",
        "W1 items(first: 10)",
        "W2 item(id)",
        "W3 adjustStock",
    ):
        ours = _row(report, workload, "Stockroom")
        assert float(ours[2].replace(",", "")) > 0, ours  # requests completed
        assert ours[10] == "0", f"failed requests: {ours}"
        assert float(ours[6]) > 0, f"no server CPU measured: {ours}"
    for ceiling in ("router ceiling", "FastAPI ceiling"):
        row = _row(report, "W2 item(id)", ceiling)
        # no database behind a ceiling, and every request answered
        assert float(row[2].replace(",", "")) > 0 and row[5] == "0.0" and row[10] == "0", row
    assert "## W2: per request" in report and "\N{MULTIPLICATION SIGN} router ceiling" in report
    floor = _row(report, "W2 item(id)", "floor")
    # One statement, and the baseline of its own ratio.
    assert floor[5] == "1.0" and floor[8] == "1.00\N{MULTIPLICATION SIGN}", floor
    # SQL per request must not grow with the page size.
    assert (
        _row(report, "W1 items(first: 100)", "Stockroom")[5]
        == _row(report, "W1 items(first: 10)", "Stockroom")[5]
    )
    lost = re.search(r"\| (\d+) lost of ([\d,]+) adjustments", report)
    assert lost is not None and lost.group(1) == "0" and int(lost.group(2).replace(",", "")) > 0
    # W4: 20 subscribers with one document, variables and role are one group: one execution
    # per event; the load generator reports its own CPU, spread and lag
    assert re.search(
        r"^\| 20 \| 2 \| -?\d+ / -?\d+ \| -?\d+ / -?\d+ \| \d+ / \d+ \| -?\d+ KiB "
        r"\| 1\.00 \| 1 \| \d+ \| raw \N{MULTIPLICATION SIGN}1 \| \d+\.\d \| \d+ / \d+ \|$",
        report, re.M,
    ), report
    assert (
        "| W4 executions per event = groups, not subscribers | 1.00 for 1 group(s) of 20 | met |"
        in report
    )
    assert "PostGraphile 5 | n/a: skipped" in report


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_ledger_check_finds_an_update_without_its_movement(seeded_db: Database) -> None:
    dsn = seeded_db.url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "select id, item_id, warehouse_id from stock_levels order by id limit 2"
        )
        hot = [(r["id"], r["item_id"], r["warehouse_id"]) for r in rows]
        before, last = await _ledger_snapshot(dsn, [h[0] for h in hot])
        # A proper +1 on the first level: the level and its ledger row.
        level, item, warehouse = hot[0]
        await connection.execute(
            "update stock_levels set on_hand = on_hand + 1 where id = $1", level
        )
        await connection.execute(
            "insert into stock_movements (item_id, warehouse_id, kind, delta, on_hand_after, "
            "reserved_after, created_at) values ($1, $2, 'RECEIPT', 1, $3, 0, now())",
            item,
            warehouse,
            before[level] + 1,
        )
        assert await _ledger_check(dsn, hot, before, last) == (1, 0)
        # A +1 on the second level that the ledger never saw: one lost update.
        await connection.execute(
            "update stock_levels set on_hand = on_hand + 1 where id = $1", hot[1][0]
        )
        assert await _ledger_check(dsn, hot, before, last) == (1, 1)
    finally:
        await connection.close()


def test_only_selects_workloads_by_prefix() -> None:
    every = Options()
    w2 = Options(only=("W2",))
    small = Options(only=("W1 items(first: 10)", "W3"))
    assert every.wants("W4") and every.wants("W1 items(first: 100)")
    assert w2.wants("W2 item(id)") and not w2.wants("W1 items(first: 10)")
    assert not w2.wants("W4")
    assert small.wants("W1 items(first: 10)") and not small.wants("W1 items(first: 100)")
    assert small.wants("W3 adjustStock")
    # every workload names the servers it needs
    assert {"W1", "W2", "W3", "W4"} <= set(SERVERS_FOR)


def test_profile_summary_counts_only_the_event_loop_thread() -> None:
    collapsed = "\n".join(
        [
            "run (asyncio/runners.py:118);execute (graphql/execution/executor.py:1) 3",
            "run (asyncio/runners.py:118);get (sqlalchemy/orm/session.py:2) 1",
            "_bootstrap (threading.py:1);wait (threading.py:327) 50",
        ]
    )
    summary = summarise(collapsed)
    assert summary.startswith("4 samples")
    assert " 75.0%  graphql-core" in summary and " 25.0%  sqlalchemy" in summary
    assert "threading.py:327" not in summary


def test_harness_shares_the_documents_but_not_the_test_profile() -> None:
    # given a fresh interpreter that imports every harness module (they read tests/queries.py)
    probe = "\n".join(
        [
            "import sys",
            "import bench.database, bench.fanout, bench.profile, bench.report, bench.runner",
            "from api import passwords",
            "from tests import queries",
            "assert bench.runner.W1 is queries.W1",
            "print(sorted(m for m in sys.modules if m.startswith('tests')))",
            "print(passwords._active.hasher.memory_cost)",
        ]
    )
    # when it has imported them
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # then tests/conftest.py never ran, so passwords still hash with the production profile
    assert done.returncode == 0, done.stderr
    modules, memory_cost = done.stdout.splitlines()
    assert "tests.conftest" not in modules
    assert int(memory_cost) == PRODUCTION_PARAMETERS.memory_cost
