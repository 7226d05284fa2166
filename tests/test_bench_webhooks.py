"""W7 (bench/webhooks.py): a --quick run end to end on SQLite.

No timing is asserted: the numbers mean something only in a full run. What is asserted is
what the bench checks: every event of the burst arrived exactly once, in order, signed.
SQLite only (a throwaway PostgreSQL would double the run for the same code path in the
bench), so the test is not marked ``postgres``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.e2e
def test_w7_quick_delivers_every_event_once_and_in_order(tmp_path: Path) -> None:
    out = tmp_path / "w7.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench.webhooks", "--quick", "--backends", "sqlite",
         "--w7-out", str(out),
         "--rounds", "1"],  # an argument of the main harness, as `make bench` passes it: ignored
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = out.read_text()
    assert report in done.stdout
    rows = [[cell.strip() for cell in line.strip("|").split("|")]
            for line in report.splitlines() if line.startswith("| sqlite |")]
    timing, checks = rows  # the figures' table, then the checks' table
    assert timing[1] == "500"
    assert float(timing[7].replace(",", "")) > 0  # delivered/s
    logged, arrived, duplicates, missing, out_of_order, out_of_level, bad = checks[1:8]
    assert (logged, arrived) == ("500", "500")
    assert (duplicates, missing, out_of_order, out_of_level, bad) == ("0",) * 5
    assert checks[8] == "500 / 0 / 0 / 0"  # the server's log: all delivered
    for check in ("every event of the burst delivered exactly once | 500 of 500, 0 duplicates",
                  "in increasing event id order | 0 out of order",
                  "each stock level's changes in order | 0 out of order",
                  "every signature verifies | 0 bad"):
        assert f"| sqlite: {check} | met |" in report
