"""The import runner: one per process, working through queued jobs one at a time.

Claims are conditional UPDATEs, so several workers or hosts share one queue. While a job
runs its heartbeat is refreshed every third of ``stale_seconds``; a RUNNING job whose
heartbeat is older than that (its process died) is claimed again and resumes after its
last committed batch. A clean shutdown hands the job back to the queue straight away. A job
interrupted more than ``MAX_ATTEMPTS`` times fails, saying so: none stays RUNNING forever.
An upload wakes its own process's runner; polling (every ``poll_seconds``) happens only
while unfinished jobs exist, so an idle server sends no statements for imports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import timedelta

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api import outage
from db import imports
from db.imports import ImportFiles, JobLost, JobRun, Limits, Stopping
from db.models import ImportJob, ImportStatus, utcnow
from db.session import Publisher, unit_of_work

log = logging.getLogger("stockroom.imports")

MAX_ATTEMPTS = 3


class ImportRunner:
    def __init__(
        self,
        *,
        read_factory: async_sessionmaker[AsyncSession],
        write_factory: async_sessionmaker[AsyncSession],
        publish: Publisher,
        files: ImportFiles,
        limits: Limits,
        stale_seconds: float,
        poll_seconds: float,
    ) -> None:
        self.read_factory = read_factory
        self.write_factory = write_factory
        self.publish = publish
        self.files = files
        self.limits = limits
        self.stale_seconds = stale_seconds
        self.poll_seconds = poll_seconds
        self.id = f"{uuid.uuid4().hex[:12]}-{id(self):x}"[:64]
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def wake(self) -> None:
        """A job was queued here: look now rather than at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        """Before serving: remove leftover files, and look for work at once if jobs wait.

        A server with no unfinished jobs then sends no statement until one is uploaded. A
        database that is not there yet (the server waits for it, see /readyz) only means the
        runner looks at its first poll instead.
        """
        try:
            active = await self._active()
        except Exception as error:
            if not outage.is_database_unavailable(error):
                raise
            log.warning("import runner: the database is unavailable; looking again later")
            self._wake.set()
            return
        await asyncio.to_thread(self.files.sweep, active)
        if active:
            self._wake.set()

    async def stop(self, task: asyncio.Task[None], grace: float) -> None:
        """Let the job in hand finish its batch and go back to the queue, then end ``task``
        (``run_forever``); cancelled only if that takes longer than ``grace`` seconds."""
        self._stopping.set()
        self._wake.set()
        await asyncio.wait({task}, timeout=grace)

    async def run_forever(self) -> None:
        timeout: float | None = None
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                while await self.run_next():
                    pass
                active = await self._active()
                await asyncio.to_thread(self.files.sweep, active)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is away, say: look again at the next poll
                log.exception("import runner: looking for work failed")
                active = {0}
            # Jobs running elsewhere are watched for a stale heartbeat; with none, no polling.
            timeout = self.poll_seconds if active else None

    async def _active(self) -> set[int]:
        async with self.read_factory() as session:
            return await imports.active_job_ids(session)

    async def run_next(self) -> bool:
        """Claim one job and run it to its end; False when there was none."""
        stale_before = utcnow() - timedelta(seconds=self.stale_seconds)
        async with unit_of_work(self.write_factory) as session:
            job = await imports.claim_next(session, self.id, stale_before, MAX_ATTEMPTS)
        if job is None:
            return False
        log.info("import %s: %s, attempt %s, from row %s", job.id, job.phase.value,
                 job.attempts, job.committed_rows)
        beating = asyncio.create_task(self._beat(job.id), name=f"import-{job.id}-heartbeat")
        try:
            await imports.run_job(JobRun(job, self.id, self.files, self.read_factory,
                                         self.write_factory, self.publish, self.limits,
                                         self._stopping))
        except JobLost:
            log.info("import %s: cancelled or taken over; stopped", job.id)
        except Stopping:
            log.info("import %s: shutting down; handed back to the queue", job.id)
            await self._settle(job, None, clean=True)
            return False
        except asyncio.CancelledError:
            # Shutting down: hand the job back so the next start resumes it at once.
            await asyncio.shield(self._settle(job, None, clean=True))
            raise
        except (OperationalError, InterfaceError):
            log.exception("import %s: the database went away; it will resume", job.id)
            await self._settle(job, None)
        except DBAPIError as error:
            log.exception("import %s: the database refused a batch", job.id)
            await self._settle(job, f"The database refused a batch: {error.orig}"[:2000])
        except Exception as error:
            log.exception("import %s failed", job.id)
            await self._settle(job, f"Internal error ({type(error).__name__})")
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
        if job.id not in await self._active():  # over (not handed to another runner)
            self.files.remove(job.id)
        return True

    async def _settle(self, job: ImportJob, failure: str | None, *, clean: bool = False) -> None:
        """Fail the job with ``failure``, or (None) put it back in the queue."""
        try:
            async with unit_of_work(self.write_factory) as session:
                if failure is None:
                    await imports.release(session, job.id, self.id, clean=clean)
                else:
                    await imports.finish(session, job.id, self.id, ImportStatus.FAILED, failure)
        except Exception:  # its heartbeat goes stale and another start picks it up
            log.exception("import %s: could not record how it ended", job.id)

    async def _beat(self, job_id: int) -> None:
        interval = max(self.stale_seconds / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                async with unit_of_work(self.write_factory) as session:
                    if not await imports.heartbeat(session, job_id, self.id):
                        return  # no longer ours: the job's next batch finds out and stops
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("import %s: heartbeat failed", job_id, exc_info=True)
