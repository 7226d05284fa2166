"""Stock levels, the movement ledger, reservations and idempotency records."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.models.base import Base, Timestamps, utcnow

if TYPE_CHECKING:
    from db.models.catalog import Item
    from db.models.users import User
    from db.models.warehouses import Warehouse


class MovementKind(StrEnum):
    RECEIPT = "RECEIPT"
    SHIPMENT = "SHIPMENT"
    ADJUSTMENT = "ADJUSTMENT"
    COUNT = "COUNT"
    TRANSFER_IN = "TRANSFER_IN"
    TRANSFER_OUT = "TRANSFER_OUT"
    RESERVATION = "RESERVATION"
    RELEASE = "RELEASE"
    FULFILLMENT = "FULFILLMENT"


class ReservationStatus(StrEnum):
    ACTIVE = "ACTIVE"
    RELEASED = "RELEASED"
    FULFILLED = "FULFILLED"
    EXPIRED = "EXPIRED"


class StockLevel(Base):
    __tablename__ = "stock_levels"
    __table_args__ = (
        UniqueConstraint("item_id", "warehouse_id"),
        # The last line of defence: services check first, the database refuses anyway.
        CheckConstraint("on_hand >= 0", name="on_hand_non_negative"),
        CheckConstraint("reserved >= 0", name="reserved_non_negative"),
        CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="RESTRICT"))
    warehouse_id: Mapped[int] = mapped_column(
        ForeignKey("warehouses.id", ondelete="RESTRICT"), index=True
    )
    on_hand: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    item: Mapped[Item] = relationship(lazy="raise", viewonly=True)
    warehouse: Mapped[Warehouse] = relationship(lazy="raise", viewonly=True)

    @hybrid_property
    def available(self) -> int:
        """Units that may still be shipped or reserved: the one definition, in SQL and Python."""
        return self.on_hand - self.reserved


class StockMovement(Base):
    """Append-only ledger: one row per stock level an operation touches."""

    __tablename__ = "stock_movements"
    __table_args__ = (
        Index("ix_stock_movements_item_id_id", "item_id", "id"),
        Index("ix_stock_movements_warehouse_id_id", "warehouse_id", "id"),
        Index("ix_stock_movements_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="RESTRICT"))
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id", ondelete="RESTRICT"))
    kind: Mapped[MovementKind] = mapped_column(
        Enum(
            MovementKind, native_enum=False, create_constraint=True, length=16, name="movement_kind"
        )
    )
    delta: Mapped[int]
    on_hand_after: Mapped[int]
    reserved_after: Mapped[int]
    reason: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(200))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reservation_id: Mapped[int | None] = mapped_column(
        ForeignKey("reservations.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    item: Mapped[Item] = relationship(lazy="raise", viewonly=True)
    warehouse: Mapped[Warehouse] = relationship(lazy="raise", viewonly=True)
    actor: Mapped[User | None] = relationship(lazy="raise", viewonly=True)


class Reservation(Timestamps, Base):
    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_reservations_status_expires_at", "status", "expires_at"),
        Index("ix_reservations_item_id", "item_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="RESTRICT"))
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id", ondelete="RESTRICT"))
    quantity: Mapped[int]
    status: Mapped[ReservationStatus] = mapped_column(
        Enum(
            ReservationStatus,
            native_enum=False,
            create_constraint=True,
            length=16,
            name="reservation_status",
        ),
        default=ReservationStatus.ACTIVE,
    )
    reference: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime | None]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    item: Mapped[Item] = relationship(lazy="raise", viewonly=True)
    warehouse: Mapped[Warehouse] = relationship(lazy="raise", viewonly=True)


class IdempotencyRecord(Base):
    """The first result of a keyed operation, replayed for every later copy of the key."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    operation: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
