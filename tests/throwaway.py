"""Throwaway PostgreSQL and Redis servers for the test session (and the benchmark).

Started from the machine's binaries on free loopback ports. Under ``CI=true`` a missing
binary fails the run instead of skipping, so CI cannot go green without the services.

Fixtures (session-scoped):
- ``postgres_server``: ``.url`` (SQLAlchemy asyncpg URL of database ``stockroom``), ``.dsn``
  (plain libpq DSN), ``.port``, ``url_for(db)``, ``create_database(name) -> url``,
  ``psql(sql, database=...)``, ``stop()`` / ``start()``.
- ``redis_server``: ``.url`` (``redis://127.0.0.1:PORT/0``), ``.port``, ``stop()`` (kill) /
  ``start()`` (same port again).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(what: str, how: str) -> None:
    message = f"{what} is not available (install: {how})"
    if in_ci():
        pytest.fail(f"CI=true, so this is an error: {message}", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log written)"


def _wait(
    ready: Callable[[], bool],
    what: str,
    timeout: float,
    log: Path,
    alive: Callable[[], bool] = lambda: True,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if not alive():
            raise RuntimeError(f"{what} exited during start-up; log:\n{_tail(log)}")
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready after {timeout}s; log:\n{_tail(log)}")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _redis_pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    # Debian's packages keep the server binaries off PATH, one directory per major version.
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
        reverse=True,
    )
    return candidates[0] if candidates else None


def _need_pg_bin(name: str) -> str:
    found = pg_bin(name)
    if found is None:
        raise RuntimeError(f"{name} not found on PATH or in /usr/lib/postgresql/*/bin")
    return found


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI and dev containers run as root.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str], what: str, log: Path | None = None) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = f"\n--- server log ---\n{_tail(log)}" if log else ""
        raise RuntimeError(
            f"{what} failed (exit {result.returncode}): {' '.join(cmd)}\n"
            f"{result.stdout}{result.stderr}{detail}"
        )


@dataclass
class PostgresServer:
    root: Path
    port: int = field(default_factory=free_port)
    # Extra server settings (`-c name=value`), e.g. the benchmark's pg_stat_statements.
    settings: tuple[str, ...] = ()

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def url_for(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def url(self) -> str:
        return self.url_for("stockroom")

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/stockroom"

    def init(self) -> None:
        self.data.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.data, "postgres")
        initdb = [_need_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres"]
        # Trust is fine: the server listens on loopback only and lives for one test session.
        initdb += ["--auth=trust", "-E", "UTF8", "--no-instructions"]
        _run(_as_postgres(initdb), "initdb")

    def start(self) -> None:
        # Durability off: a throwaway server, and the suite creates many databases.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        options += "".join(f" -c {setting}" for setting in self.settings)
        pg_ctl = [_need_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log)]
        _run(
            _as_postgres([*pg_ctl, "-o", options, "-w", "-t", "60", "start"]),
            "pg_ctl start",
            self.log,
        )
        _wait(lambda: _port_open(self.port), "PostgreSQL", 30, self.log)

    def stop(self) -> None:
        pg_ctl = _need_pg_bin("pg_ctl")
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"]),
            check=False,
            capture_output=True,
        )

    def close(self) -> None:
        self.stop()
        # The suite's hundreds of database copies make the data directory gigabytes; its
        # removal runs in a process of its own rather than holding up the end of the run.
        subprocess.Popen(
            ["rm", "-rf", str(self.root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def psql(self, sql: str, database: str = "postgres") -> None:
        psql = [_need_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        _run([*psql, "-X", "-d", database, "-v", "ON_ERROR_STOP=1", "-qc", sql], "psql", self.log)

    def create_database(self, name: str) -> str:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.psql(f'CREATE DATABASE "{name}" OWNER postgres')
        return self.url_for(name)


def start_postgres(settings: tuple[str, ...] = ()) -> PostgresServer:
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="stockroom-pg-")), settings=settings)
    if os.geteuid() == 0:
        os.chmod(server.root, 0o755)
    try:
        server.init()
        server.start()
        server.create_database("stockroom")
    except BaseException:
        server.close()
        raise
    return server


@dataclass
class RedisServer:
    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.root / "redis.log"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found on PATH")
        self.process = process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
                "--logfile",
                str(self.log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait(
                lambda: _redis_pong(self.port),
                "redis-server",
                15,
                self.log,
                alive=lambda: process.poll() is None,
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def start_redis() -> RedisServer:
    server = RedisServer(Path(tempfile.mkdtemp(prefix="stockroom-redis-")))
    try:
        server.start()
    except BaseException:
        server.close()
        raise
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    absent = [name for name in ("initdb", "pg_ctl", "postgres", "psql") if pg_bin(name) is None]
    if absent:
        missing(f"PostgreSQL ({', '.join(absent)})", "apt-get install postgresql")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            missing("a 'postgres' user to run PostgreSQL as root", "useradd --system postgres")
    server = start_postgres()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        missing("redis-server", "apt-get install redis-server")
    server = start_redis()
    try:
        yield server
    finally:
        server.close()
