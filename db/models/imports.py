"""Bulk import jobs and the per-row errors they found."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, utcnow


class ImportKind(StrEnum):
    ITEMS = "ITEMS"
    STOCK_COUNTS = "STOCK_COUNTS"


class ImportStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        return self not in (ImportStatus.QUEUED, ImportStatus.RUNNING)


class ImportPhase(StrEnum):
    """Where a job is: counting rows, checking them all first, or writing them."""

    SCANNING = "SCANNING"
    VALIDATING = "VALIDATING"
    APPLYING = "APPLYING"


def _enum(cls: type[StrEnum], name: str) -> Enum:
    return Enum(cls, native_enum=False, create_constraint=True, length=16, name=name)


class ImportJob(Base):
    """One uploaded file and what became of it; counters move as batches commit."""

    __tablename__ = "import_jobs"
    __table_args__ = (
        # The same file uploaded again by the same user finds this job (a retry is harmless).
        # NULL once the job failed or was cancelled, so the file may then be tried anew.
        UniqueConstraint("user_id", "dedup_key"),
        Index("ix_import_jobs_user_id_id", "user_id", "id"),
        Index("ix_import_jobs_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ImportKind] = mapped_column(_enum(ImportKind, "import_kind"))
    status: Mapped[ImportStatus] = mapped_column(
        _enum(ImportStatus, "import_status"), default=ImportStatus.QUEUED
    )
    phase: Mapped[ImportPhase] = mapped_column(
        _enum(ImportPhase, "import_phase"), default=ImportPhase.SCANNING
    )
    dry_run: Mapped[bool] = mapped_column(default=False)
    # ``db.stock.ErrorPolicy`` by value (the models cannot import the stock package).
    error_policy: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    dedup_key: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int]
    total: Mapped[int | None]
    processed: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    # Data rows whose batches are committed: where a resumed job carries on.
    committed_rows: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    # The process working on it and when it last said so; a stale heartbeat frees the job.
    runner: Mapped[str | None] = mapped_column(String(64))
    heartbeat_at: Mapped[datetime | None]
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class ImportRowError(Base):
    """A bad row (or cell) of an import: its physical line, the column and why."""

    __tablename__ = "import_row_errors"
    __table_args__ = (Index("ix_import_row_errors_job_id_line_id", "job_id", "line", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"))
    line: Mapped[int]
    column_name: Mapped[str | None] = mapped_column(String(200))
    # An ``ErrorCode`` by value: plain text, so a new code never needs a migration here.
    code: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
