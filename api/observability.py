"""JSON logs and Prometheus metrics (``api/edge.py`` logs and counts each HTTP request)."""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from graphql import GraphQLError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from strawberry.extensions import SchemaExtension

from schema.plan.cache import PlanCache
from schema.plan.extension import PlannedReads

MAX_REMEMBERED_LABELS = 1000

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id of the task that logged it."""

    def __init__(self) -> None:
        super().__init__()
        # Every request logs a line: its timestamp is formatted once per second, not per line.
        self._second = -1
        self._stamp = ""

    def _time(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(second))
            self._second = second
        return self._stamp

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created),
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
        return orjson.dumps(entry, default=str).decode()


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
        self.webhook_deliveries = Counter(
            "stockroom_webhook_deliveries",
            "Webhook delivery attempts by outcome (delivered, failed: to be retried, gave_up)",
            ["outcome"],
            registry=self.registry,
        )
        self.webhooks_deactivated = Counter(
            "stockroom_webhooks_deactivated",
            "Webhooks switched off because their deliveries kept giving up",
            registry=self.registry,
        )
        self._http_children: dict[tuple[str, int], Any] = {}
        self._operation_children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def watch_fanout(self, hub: Any) -> None:
        """Expose the subscription hub's counters, read at each scrape."""
        self.registry.register(_FanoutCollector(hub))

    def webhook_attempts(
        self, delivered: int, failed: int, gave_up: int, deactivated: int
    ) -> None:
        for outcome, n in (("delivered", delivered), ("failed", failed), ("gave_up", gave_up)):
            if n:
                self.webhook_deliveries.labels(outcome).inc(n)
        if deactivated:
            self.webhooks_deactivated.inc(deactivated)

    def planner_count(self, outcome: str, reason: str = "") -> float:
        """Operations counted so far with this outcome and reason."""
        value = self.registry.get_sample_value(
            "stockroom_planner_operations_total", {"outcome": outcome, "reason": reason}
        )
        return value or 0.0

    def count_http(self, method: str, status: int) -> None:
        """One HTTP request answered; the labelled child is looked up once per pair."""
        child = self._http_children.get((method, status))
        if child is None:
            child = self.http_requests.labels(method, str(status))
            self._http_children[(method, status)] = child
        child.inc()

    def count_operation(self, name: str, kind: str, seconds: float) -> None:
        """One GraphQL operation ran; its labelled children are looked up once per pair."""
        children = self._operation_children.get((name, kind))
        if children is None:
            children = (self.operations.labels(name, kind), self.latency.labels(name))
            # Operation names come from clients: remember only so many of them.
            if len(self._operation_children) < MAX_REMEMBERED_LABELS:
                self._operation_children[(name, kind)] = children
        children[0].inc()
        children[1].observe(seconds)


class _FanoutCollector:
    def __init__(self, hub: Any) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "stockroom_subscription_events", "Events the feed handed to subscriptions",
            value=self.hub.events,
        )
        yield CounterMetricFamily(
            "stockroom_subscription_executions",
            "Subscription executions: one per matching group per event",
            value=self.hub.executions,
        )
        yield GaugeMetricFamily(
            "stockroom_subscription_groups", "Subscription groups (document, variables, role)",
            value=self.hub.group_count,
        )


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
            self.holder.count_operation(name, kind, time.perf_counter() - started)
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
