"""Relay global IDs: opaque base64 of ``Type:pk``."""

from __future__ import annotations

import base64
import binascii

from db.errors import ErrorCode, ServiceError
from schema.errors import bad_input


def to_global_id(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def from_global_id(global_id: str) -> tuple[str, int]:
    """Split an ID into its type name and primary key; ValueError when it is not ours."""
    try:
        raw = base64.b64decode(global_id.encode("ascii"), validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise ValueError("malformed ID") from exc
    type_name, sep, pk = raw.partition(":")
    if not sep or not type_name or not pk.isdigit() or len(pk) > 18:
        raise ValueError("malformed ID")
    return type_name, int(pk)


def decode_id(global_id: str, expected: str) -> int:
    """The primary key of an ID that must name ``expected``; a coded GraphQL error otherwise."""
    try:
        type_name, pk = from_global_id(global_id)
    except ValueError:
        raise bad_input(f"Malformed ID {global_id!r}: expected a {expected} ID") from None
    if type_name != expected:
        raise bad_input(f"ID {global_id!r} is a {type_name} ID, expected a {expected} ID")
    return pk


def decode_optional(global_id: str | None, expected: str) -> int | None:
    return None if global_id is None else decode_id(global_id, expected)


def pk_of(global_id: str, expected: str, field: str, label: str | None = None) -> int:
    """For mutations: the primary key of an ID naming ``expected``.

    An ID that is malformed or names another type can match no row, so it is reported as
    any unknown ID is: a NOT_FOUND ServiceError on ``field``, which ``run`` turns into a
    UserError at that input path.
    """
    try:
        type_name, pk = from_global_id(global_id)
    except ValueError:
        type_name, pk = "", 0
    if type_name != expected:
        raise ServiceError(
            ErrorCode.NOT_FOUND, f"No such {label or expected.lower()}", [field]
        )
    return pk


def optional_pk_of(
    global_id: str | None, expected: str, field: str, label: str | None = None
) -> int | None:
    return None if global_id is None else pk_of(global_id, expected, field, label)
