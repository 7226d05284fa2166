"""The catalogue: categories (a tree) and items."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.models.base import Base, Timestamps

if TYPE_CHECKING:
    from db.models.stock import StockLevel
    from db.models.uploads import Image

MONEY = Numeric(12, 2)


class Category(Timestamps, Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id", ondelete="RESTRICT"), index=True
    )

    # Relationships describe what joins to what (for readers and the read planner); they
    # never load by themselves (lazy="raise") and never write (viewonly): services set ids.
    parent: Mapped[Category | None] = relationship(
        remote_side=[id], lazy="raise", viewonly=True
    )
    children: Mapped[list[Category]] = relationship(
        lazy="raise", viewonly=True, order_by=lambda: (Category.name, Category.id)
    )


class Item(Timestamps, Base):
    __tablename__ = "items"
    __table_args__ = (
        CheckConstraint("unit_price >= 0", name="unit_price_non_negative"),
        CheckConstraint("unit_cost IS NULL OR unit_cost >= 0", name="unit_cost_non_negative"),
        CheckConstraint("reorder_point >= 0", name="reorder_point_non_negative"),
        Index("ix_items_name_id", "name", "id"),
        Index("ix_items_created_at_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL"), index=True
    )
    unit_price: Mapped[Decimal] = mapped_column(MONEY)
    unit_cost: Mapped[Decimal | None] = mapped_column(MONEY)
    reorder_point: Mapped[int] = mapped_column(default=0)
    archived: Mapped[bool] = mapped_column(default=False)
    # Optimistic concurrency: bumped by every change, compared by callers that pass one.
    version: Mapped[int] = mapped_column(default=1)
    image_id: Mapped[int | None] = mapped_column(
        ForeignKey("images.id", ondelete="SET NULL"), index=True
    )

    category: Mapped[Category | None] = relationship(lazy="raise", viewonly=True)
    image: Mapped[Image | None] = relationship(lazy="raise", viewonly=True)
    stock_levels: Mapped[list[StockLevel]] = relationship(
        lazy="raise", viewonly=True, order_by="StockLevel.warehouse_id"
    )
