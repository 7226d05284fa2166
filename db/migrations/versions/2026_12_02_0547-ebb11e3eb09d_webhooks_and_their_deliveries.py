"""webhooks, their delivery log and the cursor that makes deliveries from the event log

Revision ID: ebb11e3eb09d
Revises: 1a2af5e16877
Create Date: 2026-12-02 05:47:49.347783
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.models.base

revision: str = "ebb11e3eb09d"
down_revision: str | None = "1a2af5e16877"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As db/models/webhooks.py spells them (a migration keeps its own copy of what it created).
OPEN_EVENTS = "origin = 'EVENT' AND status IN ('PENDING', 'FAILED')"
OPEN_MANUAL = "origin <> 'EVENT' AND status IN ('PENDING', 'FAILED')"


def upgrade() -> None:
    op.create_table(
        "webhook_cursor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Text(), nullable=False),
        sa.Column("marks", sa.JSON(), nullable=False),
        sa.Column("updated_at", db.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_cursor")),
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", db.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", db.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_webhooks_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column(
            "origin",
            sa.Enum(
                "EVENT",
                "PING",
                "REDELIVERY",
                name="webhook_delivery_origin",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column(
            "event_type",
            sa.Enum(
                "STOCK_CHANGED",
                "LOW_STOCK",
                "ITEM_CREATED",
                "ITEM_UPDATED",
                "ITEM_ARCHIVED",
                "ITEM_DELETED",
                "RESERVATION_EXPIRED",
                "PING",
                name="webhook_event_type",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("event_key", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("event_at", db.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING",
                "DELIVERED",
                "FAILED",
                "GAVE_UP",
                name="webhook_delivery_status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("next_attempt_at", db.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", db.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", db.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", db.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_webhook_deliveries_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_deliveries_created_at", ["created_at"], unique=False)
        batch_op.create_index(
            "ix_webhook_deliveries_open_events",
            ["webhook_id", "id"],
            unique=False,
            sqlite_where=sa.text(OPEN_EVENTS),
            postgresql_where=sa.text(OPEN_EVENTS),
        )
        batch_op.create_index(
            "ix_webhook_deliveries_open_manual",
            ["id"],
            unique=False,
            sqlite_where=sa.text(OPEN_MANUAL),
            postgresql_where=sa.text(OPEN_MANUAL),
        )
        batch_op.create_index(
            "ix_webhook_deliveries_webhook_id_id", ["webhook_id", "id"], unique=False
        )
        batch_op.create_index(
            "ix_webhook_deliveries_webhook_id_status_id",
            ["webhook_id", "status", "id"],
            unique=False,
        )
        batch_op.create_index(
            "uq_webhook_deliveries_webhook_id_event_id",
            ["webhook_id", "event_id"],
            unique=True,
            sqlite_where=sa.text("origin = 'EVENT'"),
            postgresql_where=sa.text("origin = 'EVENT'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_webhook_deliveries_webhook_id_event_id",
            sqlite_where=sa.text("origin = 'EVENT'"),
            postgresql_where=sa.text("origin = 'EVENT'"),
        )
        batch_op.drop_index("ix_webhook_deliveries_webhook_id_status_id")
        batch_op.drop_index("ix_webhook_deliveries_webhook_id_id")
        batch_op.drop_index("ix_webhook_deliveries_open_manual")
        batch_op.drop_index("ix_webhook_deliveries_open_events")
        batch_op.drop_index("ix_webhook_deliveries_created_at")

    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_table("webhook_cursor")
