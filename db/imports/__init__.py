"""Bulk imports of items and stock counts from CSV or JSON Lines files.

Split by job: ``columns`` (what each kind reads, the header check, the formula guard),
``reading`` (a file, one record at a time), ``rows`` (row errors and cell parsers),
``items`` and ``counts`` (parse a row, apply a batch), ``paths`` (category paths),
``seen`` (repeated keys, on disk), ``jobs`` (the job rows), ``files`` (where uploads wait),
``process`` (the passes of one job).
"""

from db.imports.columns import SPECS, HeaderError, guard, unguard
from db.imports.files import ImportFiles
from db.imports.jobs import (
    MAX_ERRORS_KEPT,
    JobLost,
    Stopping,
    Submission,
    active_job_ids,
    cancel,
    claim_next,
    count_jobs,
    count_row_errors,
    finish,
    get_job,
    heartbeat,
    list_jobs,
    list_row_errors,
    release,
    submit,
)
from db.imports.process import JobRun, Limits, run_job
from db.imports.reading import MAX_LINE, Format, Shape, header_of

__all__ = [
    "MAX_ERRORS_KEPT",
    "MAX_LINE",
    "SPECS",
    "Format",
    "HeaderError",
    "ImportFiles",
    "JobLost",
    "JobRun",
    "Limits",
    "Shape",
    "Stopping",
    "Submission",
    "active_job_ids",
    "cancel",
    "claim_next",
    "count_jobs",
    "count_row_errors",
    "finish",
    "get_job",
    "guard",
    "header_of",
    "heartbeat",
    "list_jobs",
    "list_row_errors",
    "release",
    "run_job",
    "submit",
    "unguard",
]
