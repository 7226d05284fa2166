"""Where upload bytes live, behind a small interface (a local directory now, S3 later).

Blobs are named by the sha256 of their content and by nothing else: no client-supplied name
ever reaches the filesystem, and a digest is checked to be 64 lowercase hex characters before
it is turned into a path. Callers stage bytes in a temp file under ``temp_dir()`` (same
filesystem as the blobs), then ``put_file`` publishes it with an atomic rename, so a reader
never sees a partial blob. The caller owns the temp file and removes it on every path.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import anyio

READ_CHUNK = 64 * 1024
TEMP_PREFIX = "up-"
_SHA256 = re.compile(r"[0-9a-f]{64}")


class InvalidDigest(ValueError):
    """Not a lowercase hex sha256, so it must never be turned into a path."""


def check_digest(sha256: str) -> str:
    """Return ``sha256`` if it is exactly 64 lowercase hex characters, else raise."""
    # fullmatch, not ``^...$``: ``$`` also matches before a trailing newline.
    if not isinstance(sha256, str) or _SHA256.fullmatch(sha256) is None:
        raise InvalidDigest("not a sha256 hex digest")
    return sha256


class Storage(Protocol):
    """What the upload code needs from a blob store; an S3-compatible store fits it too."""

    def temp_dir(self) -> Path:
        """A local directory for staging uploads (for LocalStorage: on the blobs' filesystem,
        so publishing is a rename; for a remote store: any local scratch directory)."""
        ...

    async def put_file(self, tmp_path: Path, sha256: str) -> bool:
        """Publish ``tmp_path``'s bytes (whose sha256 the caller computed) under ``sha256``.

        Returns False when that content was already stored (nothing written). The file may be
        moved away; the caller removes ``tmp_path`` afterwards if it still exists.
        """
        ...

    async def exists(self, sha256: str) -> bool: ...

    def local_path(self, sha256: str) -> Path | None:
        """A path to serve from (FileResponse), or None when the store is not local."""
        ...

    def open(self, sha256: str) -> AsyncIterator[bytes]:
        """The blob's bytes in chunks (FileNotFoundError on first iteration if absent)."""
        ...

    async def delete(self, sha256: str) -> None:
        """Remove the blob; no error if it is already gone."""
        ...


class LocalStorage:
    """Blobs at ``root/ab/cd/<sha256>``, staged under ``root/.tmp``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def temp_dir(self) -> Path:
        return self._tmp

    def path(self, sha256: str) -> Path:
        """Where the blob lives (whether or not it exists); InvalidDigest for a bad digest."""
        digest = check_digest(sha256)
        return self.root / digest[:2] / digest[2:4] / digest

    def local_path(self, sha256: str) -> Path | None:
        return self.path(sha256)

    async def exists(self, sha256: str) -> bool:
        return await anyio.to_thread.run_sync(self.path(sha256).is_file)

    async def delete(self, sha256: str) -> None:
        target = self.path(sha256)
        await anyio.to_thread.run_sync(lambda: target.unlink(missing_ok=True))

    def open(self, sha256: str) -> AsyncIterator[bytes]:
        target = self.path(sha256)  # validated now, not on first iteration

        async def chunks() -> AsyncIterator[bytes]:
            # Opened on first iteration, so an iterator never consumed holds no descriptor.
            async with await anyio.open_file(target, "rb") as handle:
                while chunk := await handle.read(READ_CHUNK):
                    yield chunk

        return chunks()

    async def put_file(self, tmp_path: Path, sha256: str) -> bool:
        target = self.path(sha256)
        # Not abandoned on cancellation: the rename has either happened or not when the
        # caller's clean-up runs, never "in flight".
        return await anyio.to_thread.run_sync(self._publish, tmp_path, target)

    def _publish(self, tmp_path: Path, target: Path) -> bool:
        if target.is_file():  # content-addressed: the same bytes are stored once
            # Fresh again: the orphan sweep spares blobs younger than its grace period, and
            # this one is about to get (or keep) its row.
            with contextlib.suppress(OSError):
                os.utime(target)
            return False
        # Data on disk before the name points at it, so a crash never leaves a short blob.
        fd = os.open(tmp_path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Concurrent uploads of the same bytes both rename; identical content, so harmless.
        os.replace(tmp_path, target)
        for directory in (target.parent, target.parent.parent, self.root):
            _fsync_dir(directory)  # make the new directory entries durable too
        return True

    def blobs_older_than(self, seconds: float) -> list[str]:
        """Digests of stored blobs not written or re-uploaded for ``seconds``."""
        cutoff = time.time() - seconds
        found = []
        for blob in self.root.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*"):
            with contextlib.suppress(OSError):
                if blob.is_file() and blob.stat().st_mtime < cutoff:
                    found.append(blob.name)
        return found

    def sweep_temp(self, older_than: float = 3600.0) -> int:
        """Remove staged files a killed process left behind; returns how many.

        Only old ones: other workers may be staging uploads in the same directory right now.
        """
        cutoff = time.time() - older_than
        removed = 0
        for entry in self._tmp.iterdir():
            with contextlib.suppress(OSError):
                if entry.name.startswith(TEMP_PREFIX) and entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    removed += 1
        return removed


def make_temp_file(storage: Storage) -> tuple[int, Path]:
    """Create a private (0600) temp file in ``storage.temp_dir()``: an open fd and its path.

    Synchronous on purpose: the caller puts its ``try``/``finally`` right after, with no
    ``await`` in between where a cancellation could strand the file.
    """
    fd, name = tempfile.mkstemp(dir=storage.temp_dir(), prefix=TEMP_PREFIX)
    return fd, Path(name)


def discard(path: Path) -> None:
    """Remove a temp file if it is still there; synchronous so it cannot be cancelled."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not every platform can open a directory: durability is best effort
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
