"""Where upload bytes live, behind a small interface (local directory now, S3 later)."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Protocol

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def check_digest(sha256: str) -> str:
    if not _SHA256.match(sha256):
        raise ValueError("not a sha256 hex digest")
    return sha256


class Storage(Protocol):
    def temp_file(self) -> tuple[IO[bytes], Path]: ...

    async def put(self, temp_path: Path, sha256: str) -> None: ...

    async def exists(self, sha256: str) -> bool: ...

    def path(self, sha256: str) -> Path: ...

    async def delete(self, sha256: str) -> None: ...


class LocalStorage:
    """Files named by their sha256 under ``root``; client names never touch the disk."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.tmp = self.root / ".tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        digest = check_digest(sha256)
        return self.root / digest[:2] / digest[2:4] / digest

    def temp_file(self) -> tuple[IO[bytes], Path]:
        """A temp file on the same filesystem, so moving it into place is an atomic rename."""
        handle = tempfile.NamedTemporaryFile(dir=self.tmp, prefix="up-", delete=False)  # noqa: SIM115
        return handle, Path(handle.name)

    async def put(self, temp_path: Path, sha256: str) -> None:
        target = self.path(sha256)

        def move() -> None:
            if target.exists():  # the same bytes are stored once
                temp_path.unlink(missing_ok=True)
                return
            target.parent.mkdir(parents=True, exist_ok=True)
            with temp_path.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temp_path, target)

        await asyncio.to_thread(move)

    async def exists(self, sha256: str) -> bool:
        return await asyncio.to_thread(self.path(sha256).exists)

    async def delete(self, sha256: str) -> None:
        await asyncio.to_thread(self.path(sha256).unlink, True)
