"""W6 (bench/imports.py): a small run end to end on both backends.

No timing is asserted: the numbers mean something only in `make bench`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.e2e
@pytest.mark.postgres
def test_w6_imports_exports_and_reimports_on_both_backends(tmp_path: Path) -> None:
    out = tmp_path / "w6.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench.imports", "--sizes", "300", "--w6-out", str(out),
         "--rounds", "1"],  # an argument of the main harness, as `make bench` passes it: ignored
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = out.read_text()
    rows = [line.strip("|").split("|") for line in report.splitlines()
            if line.startswith(("| sqlite |", "| postgresql |"))]
    assert [(cells[0].strip(), cells[1].strip()) for cells in rows] == [
        ("sqlite", "300"), ("postgresql", "300")]
    for cells in rows:
        rows_in = int(cells[1].replace(",", ""))
        assert float(cells[4].replace(",", "")) > 0  # import rows/s
        assert float(cells[7].replace(",", "")) > 0  # export rows/s
        assert int(cells[9].replace(",", "")) == rows_in  # the round trip: all unchanged
    assert "| sqlite: the export re-imports unchanged | 300 of 300 | met |" in report
    assert "| postgresql: the export re-imports unchanged | 300 of 300 | met |" in report
