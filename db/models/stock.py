"""Stock levels, the movement ledger, reservations and idempotency records."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ColumnElement,
    Enum,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    case,
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
    # Units moved between quantity states on one level; on hand does not change.
    STATE_CHANGE = "STATE_CHANGE"
    # The level's safety stock was set; on hand does not change.
    SAFETY_STOCK = "SAFETY_STOCK"


class StockState(StrEnum):
    """The states on-hand units can be moved between (``moveStockState``)."""

    AVAILABLE = "AVAILABLE"
    DAMAGED = "DAMAGED"
    QUALITY_CONTROL = "QUALITY_CONTROL"


class ReservationStatus(StrEnum):
    ACTIVE = "ACTIVE"
    RELEASED = "RELEASED"
    FULFILLED = "FULFILLED"
    EXPIRED = "EXPIRED"


def available_units(
    on_hand: Any, reserved: Any, damaged: Any, quality_control: Any, safety_stock: Any
) -> Any:
    """Available stock from a level's quantities (ints or SQL columns alike), never negative.

    The body of ``StockLevel.available`` and of the snapshots rebuilt from the ledger; every
    other place reads one of those.
    """
    net = on_hand - reserved - damaged - quality_control - safety_stock
    if isinstance(net, int):
        return max(net, 0)
    # CASE rather than greatest(): SQLite has no greatest().
    return case((net > 0, net), else_=0)


class StockLevel(Base):
    __tablename__ = "stock_levels"
    __table_args__ = (
        UniqueConstraint("item_id", "warehouse_id"),
        # The last line of defence: services check first, the database refuses anyway.
        CheckConstraint("on_hand >= 0", name="on_hand_non_negative"),
        CheckConstraint("reserved >= 0", name="reserved_non_negative"),
        CheckConstraint("damaged >= 0", name="damaged_non_negative"),
        CheckConstraint("quality_control >= 0", name="quality_control_non_negative"),
        CheckConstraint("safety_stock >= 0", name="safety_stock_non_negative"),
        # Reserved, damaged and quality-control units are disjoint parts of on hand.
        CheckConstraint(
            "reserved + damaged + quality_control <= on_hand", name="states_within_on_hand"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="RESTRICT"))
    warehouse_id: Mapped[int] = mapped_column(
        ForeignKey("warehouses.id", ondelete="RESTRICT"), index=True
    )
    on_hand: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0)
    damaged: Mapped[int] = mapped_column(default=0, server_default="0")
    quality_control: Mapped[int] = mapped_column(default=0, server_default="0")
    # Not a part of on hand but a floor under it: units kept back from being promised.
    safety_stock: Mapped[int] = mapped_column(default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    item: Mapped[Item] = relationship(lazy="raise", viewonly=True)
    warehouse: Mapped[Warehouse] = relationship(lazy="raise", viewonly=True)

    @hybrid_property
    def available(self) -> int:
        """Units that may still be shipped or reserved: the one definition, in SQL and Python."""
        value: int = available_units(
            self.on_hand, self.reserved, self.damaged, self.quality_control, self.safety_stock
        )
        return value

    @available.inplace.expression
    @classmethod
    def _available_expression(cls) -> ColumnElement[int]:
        expression: ColumnElement[int] = available_units(
            cls.on_hand, cls.reserved, cls.damaged, cls.quality_control, cls.safety_stock
        )
        return expression


class StockMovement(Base):
    """Append-only ledger: one row per stock level an operation touches."""

    __tablename__ = "stock_movements"
    __table_args__ = (
        Index("ix_stock_movements_item_id_id", "item_id", "id"),
        Index("ix_stock_movements_warehouse_id_id", "warehouse_id", "id"),
        Index("ix_stock_movements_created_at", "created_at"),
        # Stock as of a date: the last row of each level at or before an instant.
        Index(
            "ix_stock_movements_level_created_at",
            "item_id",
            "warehouse_id",
            "created_at",
            "id",
        ),
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
    # The level's other quantities after the change, so any instant can be rebuilt.
    damaged_after: Mapped[int] = mapped_column(default=0, server_default="0")
    quality_control_after: Mapped[int] = mapped_column(default=0, server_default="0")
    safety_stock_after: Mapped[int] = mapped_column(default=0, server_default="0")
    # STATE_CHANGE rows: the state the units left and the one they entered.
    from_state: Mapped[StockState | None] = mapped_column(
        Enum(
            StockState,
            native_enum=False,
            create_constraint=True,
            length=16,
            name="movement_from_state",
        )
    )
    to_state: Mapped[StockState | None] = mapped_column(
        Enum(
            StockState,
            native_enum=False,
            create_constraint=True,
            length=16,
            name="movement_to_state",
        )
    )
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
