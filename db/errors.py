"""Business failures raised by services; the unit of work rolls back and the API reports them."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID = "INVALID"
    NOT_FOUND = "NOT_FOUND"
    DUPLICATE = "DUPLICATE"
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    VERSION_CONFLICT = "VERSION_CONFLICT"
    IN_USE = "IN_USE"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    INVALID_TOKEN = "INVALID_TOKEN"
    FORBIDDEN = "FORBIDDEN"


class ServiceError(Exception):
    """One business failure: a code, the input path it concerns and a message for people."""

    def __init__(self, code: ErrorCode, message: str, field: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = list(field) if field is not None else None
