"""Idempotency keys: the first result of a keyed operation is replayed for every later copy.

Keys are unique per user. Concurrent copies of one key block on the unique index until the
first commits, then see its record; a key reused with different input is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, Self, TypeVar

import orjson
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.dialects import insert_ignoring_conflicts
from db.errors import ErrorCode, ServiceError
from db.models import IdempotencyRecord, utcnow
from db.stock.requests import KeyedRequest
from db.stock.results import Recorded


class Replayable(Protocol):
    def recorded(self) -> Recorded: ...

    @classmethod
    async def replay(cls, session: AsyncSession, recorded: Recorded) -> Self: ...


R = TypeVar("R", bound=Replayable)


def request_hash(operation: str, payload: dict[str, Any]) -> str:
    return hashlib.sha256(
        orjson.dumps([operation, payload], option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


async def claim(
    session: AsyncSession, user_id: int, key: str, operation: str, digest: str
) -> IdempotencyRecord | None:
    """Claim the key (None) or return the earlier record to replay."""
    inserted = await session.execute(
        insert_ignoring_conflicts(
            session,
            IdempotencyRecord,
            {
                "user_id": user_id,
                "key": key,
                "operation": operation,
                "request_hash": digest,
                "result": {},
                "created_at": utcnow(),
            },
            ["user_id", "key"],
        ).returning(IdempotencyRecord.id)
    )
    if inserted.first() is not None:
        return None
    record = (
        await session.scalars(
            select(IdempotencyRecord)
            .where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
            .execution_options(populate_existing=True)
        )
    ).one()
    if record.operation != operation or record.request_hash != digest:
        raise ServiceError(
            ErrorCode.INVALID,
            "This idempotency key was already used with different input",
            ["idempotency_key"],
        )
    return record


async def remember(session: AsyncSession, user_id: int, key: str, result: Recorded) -> None:
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
        .values(result=result)
    )


async def run_keyed(
    session: AsyncSession,
    request: KeyedRequest,
    *,
    actor_id: int,
    result_type: type[R],
    perform: Callable[[], Awaitable[R]],
) -> R:
    """The skeleton every keyed operation shares: check, claim, replay or perform, remember.

    A business failure inside ``perform`` rolls the claim back with everything else, so a
    retry after fixing the input runs normally.
    """
    request.check()
    key = request.idempotency_key
    if key is None:
        return await perform()
    digest = request_hash(request.operation, request.fingerprint())
    record = await claim(session, actor_id, key, request.operation, digest)
    if record is not None:
        return await result_type.replay(session, record.result)
    result = await perform()
    await remember(session, actor_id, key, result.recorded())
    return result
