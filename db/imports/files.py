"""Where an uploaded import waits for its job: ``<upload dir>/imports/<job id>.upload``.

Named by job id, never by anything the client sent. A file is staged under a temp name,
then renamed to its job's name in the transaction that creates the job; a job's files go
when it finishes, and the sweep removes what a killed process or a failed commit left.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

TEMP_PREFIX = "tmp-"


class ImportFiles:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def new_temp(self) -> tuple[int, Path]:
        """A private (0600) file to stage an upload in: an open descriptor and its path."""
        fd, name = tempfile.mkstemp(dir=self.root, prefix=TEMP_PREFIX)
        return fd, Path(name)

    def data(self, job_id: int) -> Path:
        return self.root / f"{job_id}.upload"

    def index(self, job_id: int) -> Path:
        return self.root / f"{job_id}.seen"

    def adopt(self, temp: Path, job_id: int) -> None:
        os.replace(temp, self.data(job_id))

    def remove(self, job_id: int) -> None:
        for path in (self.data(job_id), self.index(job_id)):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)

    def sweep(self, active: set[int], age: float = 3600.0) -> int:
        """Remove what no job needs and is older than ``age``; how many went.

        Only old files: a job being created right now is not in ``active`` yet, though its
        file is already in place (and fresh: a rename keeps the staging file's time).
        """
        removed = 0
        cutoff = time.time() - age
        for entry in self.root.iterdir():
            with contextlib.suppress(OSError):
                stem = entry.name.split(".", 1)[0]
                needed = stem.isdigit() and int(stem) in active
                if not needed and entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    removed += 1
        return removed
