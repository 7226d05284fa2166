"""Import jobs: submitted once per file and user, claimed by one runner, moved on per batch.

Every change to a running job is a conditional UPDATE on ``(id, runner, status=RUNNING)``:
a job that was cancelled, or reclaimed by another process after its heartbeat went stale,
stops its old runner at the next batch, whose transaction then rolls back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.dialects import insert_ignoring_conflicts
from db.errors import ErrorCode, ServiceError
from db.imports.rows import RowError
from db.models import ImportJob, ImportKind, ImportPhase, ImportRowError, ImportStatus, utcnow
from db.pagination import Page, PageArgs, SortKey, count, paginate

# Enough to fix a file by; the ``failed`` counter still counts every bad row.
MAX_ERRORS_KEPT = 10_000
_ACTIVE = (ImportStatus.QUEUED, ImportStatus.RUNNING)


class JobLost(Exception):
    """The job was cancelled or taken over: this runner must stop and keep nothing."""


class Stopping(Exception):
    """Its process is shutting down: the job stops between batches, to be handed back."""


@dataclass(frozen=True, slots=True)
class Submission:
    kind: ImportKind
    dry_run: bool
    error_policy: str
    user_id: int
    sha256: str
    size: int

    def dedup_key(self) -> str:
        """One job per file and user for the same kind of run: a retried upload finds it."""
        parts = (self.kind.value, str(self.dry_run), self.error_policy, self.sha256)
        return hashlib.sha256("|".join(parts).encode()).hexdigest()


async def submit(session: AsyncSession, submission: Submission) -> tuple[ImportJob, bool]:
    """The queued job for this file, and whether it is new (False: uploaded before)."""
    key = submission.dedup_key()
    values = {
        "kind": submission.kind,
        "status": ImportStatus.QUEUED,
        "phase": ImportPhase.SCANNING,
        "dry_run": submission.dry_run,
        "error_policy": submission.error_policy,
        "user_id": submission.user_id,
        "sha256": submission.sha256,
        "dedup_key": key,
        "size": submission.size,
        "created_at": utcnow(),
    }
    inserted = await session.execute(
        insert_ignoring_conflicts(session, ImportJob, values, ["user_id", "dedup_key"]).returning(
            ImportJob.id
        )
    )
    new_id = inserted.scalar()
    if new_id is not None:
        return await session.get_one(ImportJob, new_id), True
    found = await session.scalars(
        select(ImportJob).where(ImportJob.user_id == submission.user_id, ImportJob.dedup_key == key)
    )
    return found.one(), False


async def claim_next(
    session: AsyncSession, runner: str, stale_before: datetime, max_attempts: int
) -> ImportJob | None:
    """Take the oldest queued job, or a running one whose runner stopped beating."""
    claimable = or_(
        ImportJob.status == ImportStatus.QUEUED,
        (ImportJob.status == ImportStatus.RUNNING) & (ImportJob.heartbeat_at < stale_before),
    )
    candidates = await session.scalars(
        select(ImportJob.id).where(claimable).order_by(ImportJob.id).limit(5)
    )
    now = utcnow()
    for job_id in candidates.all():
        # Conditional: another process may have claimed it since the select.
        claimed = (
            await session.scalars(
                update(ImportJob)
                .where(ImportJob.id == job_id, claimable)
                .values(
                    status=ImportStatus.RUNNING,
                    runner=runner,
                    heartbeat_at=now,
                    attempts=ImportJob.attempts + 1,
                    started_at=func.coalesce(ImportJob.started_at, now),
                )
                .returning(ImportJob)
                .execution_options(populate_existing=True)
            )
        ).first()
        if claimed is None:
            continue
        if claimed.attempts > max_attempts:
            await finish(
                session,
                claimed.id,
                runner,
                ImportStatus.FAILED,
                f"Interrupted {max_attempts} times (server restarts): gave up",
            )
            continue
        return claimed
    return None


async def heartbeat(session: AsyncSession, job_id: int, runner: str) -> bool:
    """Say the job is still being worked on; False once it is no longer ours."""
    result = await session.execute(
        update(ImportJob)
        .where(
            ImportJob.id == job_id,
            ImportJob.runner == runner,
            ImportJob.status == ImportStatus.RUNNING,
        )
        .values(heartbeat_at=utcnow())
        .returning(ImportJob.id)
    )
    return result.first() is not None


async def _ours(session: AsyncSession, job_id: int, runner: str, **values: Any) -> None:
    result = await session.execute(
        update(ImportJob)
        .where(
            ImportJob.id == job_id,
            ImportJob.runner == runner,
            ImportJob.status == ImportStatus.RUNNING,
        )
        .values(heartbeat_at=utcnow(), **values)
        .returning(ImportJob.id)
    )
    if result.first() is None:
        raise JobLost


async def enter_phase(
    session: AsyncSession, job_id: int, runner: str, phase: ImportPhase, **values: Any
) -> None:
    """Start a pass from its beginning: counters at zero, earlier errors gone."""
    await _ours(
        session,
        job_id,
        runner,
        phase=phase,
        processed=0,
        created=0,
        updated=0,
        unchanged=0,
        failed=0,
        committed_rows=0,
        **values,
    )
    await session.execute(delete(ImportRowError).where(ImportRowError.job_id == job_id))


@dataclass(frozen=True, slots=True)
class Progress:
    """What one batch adds to the job's counters."""

    processed: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    committed: int | None = None  # the new resume point, when the batch wrote rows


async def record_batch(
    session: AsyncSession,
    job_id: int,
    runner: str,
    progress: Progress,
    errors: Sequence[RowError],
) -> None:
    """Move the counters on and keep the batch's errors, in the batch's transaction."""
    values: dict[str, Any] = {
        name: getattr(ImportJob, name) + getattr(progress, name)
        for name in ("processed", "created", "updated", "unchanged", "failed")
        if getattr(progress, name)
    }
    if progress.committed is not None:
        values["committed_rows"] = progress.committed
    await _ours(session, job_id, runner, **values)
    if errors:
        await session.execute(
            insert(ImportRowError),
            [
                {
                    "job_id": job_id,
                    "line": e.line,
                    "column_name": e.column,
                    "code": e.code.value,
                    "message": e.message,
                }
                for e in errors
            ],
        )


async def finish(
    session: AsyncSession,
    job_id: int,
    runner: str,
    status: ImportStatus,
    reason: str | None = None,
    **values: Any,
) -> None:
    """End the job. A failed one frees its file: uploading it again starts a new job."""
    extra: dict[str, Any] = {"dedup_key": None} if status is ImportStatus.FAILED else {}
    await session.execute(
        update(ImportJob)
        .where(
            ImportJob.id == job_id,
            ImportJob.runner == runner,
            ImportJob.status == ImportStatus.RUNNING,
        )
        .values(status=status, failure_reason=reason, finished_at=utcnow(), **extra, **values)
    )


async def release(session: AsyncSession, job_id: int, runner: str, *, clean: bool) -> None:
    """Hand a job back to the queue: the next look for work resumes it.

    A clean shutdown is no interruption: it does not count towards the attempts that fail a
    job (a database that went away does).
    """
    await session.execute(
        update(ImportJob)
        .where(
            ImportJob.id == job_id,
            ImportJob.runner == runner,
            ImportJob.status == ImportStatus.RUNNING,
        )
        .values(
            status=ImportStatus.QUEUED,
            runner=None,
            attempts=ImportJob.attempts - (1 if clean else 0),
        )
    )


async def cancel(
    session: AsyncSession, job_id: int, *, actor_id: int, any_owner: bool
) -> ImportJob:
    """Stop a queued or running job; batches already committed stay."""
    job = await get_job(session, job_id, owner=None if any_owner else actor_id)
    if job is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such import job", ["id"])
    cancelled = (
        await session.scalars(
            update(ImportJob)
            .where(ImportJob.id == job.id, ImportJob.status.in_(_ACTIVE))
            .values(
                status=ImportStatus.CANCELLED,
                finished_at=utcnow(),
                dedup_key=None,
                failure_reason="Cancelled",
            )
            .returning(ImportJob)
            .execution_options(populate_existing=True)
        )
    ).first()
    if cancelled is None:
        current = await session.get_one(ImportJob, job.id, populate_existing=True)
        raise ServiceError(
            ErrorCode.INVALID, f"The import already finished ({current.status.value})", ["id"]
        )
    return cancelled


# ---------------------------------------------------------------- reads


async def get_job(session: AsyncSession, job_id: int, owner: int | None) -> ImportJob | None:
    """The job; with ``owner``, only if that user submitted it."""
    stmt = select(ImportJob).where(ImportJob.id == job_id)
    if owner is not None:
        stmt = stmt.where(ImportJob.user_id == owner)
    return (await session.scalars(stmt.execution_options(populate_existing=True))).first()


def _jobs(owner: int | None) -> Any:
    stmt = select(ImportJob)
    return stmt if owner is None else stmt.where(ImportJob.user_id == owner)


async def list_jobs(session: AsyncSession, owner: int | None, args: PageArgs) -> Page[ImportJob]:
    """Newest first; with ``owner``, that user's jobs only."""
    return await paginate(session, _jobs(owner), [SortKey(ImportJob.id, descending=True)], args)


async def count_jobs(session: AsyncSession, owner: int | None) -> int:
    return await count(session, _jobs(owner))


def _errors(job_id: int) -> Any:
    return select(ImportRowError).where(ImportRowError.job_id == job_id)


async def list_row_errors(
    session: AsyncSession, job_id: int, args: PageArgs
) -> Page[ImportRowError]:
    """In file order."""
    keys = [SortKey(ImportRowError.line), SortKey(ImportRowError.id)]
    return await paginate(session, _errors(job_id), keys, args)


async def count_row_errors(session: AsyncSession, job_id: int) -> int:
    return await count(session, _errors(job_id))


async def active_job_ids(session: AsyncSession) -> set[int]:
    """Jobs that still need their files."""
    rows = await session.scalars(select(ImportJob.id).where(ImportJob.status.in_(_ACTIVE)))
    return set(rows.all())
