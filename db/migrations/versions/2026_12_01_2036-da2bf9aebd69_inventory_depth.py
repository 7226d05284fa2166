"""inventory depth: purchase orders, transfers in transit, quantity states, stock as of a date

Existing levels and ledger rows get every new quantity at 0, so available stock and every
other number stays what it was.

Revision ID: da2bf9aebd69
Revises: 6dc5874757d1
Create Date: 2026-12-01 20:36:49.845084
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.models.base

revision: str = "da2bf9aebd69"
down_revision: str | None = "6dc5874757d1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = (
    "RECEIPT",
    "SHIPMENT",
    "ADJUSTMENT",
    "COUNT",
    "TRANSFER_IN",
    "TRANSFER_OUT",
    "RESERVATION",
    "RELEASE",
    "FULFILLMENT",
)
NEW_KINDS = ("STATE_CHANGE", "SAFETY_STOCK")

LEVEL_CHECKS = (
    ("damaged_non_negative", "damaged >= 0"),
    ("quality_control_non_negative", "quality_control >= 0"),
    ("safety_stock_non_negative", "safety_stock >= 0"),
    ("states_within_on_hand", "reserved + damaged + quality_control <= on_hand"),
)


def _kinds(kinds: Sequence[str]) -> str:
    # The CHECK that a non-native Enum column carries, with the kinds of this revision.
    return "kind IN (" + ", ".join(f"'{kind}'" for kind in kinds) + ")"


def upgrade() -> None:
    op.create_table(
        "purchase_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("supplier", sa.String(length=200), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "DRAFT",
                "ORDERED",
                "PARTIALLY_RECEIVED",
                "RECEIVED",
                "CANCELLED",
                name="purchase_order_status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("warehouse_id", sa.Integer(), nullable=False),
        sa.Column("expected_at", db.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ordered_at", db.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            db.models.base.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            db.models.base.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_purchase_orders_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_purchase_orders_warehouse_id_warehouses"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_orders")),
        sa.UniqueConstraint("number", name=op.f("uq_purchase_orders_number")),
    )
    with op.batch_alter_table("purchase_orders", schema=None) as batch_op:
        batch_op.create_index("ix_purchase_orders_status_id", ["status", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_purchase_orders_warehouse_id"), ["warehouse_id"], unique=False
        )

    op.create_table(
        "transfers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "IN_TRANSIT",
                "RECEIVED",
                "CANCELLED",
                name="transfer_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("from_warehouse_id", sa.Integer(), nullable=False),
        sa.Column("to_warehouse_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("shipped_at", db.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", db.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", db.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            db.models.base.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            db.models.base.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "from_warehouse_id <> to_warehouse_id", name=op.f("ck_transfers_warehouses_differ")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_transfers_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["from_warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_transfers_from_warehouse_id_warehouses"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["to_warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_transfers_to_warehouse_id_warehouses"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
    )
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.create_index("ix_transfers_from_warehouse_id", ["from_warehouse_id"], unique=False)
        batch_op.create_index("ix_transfers_status_id", ["status", "id"], unique=False)
        batch_op.create_index("ix_transfers_to_warehouse_id", ["to_warehouse_id"], unique=False)

    op.create_table(
        "purchase_order_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purchase_order_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("quantity_ordered", sa.Integer(), nullable=False),
        sa.Column("quantity_received", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "quantity_ordered > 0", name=op.f("ck_purchase_order_lines_quantity_ordered_positive")
        ),
        sa.CheckConstraint(
            "quantity_received >= 0",
            name=op.f("ck_purchase_order_lines_quantity_received_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_purchase_order_lines_item_id_items"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["purchase_order_id"],
            ["purchase_orders.id"],
            name=op.f("fk_purchase_order_lines_purchase_order_id_purchase_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_order_lines")),
        sa.UniqueConstraint(
            "purchase_order_id",
            "item_id",
            name=op.f("uq_purchase_order_lines_purchase_order_id_item_id"),
        ),
    )
    with op.batch_alter_table("purchase_order_lines", schema=None) as batch_op:
        batch_op.create_index("ix_purchase_order_lines_item_id", ["item_id"], unique=False)

    op.create_table(
        "transfer_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transfer_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("quantity_received", sa.Integer(), nullable=False),
        sa.Column("quantity_damaged", sa.Integer(), nullable=False),
        sa.Column("quantity_lost", sa.Integer(), nullable=False),
        sa.Column("short_reason", sa.Text(), nullable=True),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_transfer_lines_quantity_positive")),
        sa.CheckConstraint(
            "quantity_received + quantity_damaged + quantity_lost <= quantity",
            name=op.f("ck_transfer_lines_receipt_within_quantity"),
        ),
        sa.CheckConstraint(
            "quantity_received >= 0 AND quantity_damaged >= 0 AND quantity_lost >= 0",
            name=op.f("ck_transfer_lines_receipt_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_transfer_lines_item_id_items"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["transfers.id"],
            name=op.f("fk_transfer_lines_transfer_id_transfers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfer_lines")),
        sa.UniqueConstraint(
            "transfer_id", "item_id", name=op.f("uq_transfer_lines_transfer_id_item_id")
        ),
    )
    with op.batch_alter_table("transfer_lines", schema=None) as batch_op:
        batch_op.create_index("ix_transfer_lines_item_id", ["item_id"], unique=False)

    with op.batch_alter_table("stock_levels", schema=None) as batch_op:
        batch_op.add_column(sa.Column("damaged", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("quality_control", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("safety_stock", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.drop_constraint(op.f("ck_stock_levels_reserved_within_on_hand"), type_="check")
        for name, condition in LEVEL_CHECKS:
            batch_op.create_check_constraint(op.f(f"ck_stock_levels_{name}"), condition)

    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("damaged_after", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("quality_control_after", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("safety_stock_after", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "from_state",
                sa.Enum(
                    "AVAILABLE",
                    "DAMAGED",
                    "QUALITY_CONTROL",
                    name="movement_from_state",
                    native_enum=False,
                    create_constraint=True,
                    length=16,
                ),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column(
                "to_state",
                sa.Enum(
                    "AVAILABLE",
                    "DAMAGED",
                    "QUALITY_CONTROL",
                    name="movement_to_state",
                    native_enum=False,
                    create_constraint=True,
                    length=16,
                ),
                nullable=True,
            )
        )
        batch_op.create_index(
            "ix_stock_movements_level_created_at",
            ["item_id", "warehouse_id", "created_at", "id"],
            unique=False,
        )
        batch_op.drop_constraint(op.f("ck_stock_movements_movement_kind"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_stock_movements_movement_kind"), _kinds(KINDS + NEW_KINDS)
        )


def downgrade() -> None:
    op.execute("DELETE FROM stock_movements WHERE kind IN ('STATE_CHANGE', 'SAFETY_STOCK')")
    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_stock_movements_movement_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_stock_movements_movement_kind"), _kinds(KINDS))
        batch_op.drop_index("ix_stock_movements_level_created_at")
        batch_op.drop_constraint(op.f("ck_stock_movements_movement_to_state"), type_="check")
        batch_op.drop_constraint(op.f("ck_stock_movements_movement_from_state"), type_="check")
        batch_op.drop_column("to_state")
        batch_op.drop_column("from_state")
        batch_op.drop_column("safety_stock_after")
        batch_op.drop_column("quality_control_after")
        batch_op.drop_column("damaged_after")

    with op.batch_alter_table("stock_levels", schema=None) as batch_op:
        for name, _ in LEVEL_CHECKS:
            batch_op.drop_constraint(op.f(f"ck_stock_levels_{name}"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_stock_levels_reserved_within_on_hand"), "reserved <= on_hand"
        )
        batch_op.drop_column("safety_stock")
        batch_op.drop_column("quality_control")
        batch_op.drop_column("damaged")

    with op.batch_alter_table("transfer_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_transfer_lines_item_id")

    op.drop_table("transfer_lines")
    with op.batch_alter_table("purchase_order_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_purchase_order_lines_item_id")

    op.drop_table("purchase_order_lines")
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_transfers_to_warehouse_id")
        batch_op.drop_index("ix_transfers_status_id")
        batch_op.drop_index("ix_transfers_from_warehouse_id")

    op.drop_table("transfers")
    with op.batch_alter_table("purchase_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_purchase_orders_warehouse_id"))
        batch_op.drop_index("ix_purchase_orders_status_id")

    op.drop_table("purchase_orders")
