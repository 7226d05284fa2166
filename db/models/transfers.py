"""Transfers in transit: shipped from one warehouse, received (or cancelled) later."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.models.base import Base, Timestamps

if TYPE_CHECKING:
    from db.models.catalog import Item
    from db.models.warehouses import Warehouse


class TransferStatus(StrEnum):
    IN_TRANSIT = "IN_TRANSIT"
    RECEIVED = "RECEIVED"
    CANCELLED = "CANCELLED"


class Transfer(Timestamps, Base):
    __tablename__ = "transfers"
    __table_args__ = (
        CheckConstraint("from_warehouse_id <> to_warehouse_id", name="warehouses_differ"),
        Index("ix_transfers_status_id", "status", "id"),
        Index("ix_transfers_from_warehouse_id", "from_warehouse_id"),
        Index("ix_transfers_to_warehouse_id", "to_warehouse_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[TransferStatus] = mapped_column(
        Enum(
            TransferStatus,
            native_enum=False,
            create_constraint=True,
            length=16,
            name="transfer_status",
        ),
        default=TransferStatus.IN_TRANSIT,
    )
    from_warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id", ondelete="RESTRICT"))
    to_warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id", ondelete="RESTRICT"))
    reference: Mapped[str | None] = mapped_column(String(200))
    shipped_at: Mapped[datetime]
    received_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    from_warehouse: Mapped[Warehouse] = relationship(
        foreign_keys=[from_warehouse_id], lazy="raise", viewonly=True
    )
    to_warehouse: Mapped[Warehouse] = relationship(
        foreign_keys=[to_warehouse_id], lazy="raise", viewonly=True
    )
    lines: Mapped[list[TransferLine]] = relationship(
        lazy="raise", viewonly=True, order_by="TransferLine.id"
    )


class TransferLine(Base):
    """Units of one item on a transfer; a short receipt says what became of the rest."""

    __tablename__ = "transfer_lines"
    __table_args__ = (
        UniqueConstraint("transfer_id", "item_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "quantity_received >= 0 AND quantity_damaged >= 0 AND quantity_lost >= 0",
            name="receipt_non_negative",
        ),
        CheckConstraint(
            "quantity_received + quantity_damaged + quantity_lost <= quantity",
            name="receipt_within_quantity",
        ),
        # In transit per level sums open lines by item.
        Index("ix_transfer_lines_item_id", "item_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="RESTRICT"))
    quantity: Mapped[int]
    quantity_received: Mapped[int] = mapped_column(default=0)
    quantity_damaged: Mapped[int] = mapped_column(default=0)
    quantity_lost: Mapped[int] = mapped_column(default=0)
    short_reason: Mapped[str | None] = mapped_column(Text)

    item: Mapped[Item] = relationship(lazy="raise", viewonly=True)
    transfer: Mapped[Transfer] = relationship(lazy="raise", viewonly=True)
