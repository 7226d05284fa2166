"""The GraphQL endpoint: Strawberry's router with our context, JSON codec and WS auth."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta
from typing import Any

import orjson
from fastapi.responses import HTMLResponse
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from api.deps import app_state, authenticate, get_context
from api.docs_ui import graphiql_response
from api.settings import Settings
from api.ws import LegacyWSHandler, TransportWSHandler
from schema.context import Context


class StockroomRouter(GraphQLRouter[Context, None]):
    # Subscriptions join their fan-out group (api/ws.py); the protocols are otherwise Strawberry's.
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def encode_json(self, data: object) -> str:
        # str, not bytes: WebSocket clients expect text frames.
        return orjson.dumps(data).decode()

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        """GraphiQL from vendored assets under a strict CSP: works with no internet."""
        return graphiql_response()

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
            await authenticate(context, app_state(request), header)
            await context.reader.reset()
        if context.user is None:
            raise ConnectionRejectionError(
                {"message": context.auth_error or "Authentication required"}
            )
        _close_at_expiry(context)
        return UNSET


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
        context_getter=get_context,  # type: ignore[arg-type]  # async-generator dependency
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
        connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout),
        keep_alive=True,
        keep_alive_interval=settings.ws_keepalive,
        allowed_origins=settings.cors_origins,
        multipart_uploads_enabled=True,
    )


class MultipartCsrfGuard:
    """GraphQL multipart requests must carry a header no simple cross-site form can send."""

    PREFLIGHT_HEADERS = (b"apollo-require-preflight", b"x-apollo-operation-name")

    def __init__(self, app: ASGIApp, path: str = "/graphql") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].rstrip("/") == self.path:
            headers = dict(scope["headers"])
            if headers.get(b"content-type", b"").startswith(b"multipart/") and not any(
                headers.get(name) for name in self.PREFLIGHT_HEADERS
            ):
                response = PlainTextResponse(
                    "Multipart requests need the Apollo-Require-Preflight header (CSRF guard)",
                    status_code=400,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
