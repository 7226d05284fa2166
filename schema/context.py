"""The per-request Context and the interfaces ``api/`` implements for ``schema/``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.fastapi import BaseContext

from db.models import Role, User
from db.session import Publisher, Reader, unit_of_work
from db.uploads import ImageFile
from schema.loaders import Loaders

if TYPE_CHECKING:
    from schema.fanout import Hub


@dataclass(frozen=True, slots=True)
class Viewer:
    """The authenticated user of a request, as the token and the database agree."""

    id: int
    email: str
    role: Role
    token_version: int
    expires_at: float | None = None  # the access token's exp (epoch seconds)


class IssuedTokens(Protocol):
    @property
    def access_token(self) -> str: ...
    @property
    def refresh_token(self) -> str: ...
    @property
    def expires_in(self) -> int: ...
    @property
    def user(self) -> User: ...


UnitOfWork = Callable[[], AbstractAsyncContextManager[AsyncSession]]


class Auth(Protocol):
    """Login and refresh over tokens and the database; ``api/`` implements it.

    Both write through the unit of work they are given (the request's own, so a request
    never holds two pool connections) and raise ``db.errors.ServiceError`` for a business
    failure.
    """

    async def login(self, work: UnitOfWork, email: str, password: str) -> IssuedTokens: ...

    async def refresh(self, work: UnitOfWork, refresh_token: str) -> IssuedTokens: ...


class LoginThrottle(Protocol):
    async def login(self, client: str) -> float | None:
        """None when another login from ``client`` may go ahead, else seconds to wait."""
        ...


class ImageUploads(Protocol):
    """Checks and stores an uploaded file; ServiceError(INVALID) when it is refused."""

    async def stage(self, upload: Any) -> ImageFile: ...


PasswordHasher = Callable[[str], str]


class WebhookControl(Protocol):
    """The webhook dispatcher as mutations see it; ``api/webhooks`` implements it."""

    async def check_url(self, url: str) -> None:
        """ServiceError(INVALID) on ``url`` when webhooks may not point there."""
        ...

    def wake(self) -> None:
        """Send what is due now (a ping or a redelivery was just queued)."""
        ...


class SchemaSettings(Protocol):
    @property
    def subscription_cap(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Services:
    """What the app gives every request: data access, events, auth, uploads, settings."""

    read_factory: async_sessionmaker[AsyncSession]
    write_factory: async_sessionmaker[AsyncSession]
    fanout: Hub  # this worker's subscriptions, fed from the event log
    publish: Publisher
    settings: SchemaSettings
    auth: Auth
    throttle: LoginThrottle
    images: ImageUploads
    hash_password: PasswordHasher
    webhooks: WebhookControl


class Context(BaseContext):
    """What every resolver may reach: data access, the viewer, the app's services.

    ``user`` and ``auth_error`` are filled in by the context dependency (for WebSockets, by
    ``connection_init``); everything else is fixed when the request starts.
    """

    def __init__(
        self, services: Services, *, client: str = "unknown", request_id: str | None = None
    ) -> None:
        super().__init__()
        self.services = services
        self.client = client
        self.request_id = request_id
        self.reader = Reader(services.read_factory)
        self.loaders = Loaders(self.reader)
        self.user: Viewer | None = None
        self.auth_error: str | None = None
        self.active_subscriptions = 0
        self.on_close: list[Callable[[], object]] = []

    @property
    def settings(self) -> SchemaSettings:
        return self.services.settings

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A write transaction for one mutation; reads afterwards see what it committed."""
        # Hand the read connection back first: a request never holds two pool connections,
        # so many concurrent writers cannot starve the pool waiting on each other.
        await self.reader.reset()
        try:
            async with unit_of_work(self.services.write_factory, self.services.publish) as s:
                yield s
        finally:
            await self.refresh_reads()

    async def refresh_reads(self) -> None:
        await self.reader.reset()
        self.loaders.clear_all()

    async def close(self) -> None:
        for callback in self.on_close:
            callback()
        await self.reader.close()
