"""Login and token refresh mutations (the only fields open without a token)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from graphql import GraphQLError

from db.errors import ServiceError
from schema.context import Context, IssuedTokens
from schema.errors import ARGUMENTS, UserError
from schema.users import User


@strawberry.type(description="Tokens for the API, or why none were issued.")
class AuthPayload:
    access_token: str | None = strawberry.field(
        description="Send as `Authorization: Bearer <accessToken>`."
    )
    refresh_token: str | None = strawberry.field(
        description="Exchange for a new pair with `refreshToken`; single use."
    )
    expires_in: int | None = strawberry.field(description="Seconds the access token lives.")
    user: User | None = strawberry.field(description="Who the tokens are for.")
    errors: list[UserError] = strawberry.field(description="Why it failed, when it did.")

    @classmethod
    def ok(cls, tokens: IssuedTokens) -> AuthPayload:
        return cls(
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_in=tokens.expires_in,
            user=User.from_row(tokens.user),
            errors=[],
        )

    @classmethod
    def failed(cls, error: ServiceError) -> AuthPayload:
        return cls(
            access_token=None,
            refresh_token=None,
            expires_in=None,
            user=None,
            errors=[UserError.from_service(error, ARGUMENTS)],
        )


@strawberry.type
class AuthMutation:
    @strawberry.mutation(description="Log in with email and password.")
    async def login(
        self,
        info: strawberry.Info[Context],
        email: Annotated[str, strawberry.argument(description="Login email.")],
        password: Annotated[str, strawberry.argument(description="Password.")],
    ) -> AuthPayload:
        context = info.context
        retry_after = await context.services.throttle.login(context.client)
        if retry_after is not None:
            response = context.response
            if response is not None:
                response.status_code = 429
                response.headers["Retry-After"] = str(int(retry_after))
            raise GraphQLError(
                f"Too many login attempts: retry in {int(retry_after)} s",
                extensions={"code": "RATE_LIMITED", "retryAfter": int(retry_after)},
            )
        try:
            return AuthPayload.ok(
                await context.services.auth.login(context.unit_of_work, email, password)
            )
        except ServiceError as error:
            return AuthPayload.failed(error)

    @strawberry.mutation(description="Exchange a refresh token for a new token pair.")
    async def refresh_token(
        self,
        info: strawberry.Info[Context],
        refresh_token: Annotated[
            str, strawberry.argument(description="The refresh token from login or last refresh.")
        ],
    ) -> AuthPayload:
        context = info.context
        try:
            return AuthPayload.ok(
                await context.services.auth.refresh(context.unit_of_work, refresh_token)
            )
        except ServiceError as error:
            return AuthPayload.failed(error)
