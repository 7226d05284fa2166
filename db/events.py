"""Domain events: one frozen dataclass per channel, recorded on the unit of work.

Services record events while they change rows; the unit of work writes them to the event log
in the same transaction (``db/eventlog.py``), so a rolled-back change is never announced. In the
log an event is a flat JSON object with snake_case keys; ``encode`` and ``decode`` are the only
translation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import MovementKind


class ItemChange(StrEnum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    ARCHIVED = "ARCHIVED"
    DELETED = "DELETED"


@dataclass(frozen=True, slots=True)
class StockChanged:
    """One stock level changed and one ledger row was written for it."""

    channel: ClassVar[str] = "stock"

    item_id: int
    warehouse_id: int
    stock_level_id: int
    movement_id: int
    kind: MovementKind
    delta: int
    on_hand: int
    reserved: int
    available: int


@dataclass(frozen=True, slots=True)
class ItemChanged:
    """An item was created, updated, archived or deleted."""

    channel: ClassVar[str] = "items"

    kind: ItemChange
    item_id: int
    # Carried so a DELETED event still says which SKU went (webhook receivers key on it);
    # events logged before it existed decode with None.
    sku: str | None = None


@dataclass(frozen=True, slots=True)
class LowStock:
    """Available stock at a level crossed down to the item's reorder point."""

    channel: ClassVar[str] = "low_stock"

    item_id: int
    warehouse_id: int
    available: int
    reorder_point: int


@dataclass(frozen=True, slots=True)
class ReservationExpired:
    """A reservation ran out of time and its units went back to available."""

    channel: ClassVar[str] = "reservations"

    reservation_id: int
    item_id: int
    warehouse_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class WebhooksChanged:
    """A webhook was created, changed or deleted: dispatchers look at the endpoints again."""

    channel: ClassVar[str] = "webhooks"

    webhook_id: int


@dataclass(frozen=True, slots=True)
class UserChanged:
    """What a user's tokens vouch for changed (role, status or password): they are revoked."""

    channel: ClassVar[str] = "users"

    user_id: int


Event = (
    StockChanged | ItemChanged | LowStock | ReservationExpired | WebhooksChanged | UserChanged
)

EVENT_TYPES: Mapping[str, type[Event]] = {
    cls.channel: cls
    for cls in (
        StockChanged, ItemChanged, LowStock, ReservationExpired, WebhooksChanged, UserChanged
    )
}

# Enum-valued fields, converted back from their wire strings by ``decode``.
_ENUMS: Mapping[tuple[str, str], type[StrEnum]] = {
    ("stock", "kind"): MovementKind,
    ("items", "kind"): ItemChange,
}


class EventDecodeError(ValueError):
    """A broker message that is not an event of its channel."""


def encode(event: Event) -> dict[str, Any]:
    """The event as a JSON-ready dict (its channel travels beside it, not inside)."""
    return {f.name: getattr(event, f.name) for f in fields(event)}


def decode(channel: str, message: Mapping[str, Any]) -> Event:
    """The typed event a broker message on ``channel`` carries."""
    cls = EVENT_TYPES.get(channel)
    if cls is None:
        raise EventDecodeError(f"unknown event channel {channel!r}")
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in message:
            if f.default is not MISSING:
                continue  # a field added since this event was logged
            raise EventDecodeError(f"{channel} event without {f.name!r}")
        value = message[f.name]
        enum = _ENUMS.get((channel, f.name))
        values[f.name] = enum(value) if enum is not None else value
    return cls(**values)


def record(session: AsyncSession, event: Event) -> None:
    """Queue an event on the unit of work; it is logged with the commit and announced after."""
    session.info.setdefault("events", []).append(event)


def pending(session: AsyncSession) -> list[Event]:
    """The events queued on this session so far (a list the caller may trim)."""
    events: list[Event] = session.info.setdefault("events", [])
    return events
