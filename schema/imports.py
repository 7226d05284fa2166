"""Import jobs in GraphQL: ``importJob``, ``importJobs``, ``cancelImport``, ``importProgress``.

Files arrive over REST (``POST /imports/items``, ``POST /imports/stock-counts``); here
clients follow the job. A job is visible to the user who uploaded it, and to ADMIN.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated, TypeAlias

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from db import imports
from db.models import ImportJob as ImportJobRow
from db.models import ImportKind as ImportKindEnum
from db.models import ImportPhase as ImportPhaseEnum
from db.models import ImportRowError as ImportRowErrorRow
from db.models import ImportStatus as ImportStatusEnum
from db.models import Role
from schema.context import Context, Viewer
from schema.errors import ARGUMENTS, CodedError, ErrorCode, UserError
from schema.ids import decode_id, pk_of
from schema.mutations import run
from schema.permissions import IsClerk
from schema.relay import After, Connection, First, Node, global_id, page_args, paged
from schema.stock.mutations import ErrorPolicy

# "At least every second while the job runs": a poll twice as often keeps that promise.
PROGRESS_SECONDS = 0.5

strawberry.enum(ImportKindEnum, name="ImportKind", description="What an import file holds.")
strawberry.enum(ImportStatusEnum, name="ImportStatus", description="Life cycle of an import.")
strawberry.enum(
    ImportPhaseEnum,
    name="ImportPhase",
    description="Which pass over the file a job is in: counting its rows, checking them all "
    "(dry runs and REJECT_EVERYTHING), or importing them.",
)
ImportKind: TypeAlias = ImportKindEnum
ImportStatus: TypeAlias = ImportStatusEnum
ImportPhase: TypeAlias = ImportPhaseEnum


def _owner(viewer: Viewer | None) -> int | None:
    """Whose jobs a viewer sees: their own, or (ADMIN) everyone's."""
    assert viewer is not None  # the permission classes guarantee it
    return None if viewer.role.includes(Role.ADMIN) else viewer.id


@strawberry.type(description="One problem of one row of an import file.")
class ImportRowError:
    line: int = strawberry.field(
        description="Physical line of the file, counted from 1 (a CSV header is line 1)."
    )
    column: str | None = strawberry.field(
        description="The header name of the offending cell; null for a whole-row problem."
    )
    code: ErrorCode = strawberry.field(description="Machine-readable reason.")
    message: str = strawberry.field(description="Explanation for people.")

    @classmethod
    def from_row(cls, row: ImportRowErrorRow) -> ImportRowError:
        return cls(line=row.line, column=row.column_name, code=ErrorCode(row.code),
                   message=row.message)


@strawberry.type(description="A bulk import: an uploaded file worked through in batches.")
class ImportJob(Node):
    id: strawberry.ID = global_id("ImportJob")
    kind: ImportKind = strawberry.field(description="Items or stock counts.")
    status: ImportStatus = strawberry.field(description="Where the job is in its life cycle.")
    phase: ImportPhase = strawberry.field(description="Which pass over the file it is in.")
    dry_run: bool = strawberry.field(
        description="Only checked: nothing was changed; the counters say what importing would do."
    )
    error_policy: ErrorPolicy = strawberry.field(
        description="REJECT_EVERYTHING: nothing is imported if any row fails."
    )
    total: int | None = strawberry.field(description="Data rows in the file, once counted.")
    processed: int = strawberry.field(
        description="Rows through the final pass so far (importing, or checking for a dry run)."
    )
    created: int = strawberry.field(description="Rows that created an item or stock level.")
    updated: int = strawberry.field(description="Rows that changed one.")
    unchanged: int = strawberry.field(description="Rows that matched what was stored.")
    failed: int = strawberry.field(description="Rows refused; see `errors`.")
    failure_reason: str | None = strawberry.field(
        description="Why the job failed or stopped, when it did."
    )
    created_at: datetime = strawberry.field(description="When the file was uploaded (UTC).")
    started_at: datetime | None = strawberry.field(description="When work began (UTC).")
    finished_at: datetime | None = strawberry.field(description="When it ended (UTC).")
    pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: ImportJobRow) -> ImportJob:
        return cls(
            pk=row.id,
            kind=row.kind,
            status=row.status,
            phase=row.phase,
            dry_run=row.dry_run,
            error_policy=ErrorPolicy(row.error_policy),
            total=row.total,
            processed=row.processed,
            created=row.created,
            updated=row.updated,
            unchanged=row.unchanged,
            failed=row.failed,
            failure_reason=row.failure_reason,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
        )

    @strawberry.field(description="The rows that failed, in file order (the first 10,000).")
    async def errors(
        self, info: strawberry.Info[Context], first: First = None, after: After = None
    ) -> Connection[ImportRowError]:
        reader, args = info.context.reader, page_args(first, after)
        return await paged(
            lambda: reader(imports.list_row_errors, self.pk, args),
            ImportRowError.from_row,
            lambda: reader(imports.count_row_errors, self.pk),
        )


async def resolve_node(context: Context, pk: int) -> ImportJob | None:
    """``node(id:)`` for an ImportJob: only its owner (or ADMIN) finds it."""
    user = context.user
    if user is None or not user.role.includes(Role.CLERK):
        return None
    row = await context.reader(imports.get_job, pk, _owner(user))
    return None if row is None else ImportJob.from_row(row)


JobId = Annotated[strawberry.ID, strawberry.argument(description="The import job.")]


@strawberry.type
class ImportQuery:
    @strawberry.field(
        description="An import job of yours (ADMIN: anyone's); null when there is none.",
        permission_classes=[IsClerk],
    )
    async def import_job(self, info: strawberry.Info[Context], id: JobId) -> ImportJob | None:
        pk = decode_id(id, "ImportJob")
        row = await info.context.reader(imports.get_job, pk, _owner(info.context.user))
        return None if row is None else ImportJob.from_row(row)

    @strawberry.field(
        description="Your import jobs, newest first (ADMIN: everyone's).",
        permission_classes=[IsClerk],
    )
    async def import_jobs(
        self, info: strawberry.Info[Context], first: First = None, after: After = None
    ) -> Connection[ImportJob]:
        reader, args = info.context.reader, page_args(first, after)
        owner = _owner(info.context.user)
        return await paged(
            lambda: reader(imports.list_jobs, owner, args),
            ImportJob.from_row,
            lambda: reader(imports.count_jobs, owner),
        )


@strawberry.type(description="Result of cancelling an import.")
class ImportJobPayload:
    import_job: ImportJob | None = strawberry.field(description="The job as it is now.")
    errors: list[UserError] = strawberry.field(description="Why it failed, when it did.")


@strawberry.type
class ImportMutation:
    @strawberry.mutation(
        description="Stop a queued or running import of yours (ADMIN: anyone's). Batches "
        "already imported stay; the batch in flight is rolled back.",
        permission_classes=[IsClerk],
    )
    async def cancel_import(self, info: strawberry.Info[Context], id: JobId) -> ImportJobPayload:
        user = info.context.user
        assert user is not None

        async def work(session: AsyncSession) -> ImportJobRow:
            pk = pk_of(id, "ImportJob", "id", "import job")
            return await imports.cancel(session, pk, actor_id=user.id,
                                        any_owner=user.role.includes(Role.ADMIN))

        row, errors = await run(info.context, work, ARGUMENTS)
        return ImportJobPayload(import_job=None if row is None else ImportJob.from_row(row),
                                errors=errors)


@strawberry.type
class ImportSubscription:
    @strawberry.subscription(
        description="The job as it moves on: at least every second while it is queued or "
        "running, and once when it ends (then the subscription completes).",
        permission_classes=[IsClerk],
    )
    async def import_progress(
        self, info: strawberry.Info[Context], id: JobId
    ) -> AsyncGenerator[ImportJob, None]:
        context = info.context
        pk = decode_id(id, "ImportJob")
        owner = _owner(context.user)
        cap = context.settings.subscription_cap
        if context.active_subscriptions >= cap:
            raise CodedError(f"At most {cap} subscriptions per connection", "RATE_LIMITED")
        context.active_subscriptions += 1
        try:
            while True:
                async with context.services.read_factory() as session:
                    row = await imports.get_job(session, pk, owner)
                if row is None:
                    raise CodedError("No such import job", "NOT_FOUND")
                yield ImportJob.from_row(row)
                await context.refresh_reads()  # its fields are resolved: hold no connection
                if row.status.finished:
                    return
                await asyncio.sleep(PROGRESS_SECONDS)
        finally:
            context.active_subscriptions -= 1
