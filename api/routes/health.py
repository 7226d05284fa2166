"""Liveness, readiness and the SDL."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import StateDep
from api.readiness import Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the database and the broker answer",
    responses={503: {"description": "A dependency is down"}},
)
async def readyz(request: Request) -> JSONResponse:
    readiness: Readiness = request.app.state.readiness
    checks = await readiness.checks()
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )


@router.get("/schema.graphql", summary="The GraphQL schema (SDL)", response_class=PlainTextResponse)
async def sdl(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.app.state.sdl, media_type="text/plain; charset=utf-8")


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def metrics(state: StateDep) -> Response:
    state.metrics.broker_up.set(1 if state.broker.connected else 0)
    state.metrics.subscriptions.set(state.hub.subscriber_count)
    pool = state.engine.sync_engine.pool
    checked_out = getattr(pool, "checkedout", None)
    if callable(checked_out):
        state.metrics.pool_checked_out.set(checked_out())
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
