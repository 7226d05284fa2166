"""Outbound webhooks: the endpoints, one delivery row per (webhook, event), and the cursor of
the one reader that turns logged events into deliveries (see ``db/webhooks``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Enum, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, utcnow


class WebhookEventType(StrEnum):
    """What a webhook can subscribe to; the wire ``type`` is ``wire``."""

    STOCK_CHANGED = "STOCK_CHANGED"
    LOW_STOCK = "LOW_STOCK"
    ITEM_CREATED = "ITEM_CREATED"
    ITEM_UPDATED = "ITEM_UPDATED"
    ITEM_ARCHIVED = "ITEM_ARCHIVED"
    ITEM_DELETED = "ITEM_DELETED"
    RESERVATION_EXPIRED = "RESERVATION_EXPIRED"
    # Sent by ``pingWebhook`` only; not something a webhook subscribes to.
    PING = "PING"

    @property
    def wire(self) -> str:
        """The body's ``type`` and the ``Stockroom-Event`` header, e.g. ``stock.changed``."""
        return _WIRE[self]


_WIRE = {
    WebhookEventType.STOCK_CHANGED: "stock.changed",
    WebhookEventType.LOW_STOCK: "stock.low",
    WebhookEventType.ITEM_CREATED: "item.created",
    WebhookEventType.ITEM_UPDATED: "item.updated",
    WebhookEventType.ITEM_ARCHIVED: "item.archived",
    WebhookEventType.ITEM_DELETED: "item.deleted",
    WebhookEventType.RESERVATION_EXPIRED: "reservation.expired",
    WebhookEventType.PING: "webhook.ping",
}


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"  # not tried yet
    DELIVERED = "DELIVERED"  # a 2xx came back
    FAILED = "FAILED"  # tried, will be tried again at next_attempt_at
    GAVE_UP = "GAVE_UP"  # out of attempts

    @property
    def open(self) -> bool:
        return self in (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


class DeliveryOrigin(StrEnum):
    """Why a delivery exists: an event of the log, a ping, or a manual redelivery."""

    EVENT = "EVENT"
    PING = "PING"
    REDELIVERY = "REDELIVERY"


# Deliveries still to send, as the partial indexes and the queries that use them both say it.
OPEN_EVENTS_SQL = "origin = 'EVENT' AND status IN ('PENDING', 'FAILED')"
OPEN_MANUAL_SQL = "origin <> 'EVENT' AND status IN ('PENDING', 'FAILED')"


def _enum(cls: type[StrEnum], name: str) -> Enum:
    return Enum(cls, native_enum=False, create_constraint=True, length=24, name=name)


class Webhook(Base):
    """An HTTPS endpoint that wants some kinds of events, signed with its own secret."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    # WebhookEventType values, sorted: the kinds this endpoint receives.
    events: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(default=True)
    # Kept as issued: HMAC signing needs the secret itself, so it cannot be hashed. It is
    # only ever read by the sender and shown once, in the payload that created or rotated it.
    secret: Mapped[str] = mapped_column(String(128))
    # Deliveries that gave up one after another; at the limit the webhook is switched off.
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def secret_hint(self) -> str:
        return self.secret[-4:]


class WebhookDelivery(Base):
    """One event on its way to one webhook: the frozen body data and every attempt's fate."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The reader never makes two deliveries of one event for one webhook.
        Index(
            "uq_webhook_deliveries_webhook_id_event_id",
            "webhook_id",
            "event_id",
            unique=True,
            sqlite_where=text("origin = 'EVENT'"),
            postgresql_where=text("origin = 'EVENT'"),
        ),
        # A webhook's head (its oldest open event delivery) and the run behind it: one
        # index lookup per webhook however long the backlog (see db/webhooks/deliveries.py).
        Index(
            "ix_webhook_deliveries_open_events",
            "webhook_id",
            "id",
            sqlite_where=text(OPEN_EVENTS_SQL),
            postgresql_where=text(OPEN_EVENTS_SQL),
        ),
        Index(
            "ix_webhook_deliveries_open_manual",
            "id",
            sqlite_where=text(OPEN_MANUAL_SQL),
            postgresql_where=text(OPEN_MANUAL_SQL),
        ),
        # The same lookups where SQLite (no statistics) would rather walk (webhook, id):
        # status first reaches the open rows of a webhook without its delivered history.
        Index("ix_webhook_deliveries_webhook_id_status_id", "webhook_id", "status", "id"),
        Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", "id"),  # the log, newest first
        Index("ix_webhook_deliveries_created_at", "created_at"),  # retention
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    origin: Mapped[DeliveryOrigin] = mapped_column(
        _enum(DeliveryOrigin, "webhook_delivery_origin"), default=DeliveryOrigin.EVENT
    )
    event_type: Mapped[WebhookEventType] = mapped_column(
        _enum(WebhookEventType, "webhook_event_type")
    )
    # The log's event id (no foreign key: the log is pruned sooner than deliveries), and the
    # id receivers dedupe on: the log id as text, or ``ping-<delivery>`` for a ping.
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    event_key: Mapped[str] = mapped_column(String(64))
    # The body's ``data`` and ``createdAt``, frozen when the delivery was made, so every
    # attempt and a redelivery weeks later send the same thing.
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    event_at: Mapped[datetime]
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus, "webhook_delivery_status"), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    response_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    # Who is sending it right now, and until when the claim holds (a dead sender's claim
    # lapses and another worker sends it again).
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class WebhookCursor(Base):
    """Where the delivery maker stands in the event log (one row, id 1)."""

    __tablename__ = "webhook_cursor"

    id: Mapped[int] = mapped_column(primary_key=True)
    # ``db.eventlog.Position`` as its token: every id up to high except its open gaps.
    position: Mapped[str] = mapped_column(Text)
    # [[unix seconds, high], ...]: the high seen at each moment, so a gap older than the gap
    # window is given up whichever worker read it first.
    marks: Mapped[list[list[float]]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
