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
from starlette.types import ASGIApp

from api.auth import AuthService
from api.broker import create_broker
from api.broker.feed import EventFeed
from api.deps import RateLimited, rate_limited_response
from api.docs_ui import mount_static, swagger_ui_response
from api.edge import Edge
from api.graphql import GRAPHQL_PATH, graphql_router
from api.imports.runner import ImportRunner
from api.observability import Metrics, configure_logging, metrics_extension, planned_reads
from api.outage import OutageExtension, watch_commits
from api.passwords import hash_password
from api.ratelimit import RateLimiter
from api.readiness import Readiness
from api.routes import auth as auth_routes
from api.routes import exports as export_routes
from api.routes import health
from api.routes import imports as import_routes
from api.routes import uploads as upload_routes
from api.settings import Settings
from api.state import AppState
from api.sweeper import sweep_forever
from api.tokens import TokenService
from api.uploads.staging import ImageStager
from api.uploads.storage import LocalStorage
from api.viewers import ViewerCache
from api.webhooks.dispatcher import WebhookDispatcher
from api.webhooks.guard import UrlGuard
from db.engine import create_engine, read_sessionmaker, write_sessionmaker
from db.imports import ImportFiles
from db.imports import Limits as ImportLimits
from schema import build_schema
from schema.context import Services
from schema.fanout import Hub
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
        hub = Hub(queue_size=settings.subscriber_queue_size, retention=settings.event_retention)
        feed = EventFeed(
            # Tagged: the worker's reads of the log are nobody's request.
            read_sessionmaker(engine, origin="feed"),
            hub,
            poll_seconds=settings.event_poll_seconds,
            gap_seconds=settings.event_gap_seconds,
        )
        hub.wake = feed.wake
        metrics.watch_fanout(hub)
        broker = create_broker(settings.broker_url)
        broker.listen(feed.wake)
        await broker.start()
        await feed.start()
        storage = LocalStorage(settings.upload_dir)
        # Its reads serve every request of a user for a while: tagged, they are told apart.
        viewers = ViewerCache(read_sessionmaker(engine, origin="viewers"),
                              settings.viewer_cache_seconds)
        auth = AuthService(tokens, settings.access_token_ttl, viewers)
        dispatcher = WebhookDispatcher(
            # Tagged: its reads and writes are the worker's own, not a request's.
            read_factory=read_sessionmaker(engine, origin="webhooks"),
            write_factory=write_sessionmaker(engine, origin="webhooks"),
            settings=settings,
            guard=UrlGuard(
                allow_private=settings.webhook_private_allowed,
                require_https=not settings.is_dev,
            ),
            publish=broker.publish_events,
            metrics=metrics,
        )
        feed.listen(dispatcher.heard)
        limiter = RateLimiter(
            settings.rate_limit_storage, settings.rate_limit, settings.login_rate_limit
        )
        services = Services(
            read_factory=read_factory,
            write_factory=write_factory,
            fanout=hub,
            publish=viewers.forgetting(broker.publish_events),
            settings=settings,
            auth=auth,
            throttle=limiter,
            images=ImageStager(storage, settings.max_upload_bytes, settings.max_image_pixels),
            hash_password=hash_password,
            webhooks=dispatcher,
        )
        state = AppState(
            settings=settings,
            engine=engine,
            read_factory=read_factory,
            write_factory=write_factory,
            broker=broker,
            feed=feed,
            hub=hub,
            tokens=tokens,
            auth=auth,
            metrics=metrics,
            storage=storage,
            limiter=limiter,
            services=services,
            webhooks=dispatcher,
        )
        state.imports = ImportRunner(
            read_factory=read_factory,
            write_factory=write_factory,
            publish=broker.publish_events,
            files=ImportFiles(settings.upload_dir / "imports"),
            limits=ImportLimits(settings.max_import_rows, settings.import_batch_rows),
            stale_seconds=settings.import_stale_seconds,
            poll_seconds=settings.import_poll_seconds,
        )
        app.state.stockroom = state
        app.state.readiness = readiness = Readiness(settings.database_url, broker)
        await state.imports.start()
        state.background.append(asyncio.create_task(sweep_forever(state), name="sweeper"))
        importing = asyncio.create_task(state.imports.run_forever(), name="imports")
        state.background.append(importing)
        sending = asyncio.create_task(dispatcher.run_forever(), name="webhooks")
        try:
            yield
        finally:
            await asyncio.gather(
                state.imports.stop(importing, grace=10),
                dispatcher.stop(sending, grace=settings.webhook_timeout + 2),
            )
            for task in state.background:
                task.cancel()
            await asyncio.gather(*state.background, return_exceptions=True)
            await feed.close()
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
    graphql = graphql_router(schema, settings)
    graphql_http: ASGIApp = graphql.http_app
    if settings.cors_origins:
        cors: dict[str, Any] = {
            "allow_origins": settings.cors_origins,
            "allow_methods": ["GET", "POST", "OPTIONS"],
            "allow_headers": ["Authorization", "Content-Type", "Apollo-Require-Preflight",
                              "X-Request-ID"],
            "max_age": 600,
        }
        app.add_middleware(CORSMiddleware, **cors)
        graphql_http = CORSMiddleware(graphql_http, **cors)
    app.add_middleware(
        Edge,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        # Streamed and limited by their routes themselves (imports: STOCKROOM_MAX_IMPORT_BYTES).
        exempt_prefixes=("/uploads", "/imports"),
        multipart_max_bytes=settings.max_upload_bytes + 64 * 1024,
        graphql_path=GRAPHQL_PATH,
        graphql=graphql_http,
    )
    app.add_exception_handler(RateLimited, rate_limited_response)
    app.include_router(health.router)
    app.include_router(auth_routes.router)
    app.include_router(upload_routes.router)
    app.include_router(import_routes.router)
    app.include_router(export_routes.router)
    app.include_router(graphql)
    return app
