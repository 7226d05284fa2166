"""Receive an import file: streamed to disk under the upload directory, checked as it comes.

The multipart ``file`` part is written to a staging file (``ImportFiles.new_temp``) while it
is hashed, counted and decoded incrementally as UTF-8, so a bad file is refused without
reading it whole and a big one never sits in memory. Refusals raise ``UploadError``:

  400 malformed multipart (``api.uploads.receive``);
  413 over ``max_bytes`` (declared or streamed: reading stops at the limit);
  415 not UTF-8 text: a UTF-16/32 byte-order mark, a NUL byte, or an invalid UTF-8
      sequence, naming the byte offset and line (``NotText``);
  422 nothing to import or an unusable header: empty, header only, missing, unknown or
      repeated columns (``Unusable``, which names them).
"""

from __future__ import annotations

import codecs
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from starlette.requests import Request

from api.uploads.receive import (
    BoundedSink,
    UploadError,
    check_multipart_headers,
    stream_file_part,
)
from db.imports import Format, HeaderError, ImportFiles, Shape, header_of
from db.models import ImportKind

# A header of thousands of columns still fits; a "header" longer than this is not one.
MAX_HEADER = 1024 * 1024
_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
SAVE_AS = "save it as CSV UTF-8 (or JSON Lines in UTF-8)"


class NotText(UploadError):
    """415: the bytes are not UTF-8 text; says where the first bad byte is."""

    def __init__(self, message: str, offset: int, line: int) -> None:
        super().__init__(415, f"{message} at byte offset {offset} (line {line}): {SAVE_AS}")
        self.offset = offset
        self.line = line

    def details(self) -> dict[str, Any]:
        return {"byteOffset": self.offset, "line": self.line}


class Unusable(UploadError):
    """422: valid text the import cannot use; names the columns at fault."""

    def __init__(self, message: str, header: HeaderError | None = None) -> None:
        super().__init__(422, message)
        self.header = header

    def details(self) -> dict[str, Any]:
        if self.header is None:
            return {}
        return {"missing": self.header.missing, "unknown": self.header.unknown,
                "repeated": self.header.repeated}


@dataclass(frozen=True, slots=True)
class StagedImport:
    """A received file waiting for its job (the caller adopts or discards ``temp``)."""

    temp: Path
    sha256: str
    size: int
    shape: Shape


class _TextSink(BoundedSink):
    """Counts in the parser callbacks; hashes, writes and checks the text in a thread."""

    def __init__(self, handle: IO[bytes], max_bytes: int, kind: ImportKind) -> None:
        self.handle = handle
        self.max_bytes = max_bytes
        self.kind = kind
        self.digest = hashlib.sha256()
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.size = 0  # bytes fed
        self.written = 0  # bytes checked and written
        self.newlines = 0
        self.start = b""  # the first bytes, for the byte-order marks
        self.head: list[str] = []  # the header line until it ends
        self.head_length = 0
        self.shape: Shape | None = None
        self.rest = ""  # text after the header until a data row shows
        self.has_rows = False
        self.pending: list[bytes] = []

    def _refuse(self, message: str, at: int, data: bytes) -> NotText:
        line = self.newlines + data.count(b"\n", 0, max(0, at - self.written)) + 1
        return NotText(message, at, line)

    def _write(self, data: bytes) -> None:
        if len(self.start) < 4:
            self.start += data[: 4 - len(self.start)]
            for bom, name in _BOMS:
                if self.start.startswith(bom):
                    raise NotText(f"The file is {name}, not UTF-8", 0, 1)
        nul = data.find(b"\x00")
        if nul >= 0:
            raise self._refuse("A NUL byte (not text, or UTF-16)", self.written + nul, data)
        buffered = len(self.decoder.getstate()[0])
        try:
            text = self.decoder.decode(data)
        except UnicodeDecodeError as error:
            at = self.written - buffered + error.start
            raise self._refuse(f"Invalid UTF-8 (byte 0x{error.object[error.start]:02X})", at,
                               data) from None
        self.digest.update(data)
        self.handle.write(data)
        self.written += len(data)
        self.newlines += data.count(b"\n")
        self._read_text(text)

    def _read_text(self, text: str) -> None:
        if self.shape is None:
            ends = [i for i in (text.find("\n"), text.find("\r")) if i >= 0]
            if not ends:
                self.head.append(text)
                self.head_length += len(text)
                if self.head_length > MAX_HEADER:
                    raise Unusable(f"The first line is longer than {MAX_HEADER:,} characters: "
                                   "it cannot be a header row")
                return
            cut = min(ends)
            self.head.append(text[:cut])
            text = text[cut:]
            self._header()
        if not self.has_rows:
            assert self.shape is not None
            blank = " \t\r\n\f\v\ufeff" + (self.shape.delimiter + '"' if self.shape.format
                                            is Format.CSV else "")
            self.has_rows = bool(text.strip(blank))

    def _header(self) -> None:
        line = "".join(self.head)
        if not line.strip("\ufeff \t"):
            raise Unusable("The first line is empty: it must be the header row")
        try:
            self.shape = header_of(self.kind, line)
        except HeaderError as error:
            raise Unusable(error.message, error) from None
        # In JSON Lines the first line is a row itself.
        self.has_rows = self.shape.format is Format.JSONL

    def finish(self) -> Shape:
        """The last checks once the file is complete."""
        try:
            tail = self.decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:
            at = self.written - len(error.object) + error.start
            raise self._refuse("The file ends inside a UTF-8 sequence", at, b"") from None
        self._read_text(tail)
        if self.shape is None:
            if not "".join(self.head).strip("\ufeff \t\r\n"):
                raise Unusable("The file is empty: send a header row and at least one row")
            self._header()
        assert self.shape is not None
        if not self.has_rows:
            raise Unusable("The file has a header row but no data rows")
        return self.shape


async def receive_import(
    request: Request, files: ImportFiles, max_bytes: int, kind: ImportKind
) -> StagedImport:
    """Stream the multipart field ``file`` to a staging file; refusals raise UploadError."""
    boundary = check_multipart_headers(request.headers, max_bytes)
    # Created synchronously, with no await before the ``try`` that removes it on failure.
    fd, temp = files.new_temp()
    try:
        with os.fdopen(fd, "wb") as handle:
            sink = _TextSink(handle, max_bytes, kind)
            await stream_file_part(request, sink, boundary, max_bytes)
            await sink.flush()
            shape = sink.finish()
        return StagedImport(temp, sink.digest.hexdigest(), sink.size, shape)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
