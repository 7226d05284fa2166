"""The shape every mutation shares: one unit of work, business failures as UserErrors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from db.errors import ServiceError, ServiceErrors
from schema.context import Context
from schema.errors import UserError, user_errors

T = TypeVar("T")


async def run(
    context: Context, work: Callable[[AsyncSession], Awaitable[T]]
) -> tuple[T | None, list[UserError]]:
    """Run ``work`` in its own transaction; on a ServiceError nothing it did is kept."""
    try:
        async with context.unit_of_work() as session:
            result = await work(session)
    except ServiceError as error:
        return None, [UserError.from_service(error)]
    except ServiceErrors as errors:
        return None, user_errors(errors.errors)
    return result, []


@strawberry.type(description="Result of a delete mutation.")
class DeletePayload:
    deleted_id: strawberry.ID | None = strawberry.field(
        description="ID of the deleted object; null when nothing was deleted."
    )
    errors: list[UserError] = strawberry.field(description="Why it failed, when it did.")
