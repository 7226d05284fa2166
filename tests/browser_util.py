"""Headless Chromium helpers for browser checks (GraphiQL, Swagger UI) with no internet.

Every run uses a fresh temporary profile and maps every host name except 127.0.0.1 to
NOTFOUND (``--host-resolver-rules``), so a page that still reaches for a CDN fails visibly
instead of quietly working on a machine that happens to be online.

    path = chromium_path()            # None when no Chromium is installed: skip the test
    html = dump_dom("http://127.0.0.1:8000/graphql")
    screenshot("http://127.0.0.1:8000/docs", "/tmp/docs.png")

Chromium comes from Debian's ``chromium`` package (``apt-get install -y chromium``); set
``STOCKROOM_CHROMIUM`` to use another binary.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Only loopback resolves; everything else is NOTFOUND, so no request can leave the machine.
# The flags are shared with tests/browser/run_query.mjs.
FLAGS: tuple[str, ...] = (
    "--headless",
    *json.loads((Path(__file__).parent / "browser" / "chromium-flags.json").read_text()),
)

# How long (ms of virtual time) a page may run its scripts before the DOM is dumped or the
# screenshot taken; virtual time also waits for pending network loads.
DEFAULT_BUDGET_MS = 8000

# Chromium logs page console messages to stderr as
# `[...:INFO:CONSOLE:12] "message", source: url (12)` (older builds: `CONSOLE(12)]`).
_CONSOLE = re.compile(r'CONSOLE(?::\d+|\(\d+\))\] "(?P<message>.*)", source: (?P<source>.*)$')


def chromium_path() -> str | None:
    """The Chromium (or Chrome) binary to drive, or None when there is none."""
    override = os.environ.get("STOCKROOM_CHROMIUM")
    if override:
        return override if Path(override).exists() else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass(frozen=True)
class BrowserRun:
    stdout: str
    stderr: str
    returncode: int

    @property
    def console(self) -> list[str]:
        """Messages the page logged (errors, CSP violations, console.log), in order."""
        messages = []
        for line in self.stderr.splitlines():
            match = _CONSOLE.search(line)
            if match:
                messages.append(match.group("message"))
        return messages

    @property
    def csp_violations(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m]


def run_headless(
    url: str,
    *extra: str,
    timeout: float = 60.0,
    budget_ms: int = DEFAULT_BUDGET_MS,
    window_size: tuple[int, int] = (1280, 800),
) -> BrowserRun:
    """Run headless Chromium once on ``url`` with ``extra`` flags (e.g. ``--dump-dom``)."""
    binary = chromium_path()
    if binary is None:
        raise RuntimeError("no Chromium found (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="stockroom-chromium-") as profile:
        command = [
            binary,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={window_size[0]},{window_size[1]}",
            f"--virtual-time-budget={budget_ms}",
            "--enable-logging=stderr",
            "--log-level=0",
            *extra,
            url,
        ]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=profile,
        )
    return BrowserRun(result.stdout, result.stderr, result.returncode)


def dump_dom(url: str, timeout: float = 60.0, *, budget_ms: int = DEFAULT_BUDGET_MS) -> str:
    """The page's DOM (as HTML) after its scripts have run for ``budget_ms`` virtual ms."""
    run = run_headless(url, "--dump-dom", timeout=timeout, budget_ms=budget_ms)
    if run.returncode != 0:
        raise RuntimeError(f"chromium exited {run.returncode}: {run.stderr[-2000:]}")
    return run.stdout


def screenshot(
    url: str,
    path: str | os.PathLike[str],
    *,
    timeout: float = 60.0,
    budget_ms: int = DEFAULT_BUDGET_MS,
    window_size: tuple[int, int] = (1280, 800),
) -> BrowserRun:
    """Save a PNG of ``url`` to ``path``; returns the run (its ``console`` for CSP errors)."""
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    run = run_headless(
        url,
        f"--screenshot={target}",
        timeout=timeout,
        budget_ms=budget_ms,
        window_size=window_size,
    )
    if run.returncode != 0 or not target.is_file():
        raise RuntimeError(f"chromium exited {run.returncode}: {run.stderr[-2000:]}")
    return run
