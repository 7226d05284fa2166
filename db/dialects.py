"""The few statements whose SQL differs between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def insert_ignoring_conflicts(
    session: AsyncSession,
    model: type[Any],
    values: Mapping[str, Any],
    conflict_on: Sequence[str],
) -> Any:
    """``INSERT … ON CONFLICT (conflict_on) DO NOTHING`` for the session's backend.

    Both backends spell it the same way but need their own ``insert`` construct.
    """
    insert = postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert
    return insert(model).values(**values).on_conflict_do_nothing(index_elements=list(conflict_on))
