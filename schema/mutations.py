"""The shape every mutation shares: one unit of work, business failures as UserErrors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from db.errors import ServiceError
from schema.context import Context
from schema.errors import INPUT, InputPaths, UserError

T = TypeVar("T")


async def run(
    context: Context,
    work: Callable[[AsyncSession], Awaitable[T]],
    paths: InputPaths = INPUT,
) -> tuple[T | None, list[UserError]]:
    """Run ``work`` in its own transaction; on a ServiceError nothing it did is kept.

    The errors' service field names become this mutation's input paths through ``paths``.
    """
    try:
        async with context.unit_of_work() as session:
            result = await work(session)
    except ServiceError as error:
        return None, [UserError.from_service(error, paths)]
    return result, []


def actor_id(info: strawberry.Info[Context]) -> int:
    """The acting user's id, for mutations whose permission class requires a user."""
    user = info.context.user
    assert user is not None  # the permission class guarantees it
    return user.id


@strawberry.type(description="Result of a delete mutation.")
class DeletePayload:
    deleted_id: strawberry.ID | None = strawberry.field(
        description="ID of the deleted object; null when nothing was deleted."
    )
    errors: list[UserError] = strawberry.field(description="Why it failed, when it did.")
