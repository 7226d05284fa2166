"""Input checks shared by the catalogue services."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from db.errors import ErrorCode, ServiceError

MAX_MONEY = Decimal("9999999999.99")


def text(value: str, field: Sequence[str], *, max_length: int, label: str) -> str:
    cleaned = value.strip()
    if not cleaned:
        raise ServiceError(ErrorCode.INVALID, f"{label} must not be blank", field)
    if len(cleaned) > max_length:
        raise ServiceError(
            ErrorCode.INVALID, f"{label} must be at most {max_length} characters", field
        )
    return cleaned


def optional_text(
    value: str | None, field: Sequence[str], *, max_length: int, label: str
) -> str | None:
    if value is None:
        return None
    if len(value) > max_length:
        raise ServiceError(
            ErrorCode.INVALID, f"{label} must be at most {max_length} characters", field
        )
    return value


def money(value: Decimal, field: Sequence[str], label: str) -> Decimal:
    try:
        if not value.is_finite() or value < 0 or value > MAX_MONEY:
            raise ServiceError(
                ErrorCode.INVALID, f"{label} must be between 0 and {MAX_MONEY}", field
            )
        if value != value.quantize(Decimal("0.01")):
            raise ServiceError(ErrorCode.INVALID, f"{label} has more than 2 decimals", field)
    except InvalidOperation:
        raise ServiceError(ErrorCode.INVALID, f"{label} is not a valid amount", field) from None
    return value


def count(value: int, field: Sequence[str], label: str, maximum: int = 1_000_000_000) -> int:
    if not 0 <= value <= maximum:
        raise ServiceError(ErrorCode.INVALID, f"{label} must be between 0 and {maximum}", field)
    return value
