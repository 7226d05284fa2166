"""FastAPI dependencies: app state, the current user, the GraphQL context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection, Request

from api.auth import AuthFailure, bearer_token
from api.state import AppState
from schema.context import Context, Viewer


def app_state(connection: HTTPConnection) -> AppState:
    state: AppState = connection.app.state.stockroom
    return state


async def get_state(connection: HTTPConnection) -> AppState:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a hop per request.
    return app_state(connection)


StateDep = Annotated[AppState, Depends(get_state)]


def client_key(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client else "unknown"


def new_context(state: AppState, connection: HTTPConnection) -> Context:
    context = Context(
        state.services,
        client=client_key(connection),
        request_id=connection.scope.get("state", {}).get("request_id"),
    )
    context.request = connection  # type: ignore[assignment]
    return context


async def authenticate(context: Context, state: AppState, header: str | None) -> None:
    """Fill ``context.user`` from an Authorization value; remember why when it fails."""
    try:
        token = bearer_token(header)
        if token is not None:
            context.user = await state.auth.authenticate(token)
    except AuthFailure as failure:
        context.user, context.auth_error = None, str(failure)


class RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__("rate limit exceeded")
        self.retry_after = int(retry_after)


async def rate_limited_response(_request: Request, exc: Exception) -> JSONResponse:
    """A GraphQL-shaped 429, so clients read it like any other error."""
    assert isinstance(exc, RateLimited)
    body = {"errors": [{"message": f"Rate limit exceeded: retry in {exc.retry_after} s",
                        "extensions": {"code": "RATE_LIMITED",
                                       "retryAfter": exc.retry_after}}]}
    return JSONResponse(body, status_code=429, headers={"Retry-After": str(exc.retry_after)})


async def http_context(state: AppState, connection: HTTPConnection) -> Context:
    """The GraphQL context of one HTTP request, its viewer known and its rate-limit hit
    counted; RateLimited when the viewer (or, anonymous, the client) is over the limit.
    The caller closes it."""
    context = new_context(state, connection)
    await authenticate(context, state, connection.headers.get("authorization"))
    key = f"user:{context.user.id}" if context.user else f"ip:{context.client}"
    retry_after = await state.limiter.request(key)
    if retry_after is not None:
        await context.close()
        raise RateLimited(retry_after)
    return context


async def get_context(connection: HTTPConnection, state: StateDep) -> AsyncIterator[Context]:
    """The GraphQL context as a dependency: WebSocket connections (HTTP requests build theirs
    in ``StockroomRouter.handle_http``, without dependency injection)."""
    if connection.scope["type"] == "http":
        context = await http_context(state, connection)
    else:
        context = new_context(state, connection)
        await authenticate(context, state, connection.headers.get("authorization"))
        await context.reader.reset()  # a socket may idle for hours: hold no connection
    try:
        yield context
    finally:
        await context.close()


async def get_current_user(connection: HTTPConnection, state: StateDep) -> Viewer:
    """REST routes: the bearer token's user, or 401."""
    context = new_context(state, connection)
    try:
        await authenticate(context, state, connection.headers.get("authorization"))
    finally:
        await context.close()
    if context.user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=context.auth_error or "Not authenticated",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return context.user


CurrentUser = Annotated[Viewer, Depends(get_current_user)]
