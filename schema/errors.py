"""Error vocabulary: payload-level UserError and top-level coded GraphQL errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import strawberry
from graphql import GraphQLError

from db.errors import ErrorCode as _ErrorCode
from db.errors import ServiceError

strawberry.enum(_ErrorCode, description="Why a mutation could not do what was asked.")
ErrorCode: TypeAlias = _ErrorCode


def camel(name: str) -> str:
    """``from_warehouse_id`` -> ``fromWarehouseId``: a service's field as GraphQL spells it."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclass(frozen=True, slots=True)
class InputPaths:
    """Where a service's fields sit in one mutation's arguments.

    Services name fields as their requests do (``item_id``); a mutation maps them to its
    input path (``["input", "itemId"]``), the clean step Saleor's mutations have.
    """

    prefix: tuple[str, ...] = ("input",)
    # Fields that are arguments of the mutation itself rather than members of its input.
    top_level: frozenset[str] = frozenset({"id", "expected_version"})
    # Service fields whose argument has another name in this mutation.
    rename: Mapping[str, str] = field(default_factory=dict)

    def path(self, service_field: Sequence[str] | None) -> list[str] | None:
        if not service_field:
            return None
        name, *rest = service_field
        argument = self.rename.get(name, camel(name))
        head = [] if name in self.top_level else list(self.prefix)
        return [*head, argument, *(camel(part) for part in rest)]

    def within(self, *prefix: str) -> InputPaths:
        """The same mapping under a longer prefix (one row of a list argument)."""
        return InputPaths((*self.prefix, *prefix), self.top_level, self.rename)


INPUT = InputPaths()
ARGUMENTS = InputPaths(prefix=())


@strawberry.type(description="A business failure of a mutation; nothing was changed by it.")
class UserError:
    code: ErrorCode = strawberry.field(description="Machine-readable reason.")
    field: list[str] | None = strawberry.field(
        description="Path to the input field at fault, when one is."
    )
    message: str = strawberry.field(description="Explanation for people.")

    @classmethod
    def from_service(cls, error: ServiceError, paths: InputPaths = INPUT) -> UserError:
        return cls(code=error.code, field=paths.path(error.field), message=error.message)


def user_errors(errors: Sequence[ServiceError], paths: InputPaths = INPUT) -> list[UserError]:
    return [UserError.from_service(e, paths) for e in errors]


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
