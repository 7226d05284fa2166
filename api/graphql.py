"""The GraphQL endpoint: Strawberry's router with our context, JSON codec and WS auth.

HTTP follows the GraphQL over HTTP spec (``api/graphql_http.py``): the response media type
is negotiated, request errors get 4xx under ``application/graphql-response+json``, GET reads
are revalidated by ETag, and an unreachable database answers 503 (``api/outage.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.http.base import BaseRequestProtocol
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyConnectionInitMessage,
)
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from api import graphql_http
from api.deps import (
    RateLimited,
    app_state,
    authenticate,
    get_context,
    http_context,
    rate_limited_response,
)
from api.docs_ui import graphiql_response
from api.graphql_http import Exchange
from api.outage import (
    NOT_RUN,
    RETRY_AFTER_SECONDS,
    WS_TRY_AGAIN_LATER,
    DatabaseUnavailable,
    is_database_unavailable,
    unavailable_extensions,
)
from api.settings import Settings
from schema.context import Context

GRAPHQL_PATH = "/graphql"
# Content-Type values of a JSON body as clients send them, taken without parsing.
PLAIN_JSON = frozenset({"application/json", "application/json; charset=utf-8",
                        "application/json;charset=utf-8", "application/json; charset=UTF-8"})
_EXCHANGE = "stockroom.graphql_exchange"  # the scope key of the request's Exchange
_SUB_RESPONSE = "stockroom.sub_response"  # and of the response its resolvers may adjust


class _TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except DatabaseUnavailable:
            await self.websocket.close(code=WS_TRY_AGAIN_LATER, reason="Database unavailable")


class _LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    async def handle_connection_init(self, message: LegacyConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except DatabaseUnavailable:
            # The legacy protocol's refusal: connection_error, then 1011 (its clients
            # reconnect after any close).
            await self.send_message({"type": "connection_error", "payload": {
                "message": NOT_RUN, "extensions": unavailable_extensions(False)}})
            await self.websocket.close(code=1011, reason="Database unavailable")


class _ASGIEndpoint:
    """An ASGI callable as a route's endpoint (Starlette wraps plain functions as handlers)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class StockroomRouter(GraphQLRouter[Context, None]):
    """Strawberry's router, its HTTP path trimmed: ``GET``/``POST`` are one plain ASGI
    handler (``handle_http``) that builds the context itself instead of through FastAPI's
    dependency injection; WebSockets keep the stock route and its dependency."""

    graphql_transport_ws_handler_class = _TransportWSHandler
    graphql_ws_handler_class = _LegacyWSHandler

    def __init__(self, schema: Any, **options: Any) -> None:
        super().__init__(schema, **options)
        self.http_app = _ASGIEndpoint(self.handle_http)
        stock = [r for r in self.routes if isinstance(r, APIRoute)]
        self.routes[:] = [r for r in self.routes if not isinstance(r, APIRoute)]
        self.routes.insert(0, Route(stock[0].path, self.http_app, methods=["GET", "POST"],
                                    include_in_schema=False))

    async def handle_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One HTTP request: its context (viewer, rate limit), the operation, the answer."""
        request = Request(scope, receive)
        state = app_state(request)
        try:
            context = await http_context(state, request)
        except RateLimited as refusal:
            response: Response = await rate_limited_response(request, refusal)
        else:
            try:
                scope[_SUB_RESPONSE] = context.response = _sub_response()
                try:
                    response = await self._run_http(request, context)
                except HTTPException as error:
                    response = PlainTextResponse(error.reason, status_code=error.status_code)
            finally:
                await context.close()
        await response(scope, receive, send)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """The usual request (POST of one JSON operation) read without Strawberry's content
        type parser (an email.message per request) or a scan of every header for a stream
        transport (we serve none); anything else goes the stock way, which reads the cached
        body again and says precisely what is wrong with it."""
        content_type = request.content_type
        if (request.method == "POST" and content_type in PLAIN_JSON
                and not self._stream_transport_map):
            data = self.parse_json(await request.get_body())
            if isinstance(data, dict):
                query, variables = data.get("query"), data.get("variables")
                extensions = data.get("extensions")
                if (isinstance(query, str | None) and isinstance(variables, dict | None)
                        and isinstance(extensions, dict | None)):
                    return GraphQLRequestData(
                        query=query,
                        variables=variables,
                        operation_name=data.get("operationName"),
                        extensions=extensions,
                        protocol="http",
                    )
        return await super().parse_http_body(request)

    async def get_sub_response(self, request: Request) -> Response:
        sub: Response = request.scope.get(_SUB_RESPONSE) or _sub_response()
        return sub

    def encode_json(self, data: object) -> str:
        # str, not bytes: WebSocket clients expect text frames.
        return orjson.dumps(data).decode()

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        """GraphiQL from vendored assets under a strict CSP: works with no internet."""
        return graphiql_response()

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # A persisted query over GET has no `query` parameter either: with `Accept: */*` it
        # must still be executed, not answered with the IDE's page.
        return (super().should_render_graphql_ide(request)
                and request.query_params.get("extensions") is None)

    async def run(  # type: ignore[override]
        self,
        request: Request | WebSocket,
        context: Any = UNSET,
        root_value: Any = UNSET,
    ) -> Response | WebSocket:
        if isinstance(request, WebSocket):
            return await super().run(request, context=context, root_value=root_value)
        return await self._run_http(request, context)

    async def _run_http(self, request: Request, context: Context) -> Response:
        """Strawberry's run, with the media type, status and caching of GraphQL over HTTP."""
        exchange = Exchange(graphql_http.negotiate(request.headers.get("accept")))
        request.scope[_EXCHANGE] = exchange
        try:
            response = await super().run(request, context=context, root_value=None)
        except HTTPException as error:
            if exchange.media_type != graphql_http.GRAPHQL_RESPONSE_JSON:
                raise  # answered as plain text, as for application/json clients before
            return Response(
                graphql_http.error_body(error.reason, "BAD_REQUEST"),
                status_code=error.status_code,
                media_type=graphql_http.CONTENT_TYPES[exchange.media_type],
            )
        if (isinstance(response, StreamingResponse)
                or getattr(response, "media_type", None) != graphql_http.JSON):
            return response  # the IDE's page, or a stream
        return self._finish(request, response, exchange)

    @staticmethod
    def _finish(request: Request, response: Response, exchange: Exchange) -> Response:
        body = bytes(response.body)
        status = exchange.status(batch=body[:1] == b"[")
        if response.status_code == 200:
            response.status_code = status
        response.headers["content-type"] = graphql_http.CONTENT_TYPES[exchange.media_type]
        if status == 503:
            response.headers["retry-after"] = str(RETRY_AFTER_SECONDS)
        if request.method != "GET" or response.status_code != 200:
            return response
        # Reads over GET (persisted queries): the browser may keep the response but must
        # ask again each time; an unchanged answer then costs a 304 and no body.
        etag = graphql_http.strong_etag(body)
        response.headers["etag"] = etag
        response.headers["cache-control"] = graphql_http.GET_CACHE_CONTROL
        MutableHeaders(raw=response.raw_headers).add_vary_header("Accept")
        if graphql_http.etag_matches(request.headers.get("if-none-match"), etag):
            headers = {k: v for k, v in response.headers.items()
                       if k in ("etag", "cache-control", "vary")}
            return Response(status_code=304, headers=headers)
        return response

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        formatted = process_result(result)
        exchange = request.scope.get(_EXCHANGE)
        if not isinstance(exchange, Exchange):
            return formatted
        exchange.statuses.append(graphql_http.result_status(result, exchange.media_type))
        return graphql_http.shape(formatted, result, exchange.media_type)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Authenticate from ``connection_init``'s payload; refuse (4403) a bad token."""
        params = context.connection_params
        header: Any = None
        if isinstance(params, dict):
            header = params.get("Authorization") or params.get("authorization")
        if header is not None and not isinstance(header, str):
            raise ConnectionRejectionError({"message": "Authorization must be a string"})
        if header is not None:
            request = context.request
            assert request is not None
            try:
                await authenticate(context, app_state(request), header)
                await context.reader.reset()
            except Exception as exc:
                if is_database_unavailable(exc):
                    raise DatabaseUnavailable from exc
                raise
        if context.user is None:
            raise ConnectionRejectionError(
                {"message": context.auth_error or "Authentication required"}
            )
        _close_at_expiry(context)
        return UNSET


def _sub_response() -> Response:
    """Where resolvers may set a status or headers (a throttled login does), made as FastAPI
    makes its own: no body headers, and no status until one is set."""
    response = Response()
    del response.headers["content-length"]
    response.status_code = None  # type: ignore[assignment]
    return response


def _close_at_expiry(context: Context) -> None:
    """An open socket must not outlive its token: close it 4403 when the token expires."""
    socket, user = context.request, context.user
    if not isinstance(socket, WebSocket) or user is None or user.expires_at is None:
        return
    delay = max(0.0, user.expires_at - time.time())

    async def close_when_expired() -> None:
        await asyncio.sleep(delay)
        if socket.client_state is WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError):  # already closing
                await socket.close(code=4403, reason="Token expired")

    task = asyncio.create_task(close_when_expired())
    _EXPIRY_TASKS.add(task)
    task.add_done_callback(_EXPIRY_TASKS.discard)
    context.on_close.append(task.cancel)


_EXPIRY_TASKS: set[asyncio.Task[None]] = set()


def graphql_router(schema: Any, settings: Settings) -> StockroomRouter:
    return StockroomRouter(
        schema,
        path=GRAPHQL_PATH,
        context_getter=get_context,
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
        connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout),
        keep_alive=True,
        keep_alive_interval=settings.ws_keepalive,
        allowed_origins=settings.cors_origins,
        multipart_uploads_enabled=True,
    )
