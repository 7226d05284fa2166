"""Everything the app builds once at start-up and shares across requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.auth import AuthService
from api.broker import BrokerBackend
from api.broker.feed import EventFeed
from api.imports.runner import ImportRunner
from api.observability import Metrics
from api.ratelimit import RateLimiter
from api.settings import Settings
from api.tokens import TokenService
from api.uploads.storage import LocalStorage
from api.webhooks.dispatcher import WebhookDispatcher
from schema.context import Services
from schema.fanout import Hub


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    read_factory: async_sessionmaker[AsyncSession]
    write_factory: async_sessionmaker[AsyncSession]
    broker: BrokerBackend
    feed: EventFeed
    hub: Hub
    tokens: TokenService
    auth: AuthService
    metrics: Metrics
    storage: LocalStorage
    limiter: RateLimiter
    services: Services
    webhooks: WebhookDispatcher
    imports: ImportRunner | None = None
    background: list[Any] = field(default_factory=list)
