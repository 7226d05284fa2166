"""Running one claimed import job: the passes over its file and the batches of each.

SCANNING counts the rows (and refuses a file over the row limit before anything is
written). VALIDATING, for a dry run or under REJECT_EVERYTHING, checks every row against
the database without writing; a dry run ends there, and REJECT_EVERYTHING ends there too
when any row failed, so nothing is applied. APPLYING writes batch by batch, each batch one
transaction that also moves the job's counters and its resume point on, so a restarted
job carries on after its last committed batch and no batch is ever half applied. Events
go out after each batch commits.

Reading and parsing run in a worker thread one batch ahead of the writing, so the parsing
of the next batch overlaps the database round trips of this one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.events import Event
from db.imports import jobs
from db.imports.columns import HeaderError
from db.imports.counts import apply_counts, count_key, count_repeated, parse_count
from db.imports.files import ImportFiles
from db.imports.items import apply_items, item_key, item_repeated, parse_item
from db.imports.jobs import MAX_ERRORS_KEPT, Progress
from db.imports.reading import RecordReader, Shape, TooManyRows, count_records
from db.imports.rows import Applied, Origin, Record, Rejected, RowError
from db.imports.seen import SeenKeys
from db.models import ImportJob, ImportKind, ImportPhase, ImportStatus
from db.session import Publisher, unit_of_work

log = logging.getLogger("stockroom.imports")


class Lined(Protocol):
    @property
    def line(self) -> int: ...


R = TypeVar("R", bound=Lined)
T = TypeVar("T")

# A batch that lost a race (a deadlock, a SKU created meanwhile) is tried again from scratch.
RETRIES = 5
_RETRY_STATES = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock timeout


@dataclass(frozen=True, slots=True)
class Kind(Generic[R]):
    """How one kind of import reads, keys and writes its rows."""

    parse: Callable[[Record, Shape], R | list[RowError]]
    key: Callable[[R], str]
    repeated: Callable[[R, int], RowError]
    apply: Callable[..., Awaitable[Applied]]
    # Whether a row that parsed may still fail against the database (an unknown warehouse).
    # If not, checking before writing needs the database only to predict (a dry run).
    fails_in_database: bool


KINDS: dict[ImportKind, Kind[Any]] = {
    ImportKind.ITEMS: Kind(parse_item, item_key, item_repeated, apply_items, False),
    ImportKind.STOCK_COUNTS: Kind(parse_count, count_key, count_repeated, apply_counts, True),
}


@dataclass(frozen=True, slots=True)
class Limits:
    max_rows: int
    batch_rows: int


@dataclass(frozen=True, slots=True)
class JobRun:
    """A claimed job and what running it needs."""

    job: ImportJob
    runner: str
    files: ImportFiles
    read_factory: async_sessionmaker[AsyncSession]
    write_factory: async_sessionmaker[AsyncSession]
    publish: Publisher
    limits: Limits
    # Set when the process shuts down. Checked between batches: a cancellation landing in
    # the middle of a SQLite write can leave its connection holding the write lock.
    stopping: asyncio.Event | None = None

    def check_stopping(self) -> None:
        if self.stopping is not None and self.stopping.is_set():
            raise jobs.Stopping

    @property
    def reject_everything(self) -> bool:
        return self.job.error_policy == "REJECT_EVERYTHING"


@dataclass(slots=True)
class Batch(Generic[R]):
    rows: list[R]
    failures: list[list[RowError]]  # one entry per row that failed to read or parse
    size: int  # data rows in the batch
    end: int  # data rows read from the file's start through this batch
    shape: Shape

    def labelled(self, errors: list[RowError]) -> list[RowError]:
        """Errors naming columns as the file's header spells them."""
        label = self.shape.label
        return [RowError(e.line, label(e.column), e.code, e.message) for e in errors]


class Batches(Generic[R]):
    """Consecutive batches of a file's rows, parsed and checked for repeated keys."""

    def __init__(self, reader: RecordReader, kind: Kind[R], seen: SeenKeys) -> None:
        self._records: Iterator[Record] = iter(reader)
        self._shape = reader.shape
        self._kind = kind
        self._seen = seen
        self._read = 0

    def next(self, limit: int) -> Batch[R] | None:
        kind = self._kind
        rows: list[R] = []
        failures: list[list[RowError]] = []
        size = 0
        for record in islice(self._records, limit):
            size += 1
            if record.problems:
                failures.append(list(record.problems))
                continue
            parsed = kind.parse(record, self._shape)
            if isinstance(parsed, list):
                failures.append(parsed)
            else:
                rows.append(parsed)
        if size == 0:
            return None
        repeats = self._seen.first_lines([(kind.key(row), row.line) for row in rows])
        if repeats:
            kept = []
            for row in rows:
                first = repeats.get(row.line)
                if first is None:
                    kept.append(row)
                else:
                    failures.append([kind.repeated(row, first)])
            rows = kept
        self._read += size
        return Batch(rows, failures, size, self._read, self._shape)


async def _off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking reading in a thread; if cancelled, wait for the thread to let go of
    the file before the caller closes it."""
    future = asyncio.get_running_loop().run_in_executor(None, fn, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


def _retryable(error: DBAPIError) -> bool:
    if isinstance(error, IntegrityError):
        return True  # an item created meanwhile with a SKU of this batch: it exists now
    state = getattr(error.orig, "sqlstate", None)
    return state in _RETRY_STATES or "database is locked" in str(error.orig)


class _Pass:
    """One pass over the file: batches read in a thread, each handed to ``handle``."""

    def __init__(self, run: JobRun, handle: Callable[[Batch[Any]], Awaitable[None]]) -> None:
        self.run = run
        self.handle = handle

    async def go(self, start: int = 0) -> None:
        run = self.run
        seen = SeenKeys(run.files.index(run.job.id))
        try:
            reader = await _off_loop(RecordReader, run.files.data(run.job.id), run.job.kind)
            try:
                batches = Batches(reader, KINDS[run.job.kind], seen)
                skipped = 0
                # Rows already committed are read again only to remember their keys.
                while skipped < start:
                    done = await _off_loop(
                        batches.next, min(run.limits.batch_rows, start - skipped)
                    )
                    if done is None:
                        break
                    skipped += done.size
                # The next batch is read while this one is written: parsing in its thread
                # overlaps the database's round trips.
                size = run.limits.batch_rows
                ahead = asyncio.ensure_future(_off_loop(batches.next, size))
                try:
                    while (batch := await ahead) is not None:
                        run.check_stopping()
                        ahead = asyncio.ensure_future(_off_loop(batches.next, size))
                        await self.handle(batch)
                finally:
                    ahead.cancel()
                    await asyncio.gather(ahead, return_exceptions=True)
            finally:
                reader.close()
        finally:
            seen.close()


class _Job:
    """Runs one job to its end (or until it is cancelled or taken over: ``JobLost``)."""

    def __init__(self, run: JobRun) -> None:
        self.run = run
        self.job = run.job
        self.origin = Origin(run.job.id, run.job.user_id)
        self.kind = KINDS[run.job.kind]
        self.total = run.job.total or 0
        self.kept = 0  # errors stored so far (bounded by MAX_ERRORS_KEPT)
        self.failed = 0  # rows that failed in this pass

    async def _write(self, work: Callable[[AsyncSession], Awaitable[None]]) -> None:
        async with unit_of_work(self.run.write_factory) as session:
            await work(session)

    async def _finish(self, status: ImportStatus, reason: str | None = None, **values: Any) -> None:
        run = self.run
        await self._write(
            lambda s: jobs.finish(s, self.job.id, run.runner, status, reason, **values)
        )

    def _keep(self, errors: list[RowError]) -> list[RowError]:
        room = max(0, MAX_ERRORS_KEPT - self.kept)
        return errors[:room]

    async def __call__(self) -> None:
        job, run = self.job, self.run
        if not run.files.data(job.id).exists():
            await self._finish(ImportStatus.FAILED, "The uploaded file is gone")
            return
        phase = job.phase
        if phase is ImportPhase.SCANNING or job.total is None:
            try:
                total = await _off_loop(
                    count_records, run.files.data(job.id), job.kind, run.limits.max_rows
                )
            except (TooManyRows, HeaderError, UnicodeDecodeError) as error:
                reason = error.message if isinstance(error, HeaderError) else str(error)
                if isinstance(error, UnicodeDecodeError):
                    reason = f"The file is not UTF-8 (byte offset {error.start})"
                await self._finish(ImportStatus.FAILED, reason)
                return
            phase = (
                ImportPhase.VALIDATING
                if job.dry_run or run.reject_everything
                else ImportPhase.APPLYING
            )
            await self._write(lambda s: jobs.enter_phase(s, job.id, run.runner, phase, total=total))
            self.total = total
            run.check_stopping()
        elif phase is ImportPhase.VALIDATING:
            # Checking writes nothing but errors: it simply starts over.
            await self._write(lambda s: jobs.enter_phase(s, job.id, run.runner, phase))
        if phase is ImportPhase.VALIDATING:
            await _Pass(run, self._check).go()
            if self.failed and run.reject_everything:
                would = "would be" if job.dry_run else "was"
                reason = (
                    f"{self.failed:,} row{'s' if self.failed > 1 else ''} failed: "
                    f"under REJECT_EVERYTHING nothing {would} imported"
                )
                extra = {} if job.dry_run else {"processed": self.total, "failed": self.failed}
                await self._finish(ImportStatus.FAILED, reason, **extra)
                return
            if job.dry_run:
                await self._finish(ImportStatus.SUCCEEDED)
                return
            await self._write(
                lambda s: jobs.enter_phase(s, job.id, run.runner, ImportPhase.APPLYING)
            )
            start = 0
        else:
            start = job.committed_rows
            if start:
                async with run.read_factory() as session:
                    self.kept = await jobs.count_row_errors(session, job.id)
        try:
            await _Pass(run, self._apply).go(start)
        except Rejected as rejected:
            errors = rejected.errors
            reason = (
                f"Line {errors[0].line} failed while importing (the data changed after "
                "it was checked); the rows before its batch were imported"
            )
            await self._write(
                lambda s: jobs.record_batch(s, job.id, run.runner, Progress(failed=1), errors)
            )
            await self._finish(ImportStatus.FAILED, reason)
            return
        await self._finish(ImportStatus.SUCCEEDED)

    async def _check(self, batch: Batch[Any]) -> None:
        run = self.run
        visible = self.job.dry_run  # a dry run's counters say what importing would do
        applied = Applied()
        if visible or self.kind.fails_in_database:
            async with run.read_factory() as session:
                applied = await self.kind.apply(
                    session, batch.rows, self.origin, write=False, reject=False
                )
        for failure in batch.failures:
            applied.fail(failure)
        self.failed += applied.failed
        if not (visible or applied.errors):
            return  # nothing to record: the heartbeat says the job is alive
        progress = Progress(
            processed=batch.size if visible else 0,
            created=applied.created if visible else 0,
            updated=applied.updated if visible else 0,
            unchanged=applied.unchanged if visible else 0,
            failed=applied.failed if visible else 0,
        )
        kept = self._keep(batch.labelled(applied.errors))
        await self._write(lambda s: jobs.record_batch(s, self.job.id, run.runner, progress, kept))
        self.kept += len(kept)

    async def _apply(self, batch: Batch[Any]) -> None:
        run = self.run
        events: list[Event] = []
        kept: list[RowError] = []

        async def capture(committed: list[Event]) -> None:
            events.extend(committed)

        for attempt in range(1, RETRIES + 1):
            try:
                async with unit_of_work(run.write_factory, capture) as session:
                    try:
                        applied = await self.kind.apply(
                            session,
                            batch.rows,
                            self.origin,
                            write=True,
                            reject=run.reject_everything,
                        )
                    except Rejected as rejected:
                        raise Rejected(batch.labelled(rejected.errors)) from None
                    for failure in batch.failures:
                        if run.reject_everything:
                            raise Rejected(batch.labelled(failure))
                        applied.fail(failure)
                    kept = self._keep(batch.labelled(applied.errors))
                    progress = Progress(
                        processed=batch.size,
                        created=applied.created,
                        updated=applied.updated,
                        unchanged=applied.unchanged,
                        failed=applied.failed,
                        committed=batch.end,
                    )
                    await jobs.record_batch(session, self.job.id, run.runner, progress, kept)
                break
            except DBAPIError as error:
                if attempt == RETRIES or not _retryable(error):
                    raise
                log.info(
                    "import %s: batch ending at row %s lost a race (%s), retrying",
                    self.job.id,
                    batch.end,
                    type(error.orig).__name__,
                )
                await asyncio.sleep(0.05 * attempt)
        self.kept += len(kept)
        if events:
            # After the commit and outside the retries: a broker hiccup never re-applies.
            try:
                await run.publish(events)
            except Exception:
                log.exception("import %s: publishing a batch's events failed", self.job.id)


async def run_job(run: JobRun) -> None:
    """Take a claimed job to SUCCEEDED or FAILED; ``jobs.JobLost`` if it stops being ours."""
    await _Job(run)()
