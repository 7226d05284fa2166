"""What reading and checking rows produce, and the cell parsers both import kinds share.

A cell arrives as text (CSV) or as a JSON value (JSON Lines); the parsers accept both and
raise ``CellError`` naming the cell's column. Errors name columns by their canonical name;
the job records them under the file's own header spelling.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from db import validation
from db.errors import ErrorCode, ServiceError

_INTEGER = re.compile(r"[+-]?[0-9]{1,15}")
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem of one row: its physical line, the column (None: the whole row), why."""

    line: int
    column: str | None
    code: ErrorCode
    message: str


class CellError(Exception):
    """A cell that cannot be read; the parsers collect these per row."""

    def __init__(self, column: str | None, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.code = code
        self.message = message

    def at(self, line: int) -> RowError:
        return RowError(line, self.column, self.code, self.message)

    @classmethod
    def of(cls, error: ServiceError, column: str | None) -> CellError:
        return cls(column, error.code, error.message)


class Outcome(StrEnum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    UNCHANGED = "UNCHANGED"


@dataclass(frozen=True, slots=True)
class Record:
    """One data row as read: its first physical line and its cells by column.

    ``problems`` are what reading already found (a wrong number of fields, bad JSON, an
    unknown key); such a row is reported and never parsed further.
    """

    line: int
    cells: dict[str, Any]
    problems: Sequence[RowError] = ()


def blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _string(value: Any, column: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise CellError(column, ErrorCode.INVALID, f"{label(column)} must be text")
    text = str(value)
    if "\x00" in text:
        raise CellError(column, ErrorCode.INVALID, f"{label(column)} contains a NUL character")
    return text


_LABELS: dict[str, str] = {"sku": "SKU"}


def label(column: str) -> str:
    """``unit_price`` -> ``Unit price``, as messages name a column."""
    found = _LABELS.get(column)
    if found is None:
        found = _LABELS[column] = column.replace("_", " ").capitalize()
    return found


def required_text(value: Any, column: str, max_length: int) -> str:
    if blank(value):
        raise CellError(column, ErrorCode.INVALID, f"{label(column)} is required")
    try:
        return validation.text(
            _string(value, column), [column], max_length=max_length, label=label(column)
        )
    except ServiceError as error:
        raise CellError.of(error, column) from None


def optional_text(value: Any, column: str, max_length: int) -> str | None:
    """Empty means none: a CSV cell cannot tell an empty text from a missing one."""
    if blank(value):
        return None
    try:
        return validation.optional_text(
            _string(value, column), [column], max_length=max_length, label=label(column)
        )
    except ServiceError as error:
        raise CellError.of(error, column) from None


def money(value: Any, column: str, *, decimal_comma: bool = False) -> Decimal | None:
    """An amount (``12.50``); files with ``;`` between cells may write ``12,50``."""
    if blank(value):
        return None
    if isinstance(value, bool):
        raise CellError(column, ErrorCode.INVALID, f"{label(column)} is not an amount")
    text = str(value).strip()
    if decimal_comma and isinstance(value, str) and "," in text and "." not in text:
        text = text.replace(",", ".", 1)
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise CellError(
            column, ErrorCode.INVALID, f"{label(column)} is not an amount: {text[:40]!r}"
        ) from None
    try:
        return validation.money(amount, [column], label(column))
    except ServiceError as error:
        raise CellError.of(error, column) from None


def integer(value: Any, column: str, *, minimum: int = 0, maximum: int = 1_000_000_000) -> int:
    if isinstance(value, bool):
        raise CellError(column, ErrorCode.INVALID, f"{label(column)} must be a whole number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        value = int(value.strip())
    if not isinstance(value, int):
        shown = str(value)[:40]
        raise CellError(
            column, ErrorCode.INVALID, f"{label(column)} must be a whole number, not {shown!r}"
        )
    if not minimum <= value <= maximum:
        raise CellError(
            column, ErrorCode.INVALID, f"{label(column)} must be between {minimum} and {maximum}"
        )
    return value


def boolean(value: Any, column: str) -> bool:
    if blank(value):
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise CellError(column, ErrorCode.INVALID, f"{label(column)} must be true or false")


@dataclass(frozen=True, slots=True)
class Origin:
    """Whose import this is: the job, the uploading user."""

    job_id: int
    user_id: int

    @property
    def reference(self) -> str:
        return f"import:{self.job_id}"


@dataclass(slots=True)
class Applied:
    """What a batch did (or, checking only, would do) with its rows."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)

    def count(self, outcome: Outcome) -> None:
        if outcome is Outcome.CREATED:
            self.created += 1
        elif outcome is Outcome.UPDATED:
            self.updated += 1
        else:
            self.unchanged += 1

    def fail(self, errors: Sequence[RowError]) -> None:
        self.failed += 1
        self.errors.extend(errors)


class Rejected(Exception):
    """A row failed while writing under REJECT_EVERYTHING: the batch must roll back."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        super().__init__(errors[0].message if errors else "rejected")
        self.errors = list(errors)
