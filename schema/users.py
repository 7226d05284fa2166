"""User type and queries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, TypeAlias

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from db import users
from db.errors import ErrorCode, ServiceError
from db.models import Role as RoleEnum
from db.models import User as UserRow
from schema.context import Context
from schema.errors import UserError
from schema.ids import pk_of
from schema.mutations import run
from schema.permissions import IsAdmin, IsViewer
from schema.relay import After, Before, Connection, First, Last, Node, global_id, page_args, paged

strawberry.enum(RoleEnum, description="What a user may do; each role includes the ones before it.")
Role: TypeAlias = RoleEnum


@strawberry.type(description="Someone who can log in.")
class User(Node):
    id: strawberry.ID = global_id("User")
    email: str = strawberry.field(description="Login name.")
    role: Role = strawberry.field(description="What they may do.")
    is_active: bool = strawberry.field(description="Inactive users cannot log in.")
    created_at: datetime = strawberry.field(description="When the account was made (UTC).")
    pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: UserRow) -> User:
        return cls(
            email=row.email,
            role=row.role,
            is_active=row.is_active,
            created_at=row.created_at,
            pk=row.id,
        )


@strawberry.type
class UserQuery:
    @strawberry.field(description="The logged-in user.", permission_classes=[IsViewer])
    async def me(self, info: strawberry.Info[Context]) -> User | None:
        viewer = info.context.user
        assert viewer is not None  # IsViewer guarantees it
        row = await info.context.loaders.user.load(viewer.id)
        return None if row is None else User.from_row(row)

    @strawberry.field(description="All users, by email (ADMIN).", permission_classes=[IsAdmin])
    async def users(
        self,
        info: strawberry.Info[Context],
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[User]:
        reader, args = info.context.reader, page_args(first, after, last, before)
        return await paged(
            lambda: reader(users.list_users, args),
            User.from_row,
            lambda: reader(users.count_users),
        )


@strawberry.input(description="A new user.")
class CreateUserInput:
    email: str = strawberry.field(description="Login email, unique.")
    password: str = strawberry.field(description="At least 8 characters.")
    role: Role = strawberry.field(description="What they may do.")


@strawberry.input(description="Changes to a user; absent fields stay as they are.")
class UpdateUserInput:
    role: Role | None = strawberry.field(default=None, description="New role.")
    is_active: bool | None = strawberry.field(
        default=None, description="false locks them out and ends their sessions."
    )
    password: str | None = strawberry.field(default=None, description="New password.")


@strawberry.type(description="Result of a user mutation.")
class UserPayload:
    user: User | None = strawberry.field(description="The user as stored now.")
    errors: list[UserError] = strawberry.field(description="Why it failed, when it did.")


MIN_PASSWORD = 8
MAX_PASSWORD = 1024


def _check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ServiceError(
            ErrorCode.INVALID,
            f"Password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            ["password"],
        )


@strawberry.type
class UserMutation:
    @strawberry.mutation(description="Create a user (ADMIN).", permission_classes=[IsAdmin])
    async def create_user(
        self,
        info: strawberry.Info[Context],
        input: Annotated[CreateUserInput, strawberry.argument(description="The new user.")],
    ) -> UserPayload:
        hasher = info.context.services.hash_password

        async def work(session: AsyncSession) -> UserRow:
            _check_password(input.password)
            return await users.create_user(
                session,
                email=input.email,
                password_hash=hasher(input.password),
                role=RoleEnum(input.role),
            )

        row, errors = await run(info.context, work)
        return UserPayload(user=None if row is None else User.from_row(row), errors=errors)

    @strawberry.mutation(
        description="Change a user's role, status or password (ADMIN); ends their sessions.",
        permission_classes=[IsAdmin],
    )
    async def update_user(
        self,
        info: strawberry.Info[Context],
        id: Annotated[strawberry.ID, strawberry.argument(description="The user.")],
        input: Annotated[UpdateUserInput, strawberry.argument(description="What to change.")],
    ) -> UserPayload:
        hasher = info.context.services.hash_password

        async def work(session: AsyncSession) -> UserRow:
            pk = pk_of(id, "User", "id")
            password_hash = None
            if input.password is not None:
                _check_password(input.password)
                password_hash = hasher(input.password)
            return await users.update_user(
                session,
                pk,
                role=None if input.role is None else RoleEnum(input.role),
                is_active=input.is_active,
                password_hash=password_hash,
            )

        row, errors = await run(info.context, work)
        return UserPayload(user=None if row is None else User.from_row(row), errors=errors)
