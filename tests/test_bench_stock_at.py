"""The stock-as-of-a-date benchmark: a --quick smoke run end to end (no timing asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.e2e
@pytest.mark.postgres
def test_quick_run_reports_every_request(tmp_path: Path) -> None:
    out = tmp_path / "stock_at.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench.stock_at", "--quick", "--rounds", "1", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = out.read_text()
    assert report in done.stdout
    # the generated history is really there, and the statement used the ledger's level index
    rows = re.search(r"([\d,]+) levels, ([\d,]+) ledger rows", report)
    assert rows is not None and int(rows.group(2).replace(",", "")) >= 10_000
    assert "uses ix_stock_movements_level_created_at" in report
    for request in ("inventorySummary(at:), every level", "inventorySummary(warehouseId:, at:)",
                    "Warehouse.stockAt(at:, first: 100), every page"):
        assert re.search(rf"\| {re.escape(request)} \| \d+ \| \d+ ms \| \d+ ms \|", report), report
