"""Error vocabulary: payload-level UserError and top-level coded GraphQL errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import strawberry
from graphql import GraphQLError

from db.errors import ErrorCode as _ErrorCode
from db.errors import ServiceError

strawberry.enum(_ErrorCode, description="Why a mutation could not do what was asked.")
ErrorCode: TypeAlias = _ErrorCode


@strawberry.type(description="A business failure of a mutation; nothing was changed by it.")
class UserError:
    code: ErrorCode = strawberry.field(description="Machine-readable reason.")
    field: list[str] | None = strawberry.field(
        description="Path to the input field at fault, when one is."
    )
    message: str = strawberry.field(description="Explanation for people.")

    @classmethod
    def from_service(cls, error: ServiceError) -> UserError:
        return cls(code=error.code, field=error.field, message=error.message)


def user_errors(errors: Sequence[ServiceError]) -> list[UserError]:
    return [UserError.from_service(e) for e in errors]


class CodedError(GraphQLError):
    """A top-level error whose ``extensions.code`` clients can switch on."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, extensions={"code": code})


def unauthenticated(message: str = "Authentication required") -> CodedError:
    return CodedError(message, "UNAUTHENTICATED")


def forbidden(message: str = "Your role may not do this") -> CodedError:
    return CodedError(message, "FORBIDDEN")


def bad_input(message: str) -> CodedError:
    return CodedError(message, "BAD_USER_INPUT")
