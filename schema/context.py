"""The per-request Context and the interfaces ``api/`` implements for ``schema/``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.fastapi import BaseContext

from db.models import Image, Role, User
from db.session import EventSink, Reader, unit_of_work
from schema.loaders import Loaders


@dataclass(frozen=True, slots=True)
class Viewer:
    """The authenticated user of a request, as the token and the database agree."""

    id: int
    email: str
    role: Role
    token_version: int
    expires_at: float | None = None  # the access token's exp (epoch seconds)


class SubscriberTooSlow(Exception):
    """The subscriber's queue overflowed: it is cut off rather than left to grow memory."""


class Broker(Protocol):
    """Event fan-out; ``api/`` provides memory, Redis and PostgreSQL backends."""

    async def publish(self, channel: str, message: dict[str, Any]) -> None: ...

    def subscribe(
        self, channel: str
    ) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]: ...


class IssuedTokens(Protocol):
    @property
    def access_token(self) -> str: ...
    @property
    def refresh_token(self) -> str: ...
    @property
    def expires_in(self) -> int: ...
    @property
    def user(self) -> User: ...


class Auth(Protocol):
    """Login and refresh; ``api/`` implements it over tokens and the database.

    Both raise ``db.errors.ServiceError`` for a business failure.
    """

    async def login(self, email: str, password: str) -> IssuedTokens: ...

    async def refresh(self, refresh_token: str) -> IssuedTokens: ...


PasswordHasher = Callable[[str], str]


class ImageUploads(Protocol):
    """Validates and stores an uploaded file; ServiceError(INVALID) when it is refused."""

    async def store(self, upload: Any, user_id: int) -> Image: ...


class SchemaSettings(Protocol):
    @property
    def subscription_cap(self) -> int: ...


class Context(BaseContext):
    """What every resolver may reach: data access, the viewer, the broker, settings."""

    def __init__(
        self,
        *,
        read_factory: async_sessionmaker[AsyncSession],
        write_factory: async_sessionmaker[AsyncSession],
        broker: Broker,
        settings: SchemaSettings,
        user: Viewer | None = None,
        auth_error: str | None = None,
        auth: Auth | None = None,
        hash_password: PasswordHasher | None = None,
        publish: Callable[[EventSink], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__()
        self.read_factory = read_factory
        self.write_factory = write_factory
        self.reader = Reader(read_factory)
        self.loaders = Loaders(self.reader)
        self.broker = broker
        self.settings = settings
        self.user = user
        self.auth_error = auth_error
        self.auth = auth
        self.hash_password = hash_password
        self._publish = publish
        self.active_subscriptions = 0
        self.on_close: list[Callable[[], object]] = []
        self.request_id: str | None = None
        self.images: ImageUploads | None = None
        # Seconds to wait before another login from this client, or None; set by api/.
        self.login_throttle: Callable[[], Awaitable[float | None]] | None = None

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A write transaction for one mutation; reads afterwards see what it committed."""
        # Hand the read connection back first: a request never holds two pool connections,
        # so many concurrent writers cannot starve the pool waiting on each other.
        await self.reader.reset()
        try:
            async with unit_of_work(self.write_factory, self._publish) as session:
                yield session
        finally:
            await self.refresh_reads()

    async def refresh_reads(self) -> None:
        await self.reader.reset()
        self.loaders.clear_all()

    def fresh(self) -> Context:
        """A copy with its own session and loaders (one per subscription event)."""
        clone = Context(
            read_factory=self.read_factory,
            write_factory=self.write_factory,
            broker=self.broker,
            settings=self.settings,
            user=self.user,
            auth_error=self.auth_error,
            auth=self.auth,
            hash_password=self.hash_password,
            publish=self._publish,
        )
        clone.request = self.request
        clone.response = self.response
        clone.connection_params = self.connection_params
        return clone

    async def close(self) -> None:
        for callback in self.on_close:
            callback()
        await self.reader.close()
