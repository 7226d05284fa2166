"""Request ids, JSON logs and Prometheus metrics, as pure ASGI (no BaseHTTPMiddleware)."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from graphql import GraphQLError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

from schema.plan.cache import PlanCache
from schema.plan.extension import PlannedReads

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id of the task that logged it."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        for key in ("method", "path", "status", "duration_ms", "operation", "user_id"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(json_logs: bool, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s [%(name)s] %(message)s"))
    root = logging.getLogger("stockroom")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


class Metrics:
    """One registry per app, so tests can build many apps in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "stockroom_http_requests", "HTTP requests", ["method", "status"],
            registry=self.registry,
        )
        self.operations = Counter(
            "stockroom_graphql_operations", "GraphQL operations", ["operation", "type"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "stockroom_graphql_duration_seconds", "GraphQL operation latency", ["operation"],
            registry=self.registry,
        )
        self.errors = Counter(
            "stockroom_graphql_errors", "GraphQL errors by code", ["code"],
            registry=self.registry,
        )
        self.subscriptions = Gauge(
            "stockroom_active_subscriptions", "Open subscriptions", registry=self.registry
        )
        self.broker_up = Gauge(
            "stockroom_broker_connected", "1 when the event broker is connected",
            registry=self.registry,
        )
        self.pool_checked_out = Gauge(
            "stockroom_db_pool_checked_out", "Database connections in use",
            registry=self.registry,
        )
        self.planner = Counter(
            "stockroom_planner_operations",
            "GraphQL operations by execution path (planned, fallback) and fallback reason",
            ["outcome", "reason"],
            registry=self.registry,
        )

    def planner_count(self, outcome: str, reason: str = "") -> float:
        """Operations counted so far with this outcome and reason."""
        value = self.registry.get_sample_value(
            "stockroom_planner_operations_total", {"outcome": outcome, "reason": reason}
        )
        return value or 0.0


class ObservabilityMiddleware:
    """Accept or mint X-Request-ID, echo it, time the request, log one line."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.log = logging.getLogger("stockroom.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if scope["type"] == "http":
                state = scope.get("state", {})
                self.metrics.http_requests.labels(scope["method"], str(status)).inc()
                self.log.info(
                    "%s %s %s", scope["method"], scope["path"], status,
                    extra={
                        "method": scope["method"], "path": scope["path"], "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "operation": state.get("operation"), "user_id": state.get("user_id"),
                    },
                )
            request_id_var.reset(token)


def planned_reads(metrics: Metrics, cache_size: int) -> Callable[[], SchemaExtension]:
    """The planner's extension factory, counting each operation's path on ``metrics``."""
    plans = PlanCache(cache_size)

    def record(outcome: str, reason: str) -> None:
        metrics.planner.labels(outcome, reason).inc()

    return lambda: PlannedReads(plans, record)


def metrics_extension(metrics: Metrics) -> type[SchemaExtension]:
    class MetricsExtension(SchemaExtension):
        holder = metrics

        """Count and time operations by name; count errors by code."""

        def on_operation(self) -> Iterator[None]:
            started = time.perf_counter()
            yield
            context = self.execution_context
            name = context.operation_name or "anonymous"
            try:
                kind = context.operation_type.value
            except RuntimeError:
                kind = "invalid"
            self.holder.operations.labels(name, kind).inc()
            self.holder.latency.labels(name).observe(time.perf_counter() - started)
            request = getattr(context.context, "request", None)
            state = getattr(request, "scope", {}).get("state")
            if isinstance(state, dict):
                state["operation"] = name
                user = getattr(context.context, "user", None)
                state["user_id"] = getattr(user, "id", None)
            # Strawberry mirrors execution errors into pre_execution_errors: take one list.
            errors: list[GraphQLError] = list(
                context.pre_execution_errors or getattr(context.result, "errors", None) or []
            )
            for error in errors:
                code = (error.extensions or {}).get("code", "INTERNAL_SERVER_ERROR")
                self.holder.errors.labels(str(code)).inc()

    return MetricsExtension
