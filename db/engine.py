"""Async engine and session factories for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import warnings
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError, SAWarning
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

# SQLite has no native DECIMAL; Numeric(12, 2) round-trips through its scale, which is
# exact for the money values we store.
warnings.filterwarnings("ignore", r".*does \*not\* support Decimal objects natively", SAWarning)

WRITE_OPTION = "stockroom_write"
# Names the background job a connection works for (logs, and statement counts in tests).
ORIGIN_OPTION = "stockroom_origin"


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """Build the engine; SQLite gets WAL, foreign keys, a busy timeout and explicit BEGINs."""
    kwargs: dict[str, Any] = {"echo": echo}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    else:
        # No overflow: an overflow connection is closed on return, so bursts above the pool
        # paid a fresh connection (fork, auth, type introspection) per request. Waiting for
        # a pooled connection is cheaper; a request never holds two (see Context).
        kwargs.update(pool_size=pool_size, max_overflow=0)
    engine = _create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        _configure_sqlite(engine)
    else:
        _drop_closed_connections(engine)
    return engine


def _drop_closed_connections(engine: AsyncEngine) -> None:
    # Instead of pool_pre_ping, which costs BEGIN, a ping and ROLLBACK on every checkout:
    # asyncpg already knows when the server closed a connection (restart, terminate), and a
    # DisconnectionError here makes the pool discard it and hand out a fresh one.
    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if record.driver_connection.is_closed():  # the asyncpg connection itself
            raise DisconnectionError("connection closed by the server")


def _configure_sqlite(engine: AsyncEngine) -> None:
    # pysqlite's implicit transactions start lazily and make a reader that later writes
    # fail with SQLITE_BUSY instead of waiting. Take over BEGIN so writers take the write
    # lock up front (BEGIN IMMEDIATE) and queue on busy_timeout; readers stay concurrent.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def read_sessionmaker(
    engine: AsyncEngine, origin: str | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads. On PostgreSQL they run in autocommit: under READ COMMITTED every
    statement takes its own snapshot anyway, so a transaction around a request's reads only
    added a BEGIN and a ROLLBACK round trip. SQLite keeps its transaction, which there is
    what holds one snapshot for the whole request.

    ``origin`` names reads made on behalf of many requests (the viewer cache), not one."""
    options: dict[str, Any] = {} if is_sqlite(engine) else {"isolation_level": "AUTOCOMMIT"}
    if origin is not None:
        options[ORIGIN_OPTION] = origin
    if options:
        engine = engine.execution_options(**options)
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def write_sessionmaker(
    engine: AsyncEngine, origin: str | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions for one unit of work that writes; on SQLite they BEGIN IMMEDIATE.

    ``origin`` names a background job (the sweeper) whose statements are not a request's.
    """
    options: dict[str, Any] = {WRITE_OPTION: True}
    if origin is not None:
        options[ORIGIN_OPTION] = origin
    return async_sessionmaker(
        engine.execution_options(**options), expire_on_commit=False, autoflush=False
    )
