"""Relay global IDs: opaque base64 of ``Type:pk``."""

from __future__ import annotations

import base64
import binascii

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


def try_decode(global_id: str, expected: str) -> int | None:
    """For mutations, which report bad IDs as UserErrors rather than raising."""
    try:
        type_name, pk = from_global_id(global_id)
    except ValueError:
        return None
    return pk if type_name == expected else None
