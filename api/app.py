"""``create_app(settings)``: builds the engine, broker and schema in the lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse

from api.auth import AuthService
from api.bodylimit import BodyLimitMiddleware
from api.broker import create_broker
from api.compression import CompressionMiddleware
from api.deps import RateLimited, rate_limited_response
from api.docs_ui import mount_static, swagger_ui_response
from api.graphql import MultipartCsrfGuard, graphql_router
from api.observability import (
    Metrics,
    ObservabilityMiddleware,
    configure_logging,
    metrics_extension,
    planned_reads,
)
from api.outage import OutageExtension, OutageMiddleware, watch_commits
from api.passwords import hash_password
from api.ratelimit import RateLimiter
from api.readiness import Readiness
from api.routes import auth as auth_routes
from api.routes import health
from api.routes import uploads as upload_routes
from api.settings import Settings
from api.state import AppState
from api.sweeper import sweep_forever
from api.tokens import TokenService
from api.uploads.staging import ImageStager
from api.uploads.storage import LocalStorage
from db.engine import create_engine, read_sessionmaker, write_sessionmaker
from schema import build_schema
from schema.context import Services
from schema.limits import Limits
from schema.persisted import PersistedQueryStore

log = logging.getLogger("stockroom")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_json, settings.log_level)
    metrics = Metrics()
    persisted = None
    if settings.persisted_only:
        if settings.persisted_queries_file is None:
            raise ValueError("STOCKROOM_PERSISTED_ONLY needs STOCKROOM_PERSISTED_QUERIES_FILE")
        persisted = PersistedQueryStore.from_file(
            settings.persisted_queries_file, settings.apq_cache_size
        )
    else:
        persisted = PersistedQueryStore(settings.apq_cache_size)
    extra: list[Any] = [metrics_extension(metrics)]
    if settings.otel_enabled:
        # Imported only when asked for: the otel extra is optional.
        from strawberry.extensions.tracing import OpenTelemetryExtension

        extra.append(OpenTelemetryExtension)
    # Last: it must see a result's errors before masking and metrics do.
    extra.append(OutageExtension)
    schema = build_schema(
        limits=Limits(
            max_depth=settings.max_query_depth,
            max_aliases=settings.max_aliases,
            max_tokens=settings.max_query_tokens,
            max_cost=settings.max_query_cost,
        ),
        persisted=persisted,
        production=not settings.is_dev,
        introspection=settings.introspection_enabled,
        extra_extensions=extra,
        max_batch=settings.max_batch_operations,
        planner=planned_reads(metrics, settings.apq_cache_size) if settings.planner else None,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
        watch_commits(engine)
        read_factory, write_factory = read_sessionmaker(engine), write_sessionmaker(engine)
        tokens = TokenService(settings)
        broker = create_broker(settings.broker_url, queue_size=settings.subscriber_queue_size)
        await broker.start()
        storage = LocalStorage(settings.upload_dir)
        auth = AuthService(tokens, settings.access_token_ttl)
        limiter = RateLimiter(
            settings.rate_limit_storage, settings.rate_limit, settings.login_rate_limit
        )
        services = Services(
            read_factory=read_factory,
            write_factory=write_factory,
            broker=broker,
            publish=broker.publish_events,
            settings=settings,
            auth=auth,
            throttle=limiter,
            images=ImageStager(storage, settings.max_upload_bytes, settings.max_image_pixels),
            hash_password=hash_password,
        )
        state = AppState(
            settings=settings,
            engine=engine,
            read_factory=read_factory,
            write_factory=write_factory,
            broker=broker,
            tokens=tokens,
            auth=auth,
            metrics=metrics,
            storage=storage,
            limiter=limiter,
            services=services,
        )
        app.state.stockroom = state
        app.state.readiness = readiness = Readiness(settings.database_url, broker)
        state.background.append(asyncio.create_task(sweep_forever(state), name="sweeper"))
        try:
            yield
        finally:
            for task in state.background:
                task.cancel()
            await asyncio.gather(*state.background, return_exceptions=True)
            await broker.close()
            await readiness.close()
            await engine.dispose()

    app = FastAPI(
        title="Stockroom",
        summary="Inventory GraphQL API: the REST routes beside /graphql",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served below from vendored assets, so it works offline
        redoc_url=None,
    )
    mount_static(app)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return swagger_ui_response(app.openapi_url or "/openapi.json", "Stockroom - REST API")

    app.state.sdl = schema.as_str()
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Apollo-Require-Preflight",
                           "X-Request-ID"],
            max_age=600,
        )
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        exempt_prefixes=("/uploads",),  # streamed and limited by the upload route itself
        multipart_max_bytes=settings.max_upload_bytes + 64 * 1024,
    )
    app.add_middleware(MultipartCsrfGuard)
    app.add_middleware(OutageMiddleware)
    app.add_middleware(CompressionMiddleware)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    app.add_exception_handler(RateLimited, rate_limited_response)
    app.include_router(health.router)
    app.include_router(auth_routes.router)
    app.include_router(upload_routes.router)
    app.include_router(graphql_router(schema, settings), prefix="/graphql")
    return app
