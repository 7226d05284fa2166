"""What each stock operation is asked to do, checked before it touches the database.

One frozen request per operation; every service takes ``(session, request, *, actor_id)``.
Field names in errors are the requests' own (``item_id``, ``delta``): the API maps them to
its input paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from db.errors import ErrorCode, ServiceError
from db.models import MovementKind, utcnow

MAX_QUANTITY = 1_000_000_000
MAX_TEXT = 2_000
MAX_KEY = 200


def check_quantity(value: int, name: str, *, allow_zero: bool = False) -> None:
    label = name.replace("_", " ").capitalize()
    if value == 0 and not allow_zero:
        raise ServiceError(ErrorCode.INVALID, f"{label} must not be zero", [name])
    if value < 0 or value > MAX_QUANTITY:
        raise ServiceError(
            ErrorCode.INVALID,
            f"{label} must be between {0 if allow_zero else 1} and {MAX_QUANTITY}",
            [name],
        )


def check_text(value: str | None, name: str) -> None:
    if value is not None and len(value) > MAX_TEXT:
        label = name.capitalize()
        raise ServiceError(
            ErrorCode.INVALID, f"{label} is longer than {MAX_TEXT} characters", [name]
        )


def check_key(key: str | None) -> None:
    if key is not None and not 0 < len(key) <= MAX_KEY:
        raise ServiceError(
            ErrorCode.INVALID,
            f"The idempotency key must be 1 to {MAX_KEY} characters",
            ["idempotency_key"],
        )


class KeyedRequest:
    """A request that may carry an idempotency key; its fingerprint identifies its input."""

    operation: ClassVar[str]
    idempotency_key: str | None

    def check(self) -> None:
        """Raise ServiceError(INVALID) for input no database state could make valid."""

    def fingerprint(self) -> dict[str, Any]:
        """The input that a replayed key must repeat exactly."""
        raise NotImplementedError


ADJUST_KINDS = (MovementKind.RECEIPT, MovementKind.SHIPMENT, MovementKind.ADJUSTMENT)


@dataclass(frozen=True, slots=True)
class AdjustRequest(KeyedRequest):
    """RECEIPT (+), SHIPMENT (-) or ADJUSTMENT (either) of one level."""

    operation: ClassVar[str] = "adjustStock"

    item_id: int
    warehouse_id: int
    delta: int
    kind: MovementKind
    reason: str | None = None
    reference: str | None = None
    idempotency_key: str | None = None

    def check(self) -> None:
        if self.kind not in ADJUST_KINDS:
            raise ServiceError(
                ErrorCode.INVALID, "The kind must be RECEIPT, SHIPMENT or ADJUSTMENT", ["kind"]
            )
        check_quantity(abs(self.delta), "delta")
        if self.kind is MovementKind.RECEIPT and self.delta < 0:
            raise ServiceError(
                ErrorCode.INVALID, "A RECEIPT adds stock: the delta must be positive", ["delta"]
            )
        if self.kind is MovementKind.SHIPMENT and self.delta > 0:
            raise ServiceError(
                ErrorCode.INVALID, "A SHIPMENT removes stock: the delta must be negative", ["delta"]
            )
        check_text(self.reason, "reason")
        check_text(self.reference, "reference")
        check_key(self.idempotency_key)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "item": self.item_id,
            "warehouse": self.warehouse_id,
            "delta": self.delta,
            "kind": self.kind.value,
            "reason": self.reason,
            "reference": self.reference,
        }


@dataclass(frozen=True, slots=True)
class CountRequest(KeyedRequest):
    """A physical count; ``expected_on_hand`` makes it a compare-and-swap."""

    operation: ClassVar[str] = "setStockCount"

    item_id: int
    warehouse_id: int
    counted: int
    expected_on_hand: int | None = None
    reason: str | None = None
    # Where the count came from, e.g. ``import:<job id>`` for a row of a stock-count import.
    reference: str | None = None
    idempotency_key: str | None = None

    def check(self) -> None:
        check_quantity(self.counted, "counted", allow_zero=True)
        if self.expected_on_hand is not None:
            check_quantity(self.expected_on_hand, "expected_on_hand", allow_zero=True)
        check_text(self.reason, "reason")
        check_text(self.reference, "reference")
        check_key(self.idempotency_key)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "item": self.item_id,
            "warehouse": self.warehouse_id,
            "counted": self.counted,
            "expected": self.expected_on_hand,
            "reason": self.reason,
            # Only when given: keys recorded before counts had a reference keep their hash.
            **({"reference": self.reference} if self.reference is not None else {}),
        }


@dataclass(frozen=True, slots=True)
class TransferRequest(KeyedRequest):
    """Move units between two warehouses in one transaction."""

    operation: ClassVar[str] = "transferStock"

    item_id: int
    from_warehouse_id: int
    to_warehouse_id: int
    quantity: int
    reference: str | None = None
    idempotency_key: str | None = None

    def check(self) -> None:
        check_quantity(self.quantity, "quantity")
        check_text(self.reference, "reference")
        if self.from_warehouse_id == self.to_warehouse_id:
            raise ServiceError(
                ErrorCode.INVALID, "Source and destination must differ", ["to_warehouse_id"]
            )
        check_key(self.idempotency_key)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "item": self.item_id,
            "from": self.from_warehouse_id,
            "to": self.to_warehouse_id,
            "quantity": self.quantity,
            "reference": self.reference,
        }


@dataclass(frozen=True, slots=True)
class ReserveRequest(KeyedRequest):
    """Hold units back: they stay on hand but are no longer available."""

    operation: ClassVar[str] = "reserveStock"

    item_id: int
    warehouse_id: int
    quantity: int
    reference: str | None = None
    expires_at: datetime | None = None
    idempotency_key: str | None = None

    def check(self) -> None:
        check_quantity(self.quantity, "quantity")
        check_text(self.reference, "reference")
        if self.expires_at is not None and self.expires_at <= utcnow():
            raise ServiceError(
                ErrorCode.INVALID, "The expiry time must be in the future", ["expires_at"]
            )
        check_key(self.idempotency_key)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "item": self.item_id,
            "warehouse": self.warehouse_id,
            "quantity": self.quantity,
            "reference": self.reference,
            "expiresAt": self.expires_at.isoformat() if self.expires_at else None,
        }


class ErrorPolicy(StrEnum):
    REJECT_EVERYTHING = "REJECT_EVERYTHING"
    REJECT_FAILED_ROWS = "REJECT_FAILED_ROWS"
