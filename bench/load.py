"""Load from a separate process: wrk with a generated Lua script, pinned to its own core."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

# Bodies are drawn in turn; a response that is not 200 or carries a non-empty "errors" list
# (GraphQL's, or a mutation payload's) counts as failed. done() sums the per-thread counters
# and prints one JSON line for the harness.
LUA = """
local bodies = {%(bodies)s}
local headers = {%(headers)s}
local n = 0
failed = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function request()
  n = n + 1
  return wrk.format("POST", %(path)s, headers, bodies[(n %% #bodies) + 1])
end

function response(status, hdrs, body)
  if status ~= 200 or string.find(body, '"errors":[{', 1, true) then
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("failed") end
  io.write(string.format(
    'BENCH {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, '
    .. '"failed": %%d, "socket_errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    total, summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout))
end
"""


@dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failed: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal here


def _cpus() -> tuple[str | None, str | None]:
    """(server cores, load cores): one core each when there are two or more."""
    count = len(os.sched_getaffinity(0))
    if count < 2 or shutil.which("taskset") is None:
        return None, None
    return "0", str(count - 1)


def pinned(command: list[str], role: str) -> list[str]:
    server, load = _cpus()
    core = server if role == "server" else load
    return ["taskset", "-c", core, *command] if core is not None else command


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed (Debian package `wrk`)")
    return found


def run(
    url: str,
    bodies: list[str],
    *,
    seconds: float,
    connections: int = 32,
    headers: dict[str, str] | None = None,
) -> Result:
    """One wrk run of ``seconds``; POSTs ``bodies`` round-robin to ``url``."""
    parts = urlsplit(url)
    target = f"{parts.scheme}://{parts.netloc}"
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    script = LUA % {
        "bodies": ", ".join(_lua_string(b) for b in bodies),
        "headers": ", ".join(
            f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in all_headers.items()
        ),
        "path": _lua_string(parts.path or "/"),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        command = [
            wrk_binary(),
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "30s",
            "-s",
            handle.name,
            target,
        ]
        done = subprocess.run(
            pinned(command, "load"), capture_output=True, text=True, check=False, timeout=600
        )
    finally:
        Path(handle.name).unlink()
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            data = json.loads(line[6:])
            return Result(
                requests=data["requests"],
                seconds=data["duration_us"] / 1e6,
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                failed=data["failed"] + data["socket_errors"],
            )
    raise RuntimeError(
        f"wrk printed no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    )
