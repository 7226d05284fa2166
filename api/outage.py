"""An unreachable database is an answer, not a crash: JSON 503 with Retry-After.

Three places can meet a database that went away, and each answers the same way:

- outside any GraphQL execution (the viewer lookup of the GraphQL context, REST routes'
  dependencies): the ASGI edge (``api/edge.py``) turns the exception into a 503
  (``answer_http``) or a close with 1013 "try again later" (``close_websocket``);
- resolvers and loaders inside an execution: ``OutageExtension`` replaces the result with one
  top-level ``SERVICE_UNAVAILABLE`` error, which the router answers with 503;
- ``connection_init`` of a subscription socket: ``api/graphql.py`` closes with 1013.

A mutation's error says whether anything was applied: a per-operation ``WriteTracker`` learns
from the engine's ``commit`` event whether a write transaction got as far as COMMIT.
"""

from __future__ import annotations

import contextvars
import errno
import logging
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from graphql import GraphQLError
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import Headers
from starlette.types import Scope, Send
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from api.graphql_http import negotiate
from db.engine import WRITE_OPTION

log = logging.getLogger("stockroom.outage")

CODE = "SERVICE_UNAVAILABLE"
RETRY_AFTER_SECONDS = 2
# WebSocket close code 1013 "Try Again Later": graphql-ws clients (Apollo's GraphQLWsLink)
# reconnect after it, while they give up after 1011.
WS_TRY_AGAIN_LATER = 1013

_NETWORK_ERRNOS = frozenset({
    errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EHOSTUNREACH,
    errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTDOWN, errno.ETIMEDOUT, errno.EPIPE,
})
# 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now (starting up or
# shutting down); 53300 too many connections. Class 08 (connection exceptions) is matched by
# its base class below.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
_SQLITE_UNAVAILABLE = ("unable to open database file", "disk i/o error")


def _is_unavailable_here(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return True  # a dropped connection, or no pooled connection within pool_timeout
    if isinstance(error, ConnectionError | TimeoutError | socket.gaierror):
        return True
    if isinstance(error, OSError):
        # Only network failures: a full disk while storing an upload is not an outage.
        return error.errno in _NETWORK_ERRNOS
    if isinstance(error, asyncpg.PostgresConnectionError):
        return True
    if isinstance(error, asyncpg.PostgresError):
        return getattr(error, "sqlstate", None) in _UNAVAILABLE_SQLSTATES
    if isinstance(error, asyncpg.InterfaceError):
        return "connection is closed" in str(error)
    if isinstance(error, sqlite3.OperationalError):
        return str(error).lower().startswith(_SQLITE_UNAVAILABLE)
    return False


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and what caused it: SQLAlchemy's ``orig``, GraphQL's ``original_error``,
    ``__cause__`` and ``__context__``."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending and len(seen) < 32:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (getattr(current, "orig", None), getattr(current, "original_error", None),
                       current.__cause__, current.__context__):
            if isinstance(linked, BaseException):
                pending.append(linked)


class DatabaseUnavailable(Exception):
    """Raised where an outage must be told apart from other failures (``connection_init``)."""


def is_database_unavailable(error: BaseException | None) -> bool:
    """True when ``error`` (or anything that caused it) says the database cannot be reached."""
    return error is not None and any(_is_unavailable_here(e) for e in _chain(error))


# --- did this operation get as far as COMMIT? ----------------------------------------------


@dataclass(slots=True)
class WriteTracker:
    committing: bool = False


_WRITES: contextvars.ContextVar[WriteTracker | None] = contextvars.ContextVar(
    "stockroom_writes", default=None
)


def watch_commits(engine: AsyncEngine) -> None:
    """Tell the running operation's tracker when one of its write transactions commits."""

    # The event fires just before COMMIT is sent: if the database then goes away, whether
    # the change landed is unknown, and the error says so instead of "nothing was applied".
    @event.listens_for(engine.sync_engine, "commit")
    def _on_commit(connection: Any) -> None:
        tracker = _WRITES.get()
        if tracker is not None and connection.get_execution_options().get(WRITE_OPTION):
            tracker.committing = True


# --- the answers --------------------------------------------------------------------------


def unavailable_extensions(applied: bool | None) -> dict[str, Any]:
    """``extensions`` of the error: code, retry delay and, for writes, whether they landed."""
    extensions: dict[str, Any] = {"code": CODE, "retryAfter": RETRY_AFTER_SECONDS}
    extensions["applied"] = applied
    return extensions


NOT_RUN = ("The database is unavailable: the request was not run, so nothing was applied. "
           "Retry shortly.")


def unavailable_message(mutation: bool, applied: bool | None) -> str:
    if applied is None:
        return ("The database became unavailable after a change was sent to it: it may or may "
                "not have been applied. Read it back, or retry with the same idempotencyKey.")
    if mutation:
        return "The database is unavailable: nothing was applied. Retry shortly."
    return "The database is unavailable. Retry shortly."


class OutageExtension(SchemaExtension):
    """Turn a result that met an unreachable database into one SERVICE_UNAVAILABLE error.

    Listed after the masking extension, so it sees the original exceptions before they are
    masked; the router answers such a result with 503 and Retry-After.
    """

    def on_operation(self) -> Iterator[None]:
        tracker = WriteTracker()
        token = _WRITES.set(tracker)
        try:
            yield
        finally:
            _WRITES.reset(token)
        context = self.execution_context
        result = context.result
        errors: list[GraphQLError] = list(
            getattr(result, "errors", None) or context.pre_execution_errors or []
        )
        if not any(is_database_unavailable(e.original_error) for e in errors):
            return
        try:
            mutation = context.operation_type is OperationType.MUTATION
        except RuntimeError:
            mutation = False
        applied: bool | None = None if tracker.committing else False
        log.warning("database unavailable during %s", context.operation_name or "an operation")
        error = GraphQLError(unavailable_message(mutation, applied),
                             extensions=unavailable_extensions(applied if mutation else False))
        if result is not None:
            result.data = None
            result.errors = [error]
        context.pre_execution_errors = [error]


# --- outside execution: the ASGI layer -----------------------------------------------------


def not_run_body() -> bytes:
    """The GraphQL response for a request that met the outage before anything ran."""
    error = {"message": NOT_RUN, "extensions": unavailable_extensions(False)}
    return orjson.dumps({"errors": [error]})


async def answer_http(scope: Scope, send: Send, graphql_path: str) -> None:
    """The 503 for a request whose handler met an unreachable database before responding.

    ``/graphql`` gets a GraphQL response (in the media type the client asked for); other
    routes get ``{"detail", "code"}`` as FastAPI's errors look. Nothing ran when this is
    needed (the exception came from outside any execution), so nothing was applied.
    """
    if scope["path"].rstrip("/") == graphql_path:
        media_type = negotiate(Headers(scope=scope).get("accept"))
        body = not_run_body()
    else:
        media_type = "application/json"
        body = orjson.dumps({"detail": NOT_RUN, "code": CODE})
    await send({
        "type": "http.response.start",
        "status": 503,
        "headers": [
            (b"content-type", media_type.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
            (b"cache-control", b"no-store"),
        ],
    })
    await send({"type": "http.response.body", "body": body})


async def close_websocket(scope: Scope, send: Send) -> None:
    """Close a socket that met the outage with 1013, so clients reconnect once it is over."""
    # Accepted first: a close before accepting is a 403 handshake, which says "refused"
    # rather than "come back".
    offered = scope.get("subprotocols") or []
    known = [p for p in offered if p in ("graphql-transport-ws", "graphql-ws")]
    await send({"type": "websocket.accept", "subprotocol": known[0] if known else None})
    await send({"type": "websocket.close", "code": WS_TRY_AGAIN_LATER,
                "reason": "Database unavailable"})
