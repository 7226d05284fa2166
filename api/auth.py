"""Authentication: login, refresh rotation, and turning a bearer token into a Viewer."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from api.passwords import hash_password, needs_rehash, verify_dummy, verify_password
from api.tokens import TokenError, TokenKind, TokenService
from api.viewers import ViewerCache
from db import users
from db.errors import ErrorCode, ServiceError
from db.models import User
from schema.context import UnitOfWork, Viewer

BEARER = "bearer "


class AuthFailure(Exception):
    """The credentials do not identify an active user; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` value, or None when there is none."""
    if not header:
        return None
    if header[: len(BEARER)].lower() != BEARER:
        raise AuthFailure("Authorization must use the Bearer scheme")
    token = header[len(BEARER) :].strip()
    if not token:
        raise AuthFailure("Empty bearer token")
    return token


class AuthService:
    """Implements ``schema.context.Auth``; writes go through the caller's unit of work."""

    def __init__(self, tokens: TokenService, access_ttl: int, viewers: ViewerCache) -> None:
        self.tokens = tokens
        self._access_ttl = access_ttl
        self._viewers = viewers

    async def _issue(self, session: AsyncSession, user: User, family: str) -> TokenPair:
        access, _ = self.tokens.issue(user.id, TokenKind.ACCESS, user.token_version)
        refresh, claims = self.tokens.issue(
            user.id, TokenKind.REFRESH, user.token_version, family=family
        )
        await users.store_refresh_token(
            session,
            jti=claims.jti,
            family=family,
            user_id=user.id,
            expires_at=datetime.fromtimestamp(claims.exp, UTC),
        )
        return TokenPair(access, refresh, self._access_ttl, user)

    async def login(self, work: UnitOfWork, email: str, password: str) -> TokenPair:
        """Exchange credentials for tokens; unknown email and wrong password look the same."""
        async with work() as session:
            user = await users.user_by_email(session, email)
            if user is None:
                verify_dummy(password)  # spend the same time as a real check
                raise _bad_credentials()
            if not verify_password(user.password_hash, password) or not user.is_active:
                raise _bad_credentials()
            if needs_rehash(user.password_hash):
                await users.set_password_hash(session, user.id, hash_password(password))
            return await self._issue(session, user, secrets.token_hex(16))

    async def refresh(self, work: UnitOfWork, refresh_token: str) -> TokenPair:
        """Rotate: the presented token is spent and a new pair issued in the same family."""
        try:
            claims = self.tokens.decode(refresh_token, TokenKind.REFRESH)
        except TokenError as exc:
            raise ServiceError(ErrorCode.INVALID_TOKEN, str(exc), ["refresh_token"]) from None
        outcome: users.RefreshOutcome | None = None
        pair: TokenPair | None = None
        async with work() as session:
            outcome = await users.use_refresh_token(session, claims.jti)
            user = await session.get(User, int(claims.sub))
            if (
                outcome is users.RefreshOutcome.ROTATED
                and user is not None
                and user.is_active
                and user.token_version == claims.ver
                and claims.fam is not None
            ):
                pair = await self._issue(session, user, claims.fam)
        # Reuse revokes the family inside the transaction above, so it commits first.
        if pair is None:
            raise ServiceError(
                ErrorCode.INVALID_TOKEN, "Refresh token is no longer valid", ["refresh_token"]
            )
        return pair

    async def authenticate(self, token: str) -> Viewer:
        """The Viewer an access token stands for, checked against the user's current state
        (as this worker last read it, at most the viewer cache's bound ago)."""
        try:
            claims = self.tokens.decode(token, TokenKind.ACCESS)
        except TokenError as exc:
            raise AuthFailure(f"Invalid access token: {exc}") from None
        if not claims.sub.isdigit():
            raise AuthFailure("Invalid access token: bad subject")
        user = await self._viewers.state(int(claims.sub))
        if user is None or not user.is_active:
            raise AuthFailure("Invalid access token: user is inactive")
        if user.token_version != claims.ver:
            raise AuthFailure("Invalid access token: it has been revoked")
        return Viewer(
            id=user.id,
            email=user.email,
            role=user.role,
            token_version=claims.ver,
            expires_at=float(claims.exp),
        )


def _bad_credentials() -> ServiceError:
    return ServiceError(ErrorCode.INVALID_CREDENTIALS, "Wrong email or password", ["email"])
