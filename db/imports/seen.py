"""The keys one pass over a file has met, kept on disk so memory stays flat in file size.

A million SKUs in a Python set would cost ~100 MB; an SQLite file beside the upload costs a
few pages of cache. Synchronous (the standard ``sqlite3``): the pass calls it from its
reading thread, one call at a time.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

# Below SQLite's default limit on host parameters in one statement.
_CHUNK = 500


class SeenKeys:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.unlink(missing_ok=True)  # a pass always starts from an empty index
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # A scratch file rebuilt by every pass: nothing to keep safe across a crash.
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID")

    def first_lines(self, keyed: Sequence[tuple[str, int]]) -> dict[int, int]:
        """Record the keys; for each line whose key came before: {line: the first line}."""
        repeats: dict[int, int] = {}
        batch: dict[str, int] = {}
        for key, line in keyed:
            if key in batch:
                repeats[line] = batch[key]
            else:
                batch[key] = line
        keys = list(batch)
        earlier: dict[str, int] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            earlier.update(
                self._db.execute(
                    f"SELECT key, line FROM seen WHERE key IN ({marks})", chunk
                ).fetchall()
            )
        for key, first in earlier.items():
            repeats[batch[key]] = first
        # Lines repeating a key within this batch point at its first line, wherever that was.
        for line, first in list(repeats.items()):
            repeats[line] = repeats.get(first, first)
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT INTO seen (key, line) VALUES (?, ?)",
            [(key, line) for key, line in batch.items() if key not in earlier],
        )
        self._db.execute("COMMIT")
        return repeats

    def close(self) -> None:
        self._db.close()
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
