"""``POST /imports/items``, ``POST /imports/stock-counts`` and ``GET /imports/{id}``.

An upload is checked while it streams to disk and answered ``202 {id, status, url}`` at
once; the runner works through the file in the background. Progress and row errors are in
GraphQL (``importJob``, ``importProgress``); ``url`` answers the job's counters as JSON.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import CurrentUser, StateDep
from api.imports.receive import NotText, Unusable, receive_import
from api.state import AppState
from api.uploads.receive import UploadError
from db import imports
from db.imports import Submission
from db.models import ImportJob, ImportKind, Role
from db.session import unit_of_work
from db.stock import ErrorPolicy
from schema.context import Viewer
from schema.ids import from_global_id, to_global_id

router = APIRouter(tags=["imports"])

DryRun = Annotated[bool, Query(alias="dryRun", description="Check every row, change nothing.")]
Policy = Annotated[
    ErrorPolicy,
    Query(alias="errorPolicy",
          description="REJECT_EVERYTHING: nothing is imported if any row is bad. "
          "REJECT_FAILED_ROWS: good rows are imported, bad ones listed."),
]


class ImportAccepted(BaseModel):
    id: str = Field(examples=["SW1wb3J0Sm9iOjE="], description="Pass to `importJob(id:)`.")
    status: str = Field(examples=["QUEUED"])
    url: str = Field(examples=["/imports/SW1wb3J0Sm9iOjE="])


class ImportJobStatus(BaseModel):
    id: str
    kind: str
    status: str
    phase: str
    dryRun: bool
    errorPolicy: str
    total: int | None
    processed: int
    created: int
    updated: int
    unchanged: int
    failed: int
    failureReason: str | None
    createdAt: datetime
    startedAt: datetime | None
    finishedAt: datetime | None

    @classmethod
    def of(cls, job: ImportJob) -> ImportJobStatus:
        return cls(
            id=to_global_id("ImportJob", job.id), kind=job.kind.value, status=job.status.value,
            phase=job.phase.value, dryRun=job.dry_run, errorPolicy=job.error_policy,
            total=job.total, processed=job.processed, created=job.created, updated=job.updated,
            unchanged=job.unchanged, failed=job.failed, failureReason=job.failure_reason,
            createdAt=job.created_at, startedAt=job.started_at, finishedAt=job.finished_at,
        )


_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed multipart request"},
    401: {"description": "No or bad token"},
    403: {"description": "Role too low"},
    413: {"description": "Over STOCKROOM_MAX_IMPORT_BYTES"},
    415: {"description": "Not UTF-8 text: names the byte offset and line of the first bad byte"},
    422: {"description": "Empty, header only, or a header with missing, unknown or repeated "
                         "columns (named in `missing`, `unknown`, `repeated`)"},
}
_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {
    "schema": {"type": "object", "required": ["file"],
               "properties": {"file": {"type": "string", "format": "binary"}}}}}}}


async def _accept(
    request: Request, user: Viewer, state: AppState, kind: ImportKind, dry_run: bool,
    policy: ErrorPolicy,
) -> JSONResponse:
    runner = state.imports
    assert runner is not None, "the lifespan starts the runner"
    try:
        staged = await receive_import(request, runner.files, state.settings.max_import_bytes,
                                      kind)
    except UploadError as error:
        details = error.details() if isinstance(error, NotText | Unusable) else {}
        return JSONResponse({"detail": error.message, **details},
                            status_code=error.status_code)
    try:
        async with unit_of_work(state.write_factory) as session:
            job, new = await imports.submit(session, Submission(
                kind, dry_run, policy.value, user.id, staged.sha256, staged.size))
            if new:  # before the commit: a committed job always has its file
                runner.files.adopt(staged.temp, job.id)
    finally:
        staged.temp.unlink(missing_ok=True)  # a file uploaded before, or a failed commit
    runner.wake()
    gid = to_global_id("ImportJob", job.id)
    accepted = ImportAccepted(id=gid, status=job.status.value, url=f"/imports/{gid}")
    return JSONResponse(accepted.model_dump(), status_code=status.HTTP_202_ACCEPTED)


@router.post(
    "/imports/items",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ImportAccepted,
    summary="Import items from CSV or JSON Lines (MANAGER and above)",
    description="multipart/form-data with a `file` field. CSV with the header "
    "`sku,name,description,category,unit_price,unit_cost,reorder_point,archived` (sku, name "
    "and unit_price required; a column left out keeps its field), UTF-8 with or without a "
    "BOM, `,` or `;` between cells, RFC 4180 quoting; or JSON Lines with the same keys. "
    "`category` is a path like `Hardware/Fasteners`, created when missing. Rows upsert by "
    "SKU; `version` moves only when something changed. The same file uploaded again by the "
    "same user returns the same job.",
    responses=_RESPONSES,
    openapi_extra=_BODY,
)
async def import_items(
    request: Request, user: CurrentUser, state: StateDep, dry_run: DryRun = False,
    error_policy: Policy = ErrorPolicy.REJECT_EVERYTHING,
) -> JSONResponse:
    if not user.role.includes(Role.MANAGER):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Importing items needs the MANAGER role")
    return await _accept(request, user, state, ImportKind.ITEMS, dry_run, error_policy)


@router.post(
    "/imports/stock-counts",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ImportAccepted,
    summary="Import stock counts from CSV or JSON Lines (CLERK and above)",
    description="multipart/form-data with a `file` field: `sku,warehouse,counted[,reason]` "
    "(`warehouse` is its code). Each row is a `setStockCount` with reference `import:<id>` "
    "and one ledger row; a count equal to what is on hand changes nothing. A stock export "
    "re-imports as it is (`on_hand` is read as `counted`, its other columns are ignored).",
    responses=_RESPONSES,
    openapi_extra=_BODY,
)
async def import_stock_counts(
    request: Request, user: CurrentUser, state: StateDep, dry_run: DryRun = False,
    error_policy: Policy = ErrorPolicy.REJECT_EVERYTHING,
) -> JSONResponse:
    if not user.role.includes(Role.CLERK):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Importing counts needs the CLERK role")
    return await _accept(request, user, state, ImportKind.STOCK_COUNTS, dry_run, error_policy)


@router.get(
    "/imports/{job_id}",
    response_model=ImportJobStatus,
    summary="An import job's status and counters (its owner, or ADMIN)",
    responses={404: {"description": "No such import job"}},
)
async def import_status(job_id: str, user: CurrentUser, state: StateDep) -> ImportJobStatus:
    try:
        type_name, pk = from_global_id(job_id)
    except ValueError:
        type_name, pk = "", 0
    job = None
    if type_name == "ImportJob":
        owner = None if user.role.includes(Role.ADMIN) else user.id
        async with state.read_factory() as session:
            job = await imports.get_job(session, pk, owner)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "No such import job")
    return ImportJobStatus.of(job)
