"""Purchase orders: stock on its way in from a supplier, received in part or in full."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, Enum, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.models.base import Base, Timestamps

if TYPE_CHECKING:
    from db.models.catalog import Item
    from db.models.warehouses import Warehouse


class PurchaseOrderStatus(StrEnum):
    DRAFT = "DRAFT"
    ORDERED = "ORDERED"
    PARTIALLY_RECEIVED = "PARTIALLY_RECEIVED"
    RECEIVED = "RECEIVED"
    CANCELLED = "CANCELLED"


# Orders whose outstanding units count as incoming.
OPEN_PURCHASE_ORDER = (PurchaseOrderStatus.ORDERED, PurchaseOrderStatus.PARTIALLY_RECEIVED)


class PurchaseOrder(Timestamps, Base):
    __tablename__ = "purchase_orders"
    __table_args__ = (Index("ix_purchase_orders_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    supplier: Mapped[str] = mapped_column(String(200))
    status: Mapped[PurchaseOrderStatus] = mapped_column(
        Enum(
            PurchaseOrderStatus,
            native_enum=False,
            create_constraint=True,
            length=24,
            name="purchase_order_status",
        ),
        default=PurchaseOrderStatus.DRAFT,
    )
    warehouse_id: Mapped[int] = mapped_column(
        ForeignKey("warehouses.id", ondelete="RESTRICT"), index=True
    )
    expected_at: Mapped[datetime | None]
    ordered_at: Mapped[datetime | None]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    warehouse: Mapped[Warehouse] = relationship(lazy="raise", viewonly=True)
    lines: Mapped[list[PurchaseOrderLine]] = relationship(
        lazy="raise", viewonly=True, order_by="PurchaseOrderLine.id"
    )


class PurchaseOrderLine(Base):
    """One item of an order: how many were ordered and how many have arrived so far."""

    __tablename__ = "purchase_order_lines"
    __table_args__ = (
        UniqueConstraint("purchase_order_id", "item_id"),
        CheckConstraint("quantity_ordered > 0", name="quantity_ordered_positive"),
        CheckConstraint("quantity_received >= 0", name="quantity_received_non_negative"),
        # Incoming per level sums open lines by item.
        Index("ix_purchase_order_lines_item_id", "item_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_order_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_orders.id", ondelete="CASCADE")
    )
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="RESTRICT"))
    quantity_ordered: Mapped[int]
    quantity_received: Mapped[int] = mapped_column(default=0)

    item: Mapped[Item] = relationship(lazy="raise", viewonly=True)
    purchase_order: Mapped[PurchaseOrder] = relationship(lazy="raise", viewonly=True)
