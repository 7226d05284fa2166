"""The servers under test, each its own process pinned to the server core."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.load import pinned
from bench.peers import postgraphile
from tests.throwaway import free_port

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mib(self) -> float:
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except FileNotFoundError:
            return 0.0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server process has used so far (all its threads)."""
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except FileNotFoundError:
            return 0.0
        # Fields after the command name, which is parenthesised and may hold spaces:
        # utime and stime are the 14th and 15th fields of the whole line.
        fields = stat.rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def _start(
    name: str,
    command: list[str],
    env: dict[str, str],
    tmp: Path,
    ready: Callable[[str], bool],
    port: int,
) -> Server:
    log = tmp / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            pinned(command, "server"), cwd=tmp, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    server = Server(name, port, process, log)
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if ready(server.url):
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{name} did not become ready:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def _readyz(url: str) -> bool:
    return httpx.get(f"{url}/readyz", timeout=2).status_code == 200


def _graphql_answers(url: str) -> bool:
    response = httpx.post(f"{url}/graphql", json={"query": "{ __typename }"}, timeout=2)
    return response.status_code == 200


JWT_SECRET = secrets.token_urlsafe(48)


def stockroom(database_url: str, tmp: Path, **settings: str) -> Server:
    """`stockroom serve` as users run it: one uvicorn worker, access log off."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),  # this checkout, whatever the venv installed
        "STOCKROOM_ENV": "prod",
        "STOCKROOM_DATABASE_URL": database_url,
        "STOCKROOM_JWT_SECRET": JWT_SECRET,
        "STOCKROOM_UPLOAD_DIR": str(tmp / "uploads"),
        # The default 600/minute per client would throttle the load generator itself.
        "STOCKROOM_RATE_LIMIT": "10000000/minute",
        "STOCKROOM_ACCESS_TOKEN_TTL": "14400",
        # The reservation sweeper's timer statement would land in per-request SQL counts.
        "STOCKROOM_RESERVATION_SWEEP_SECONDS": "3600",
        **{f"STOCKROOM_{k.upper()}": v for k, v in settings.items()},
    }
    command = [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return _start("stockroom", command, env, tmp, _readyz, port)


def floor(dsn: str, tmp: Path) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "bench.peers.floor", "--dsn", dsn, "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return _start("floor", command, env, tmp, _readyz, port)


def ceiling(kind: str, tmp: Path) -> Server:
    """A W2 ceiling (``bench/peers/ceiling.py``): ``router`` or ``fastapi``."""
    port = free_port()
    command = [sys.executable, "-m", "bench.peers.ceiling", "--kind", kind, "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    path = "/graphql" if kind == "router" else "/w2"

    def answers(url: str) -> bool:
        response = httpx.post(f"{url}{path}", json={"query": "{ __typename }"}, timeout=2)
        return response.status_code == 200

    return _start(f"{kind}-ceiling", command, env, tmp, answers, port)


def naive(database_url: str, tmp: Path) -> Server:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "bench.peers.naive",
        "--url",
        database_url,
        "--port",
        str(port),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return _start("naive", command, env, tmp, _readyz, port)


def postgraphile_server(dsn: str, tmp: Path) -> Server:
    postgraphile.ensure_installed()
    port = free_port()
    command, env = postgraphile.command(dsn, port)
    return _start("postgraphile", command, env, tmp, _graphql_answers, port)
