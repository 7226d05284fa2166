"""User queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import batch, events
from db.errors import ErrorCode, ServiceError
from db.events import UserChanged
from db.models import RefreshToken, Role, User, utcnow
from db.pagination import Page, PageArgs, SortKey, count, paginate


async def list_users(session: AsyncSession, args: PageArgs) -> Page[User]:
    return await paginate(session, select(User), [SortKey(User.email)], args)


async def count_users(session: AsyncSession) -> int:
    return await count(session, select(User))


async def users_by_id(session: AsyncSession, ids: Sequence[int]) -> list[User | None]:
    return await batch.by_ids(session, User, ids)


@dataclass(frozen=True, slots=True)
class TokenState:
    """What a user's access tokens are checked against."""

    id: int
    email: str
    role: Role
    is_active: bool
    token_version: int


_TOKEN_STATE = select(User.id, User.email, User.role, User.is_active, User.token_version)


async def token_state(session: AsyncSession, user_id: int) -> TokenState | None:
    row = (await session.execute(_TOKEN_STATE.where(User.id == user_id))).first()
    return None if row is None else TokenState(*row)


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    stmt = select(User).where(func.lower(User.email) == email.strip().lower())
    return (await session.scalars(stmt)).first()


async def create_user(
    session: AsyncSession, *, email: str, password_hash: str, role: Role, is_active: bool = True
) -> User:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise ServiceError(ErrorCode.INVALID, "Enter a valid email address", ["email"])
    if await user_by_email(session, email) is not None:
        raise ServiceError(ErrorCode.DUPLICATE, f"A user with email {email} exists", ["email"])
    user = User(email=email, password_hash=password_hash, role=role, is_active=is_active)
    session.add(user)
    await session.flush()
    return user


async def update_user(
    session: AsyncSession,
    user_id: int,
    *,
    role: Role | None = None,
    is_active: bool | None = None,
    password_hash: str | None = None,
) -> User:
    """Change a user; any change to what a token vouches for revokes their tokens."""
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such user", ["id"])
    revoke = False
    if role is not None and role != user.role:
        user.role, revoke = role, True
    if is_active is not None and is_active != user.is_active:
        user.is_active, revoke = is_active, True
    if password_hash is not None:
        user.password_hash, revoke = password_hash, True
    if revoke:
        user.token_version += 1
        await revoke_user_refresh_tokens(session, user.id)
        events.record(session, UserChanged(user.id))
    await session.flush()
    return user


async def set_password_hash(session: AsyncSession, user_id: int, password_hash: str) -> None:
    """Store an upgraded hash of the same password (argon2 parameters changed)."""
    await session.execute(
        update(User).where(User.id == user_id).values(password_hash=password_hash)
    )


async def store_refresh_token(
    session: AsyncSession, *, jti: str, family: str, user_id: int, expires_at: datetime
) -> None:
    session.add(
        RefreshToken(
            jti=jti, family=family, user_id=user_id, expires_at=expires_at, created_at=utcnow()
        )
    )
    await session.flush()


class RefreshOutcome(StrEnum):
    ROTATED = "ROTATED"
    REUSED = "REUSED"
    UNKNOWN = "UNKNOWN"


async def use_refresh_token(session: AsyncSession, jti: str) -> RefreshOutcome:
    """Mark a refresh token used, once; a second use revokes its whole family."""
    now = utcnow()
    used = await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.jti == jti,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
            RefreshToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(RefreshToken.jti)
    )
    if used.first() is not None:
        return RefreshOutcome.ROTATED
    row = await session.get(RefreshToken, jti)
    if row is None:
        return RefreshOutcome.UNKNOWN
    # A rotated token presented again means it leaked: end every token of the family.
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family == row.family, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return RefreshOutcome.REUSED


async def revoke_user_refresh_tokens(session: AsyncSession, user_id: int) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
