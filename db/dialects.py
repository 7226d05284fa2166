"""The few statements whose SQL differs between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import String, case, cast, func
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


def money_text(session: AsyncSession, column: Any) -> Any:
    """A NUMERIC(…, 2) column as its text with two decimals (``12.50``), made by the database.

    For exports: SQLite keeps money as REAL, and turning each value into a Decimal in Python
    cost more than the rest of an export row.
    """
    if dialect_name(session) == "postgresql":
        return cast(column, String)  # numeric(12, 2) prints with its scale
    return case((column.is_(None), None), else_=func.printf("%.2f", column))
