"""Line items shared by purchase orders and transfers: one item and a quantity per line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from db.errors import ErrorCode, ServiceError
from db.stock.requests import MAX_QUANTITY

MAX_LINES = 200


class HasItem(Protocol):
    @property
    def item_id(self) -> int: ...

    @property
    def quantity(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Line:
    """Units of one item: ordered, or received against an order."""

    item_id: int
    quantity: int


def line_field(index: int, name: str) -> list[str]:
    """The service field of one line's member (``["lines", "2", "quantity"]``)."""
    return ["lines", str(index), name]


def check_lines(lines: Sequence[HasItem], *, allow_zero: bool = False) -> None:
    """At least one line and at most MAX_LINES, each item once, each quantity in range."""
    if not lines:
        raise ServiceError(ErrorCode.INVALID, "Give at least one line", ["lines"])
    if len(lines) > MAX_LINES:
        raise ServiceError(ErrorCode.INVALID, f"At most {MAX_LINES} lines", ["lines"])
    seen: set[int] = set()
    lowest = 0 if allow_zero else 1
    for index, line in enumerate(lines):
        if line.item_id in seen:
            raise ServiceError(
                ErrorCode.DUPLICATE, "This item is on an earlier line", line_field(index, "item_id")
            )
        seen.add(line.item_id)
        if not lowest <= line.quantity <= MAX_QUANTITY:
            raise ServiceError(
                ErrorCode.INVALID,
                f"Quantity must be between {lowest} and {MAX_QUANTITY}",
                line_field(index, "quantity"),
            )
