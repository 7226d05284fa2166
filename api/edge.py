"""The one ASGI pass in front of the app: everything every request needs, in one layer.

Per HTTP request, reading the headers once: the request id (accepted or minted, echoed in
``X-Request-ID``), the body limit (declared length, then counted as it streams; uploads are
limited by their own route), the CSRF guard for GraphQL multipart requests, gzip when
accepted (``api/compression.py``), the JSON 503 when the handler met an unreachable database
(``api/outage.py``), one access-log line and one metrics count. WebSockets get the request
id and the outage close; other scopes pass through.

``GET``/``POST /graphql`` go from here straight to the GraphQL router's own ASGI handler
(``StockroomRouter.handle_http``): it is the hot path, and Starlette's routing and FastAPI's
dependency injection cost more than many whole requests. Everything else goes down the app.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from collections.abc import Iterator

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import outage
from api.compression import Compression, accepts_gzip
from api.observability import Metrics, request_id_var

_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
PREFLIGHT_HEADERS = (b"apollo-require-preflight", b"x-apollo-operation-name")

log = logging.getLogger("stockroom.access")
outage_log = logging.getLogger("stockroom.outage")


def _request_ids() -> Iterator[str]:
    """Unique ids without a system call each: a random prefix per process and a counter,
    32 hex digits like a UUID's. Unique is all a request id must be; it is no secret."""
    prefix = secrets.token_hex(8)
    for n in itertools.count():
        yield f"{prefix}{n:016x}"


class BodyTooLarge(Exception):
    pass


class Edge:
    """Pure ASGI: request ids, body limit, CSRF guard, gzip, outages, access log, metrics."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_body_bytes: int,
        multipart_max_bytes: int,
        exempt_prefixes: tuple[str, ...] = ("/uploads",),
        graphql_path: str = "/graphql",
        graphql: ASGIApp | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes
        self.multipart_max = multipart_max_bytes
        self.exempt = exempt_prefixes
        self.graphql_path = graphql_path
        self.graphql = graphql or app
        self.compressed_app = Compression(app)
        self.compressed_graphql = Compression(self.graphql)
        self.ids = _request_ids()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def _request_id(self, incoming: bytes | None, scope: Scope) -> str:
        text = incoming.decode("latin-1") if incoming else ""
        request_id = text if text and _SAFE_ID.fullmatch(text) else next(self.ids)
        scope.setdefault("state", {})["request_id"] = request_id
        return request_id

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started_at = time.perf_counter()
        incoming = content_type = declared = encodings = None
        preflight = False
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                declared = value
            elif name == b"accept-encoding":
                encodings = value
            elif name == b"x-request-id":
                incoming = value
            elif name in PREFLIGHT_HEADERS and value:
                preflight = True
        request_id = self._request_id(incoming, scope)
        token = request_id_var.set(request_id)
        method, path = scope["method"], scope["path"]
        status = 500
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            multipart = content_type is not None and content_type.startswith(b"multipart/")
            graphql = path == self.graphql_path and method in ("GET", "POST")
            if multipart and not preflight and path.rstrip("/") == self.graphql_path:
                response = PlainTextResponse(
                    "Multipart requests need the Apollo-Require-Preflight header (CSRF guard)",
                    status_code=400,
                )
                await response(scope, receive, tracking_send)
                return
            limited_receive, limit = receive, self.max_body
            if not path.startswith(self.exempt):
                limit = self.multipart_max if multipart else self.max_body
                if declared is not None and (not declared.isdigit() or int(declared) > limit):
                    await self._too_large(scope, receive, tracking_send, limit)
                    return
                limited_receive = _limited(receive, limit)
            inner: ASGIApp
            if encodings is not None and accepts_gzip(encodings.decode("latin-1")):
                inner = self.compressed_graphql if graphql else self.compressed_app
            else:
                inner = self.graphql if graphql else self.app
            try:
                await inner(scope, limited_receive, tracking_send)
            except BodyTooLarge:
                if not started:
                    await self._too_large(scope, receive, tracking_send, limit)
            except Exception as exc:
                if started or not outage.is_database_unavailable(exc):
                    raise
                outage_log.warning("database unavailable: %s %s (%s)", method, path,
                                   type(exc).__name__)
                await outage.answer_http(scope, tracking_send, self.graphql_path)
        finally:
            self.metrics.count_http(method, status)
            if log.isEnabledFor(logging.INFO):
                state = scope["state"]
                # Made and handled directly: Logger.info would also walk the stack to find
                # its caller, which an access line does not need, on every request.
                log.handle(log.makeRecord(
                    log.name, logging.INFO, __file__, 0, "%s %s %s", (method, path, status),
                    None, extra={
                        "method": method, "path": path, "status": status,
                        "duration_ms": round((time.perf_counter() - started_at) * 1000, 2),
                        "operation": state.get("operation"), "user_id": state.get("user_id"),
                    }))
            request_id_var.reset(token)

    @staticmethod
    async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = PlainTextResponse(f"Request body larger than {limit} bytes", status_code=413)
        await response(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        incoming = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        token = request_id_var.set(self._request_id(incoming, scope))
        opened = False

        async def tracking_send(message: Message) -> None:
            nonlocal opened
            if message["type"] in ("websocket.accept", "websocket.close",
                                   "websocket.http.response.start"):
                opened = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if opened or not outage.is_database_unavailable(exc):
                raise
            outage_log.warning("database unavailable: WS %s (%s)", scope["path"],
                               type(exc).__name__)
            await outage.close_websocket(scope, send)
        finally:
            request_id_var.reset(token)


def _limited(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def limited_receive() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge
        return message

    return limited_receive
