"""The durable event log: one row per domain event, written with the change it reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base


class EventRecord(Base):
    """A committed domain event (the transactional outbox; see ``db/eventlog.py``)."""

    __tablename__ = "events"
    # AUTOINCREMENT: SQLite would otherwise reuse the ids of pruned rows, and an id is a
    # reader's position in the stream for as long as the log keeps it.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    channel: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Copied out of the payload so a replay filters in SQL; no foreign keys: an event
    # outlives the rows it mentions (a deleted item's DELETED event).
    item_id: Mapped[int | None]
    warehouse_id: Mapped[int | None]
    committed_at: Mapped[datetime]
