"""Run ``stockroom serve`` as users do: a real uvicorn process on a loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import JWT_SECRET
from tests.throwaway import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serve(
    database_url: str, tmp: Path, *, wait_ready: bool = True, **env: str
) -> Iterator[Server]:
    """Start the server, wait for /readyz (or only /healthz when ``wait_ready`` is false: a
    dependency may be down on purpose), stop it with SIGTERM afterwards."""
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    log = tmp / f"server-{port}.log"
    environment = {
        **os.environ,
        "STOCKROOM_DATABASE_URL": database_url,
        "STOCKROOM_JWT_SECRET": JWT_SECRET,
        "STOCKROOM_UPLOAD_DIR": str(tmp / "uploads"),
        "STOCKROOM_LOG_JSON": "false",
        **{f"STOCKROOM_{k.upper()}": v for k, v in env.items()},
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp,
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(port, process, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{server.output()}")
            try:
                probe = "/readyz" if wait_ready else "/healthz"
                if httpx.get(f"{server.url}{probe}", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not become ready:\n{server.output()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
