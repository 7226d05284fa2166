"""Reading an import file one record at a time, never whole.

CSV: UTF-8 with or without a BOM, ``,`` or ``;`` between cells (whichever the header line
uses more), RFC 4180 quoting, parsed by the standard ``csv`` module in strict mode; the first
physical line is the header. JSON Lines: one object per line, keys named like the CSV
columns. Line numbers are physical lines counted from 1 (a CSV header is line 1), so a
quoted cell spanning lines moves the numbers on as an editor shows them.

Nothing aborts the reading: a malformed record, a line longer than ``MAX_LINE`` characters
(skipped to its end in pieces, so memory stays bounded) or bad JSON becomes a ``Record``
with ``problems``, and reading carries on with the next line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import TextIO

import orjson

from db.errors import ErrorCode
from db.imports.columns import SPECS, HeaderError, normalise, read_header, unguard
from db.imports.rows import Record, RowError
from db.models import ImportKind

MAX_LINE = 4 * 1024 * 1024
# Process-wide: the csv module's default (128 KiB per field) is below the lines we accept.
csv.field_size_limit(MAX_LINE)


class Format(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


@dataclass(frozen=True, slots=True)
class Shape:
    """What a file's first line announces: its format and, for CSV, its columns."""

    format: Format
    delimiter: str = ","
    # CSV: the column at each position (None: a column the import ignores).
    columns: tuple[str | None, ...] = ()
    # Column -> the header's own spelling, which row errors name.
    labels: dict[str, str] = field(default_factory=dict)

    def label(self, column: str | None) -> str | None:
        return None if column is None else self.labels.get(column, column)


def _strip_line(line: str) -> str:
    return line.removeprefix("\ufeff").rstrip("\r\n")


def header_of(kind: ImportKind, first_line: str) -> Shape:
    """The shape of a file from its first line; HeaderError when the import cannot use it."""
    text = _strip_line(first_line)
    if text.lstrip().startswith("{"):
        try:
            first = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise HeaderError("Line 1 looks like JSON Lines but is not a JSON object") from None
        if not isinstance(first, dict) or not all(isinstance(key, str) for key in first):
            raise HeaderError("Line 1 looks like JSON Lines but is not a JSON object")
        read_header(kind, list(first))
        return Shape(Format.JSONL)
    if not text.strip():
        raise HeaderError("The first line is empty: it must be the header row")
    delimiter = ";" if text.count(";") > text.count(",") else ","
    try:
        names = next(csv.reader([text], delimiter=delimiter, strict=True))
    except csv.Error as error:
        raise HeaderError(f"The header row is not valid CSV: {error}") from None
    columns = read_header(kind, names)
    labels = {c: name.strip() for c, name in zip(columns, names, strict=True) if c is not None}
    return Shape(Format.CSV, delimiter, tuple(columns), labels)


def _overlong(line: int) -> Record:
    message = f"Line {line} is longer than {MAX_LINE:,} characters"
    return Record(line, {}, [RowError(line, None, ErrorCode.INVALID, message)])


class _Lines:
    """Physical lines with their endings (\\n, \\r\\n or \\r), each at most MAX_LINE
    characters; a longer one is read to its end in pieces and stands as an empty line,
    its number kept in ``overlong``."""

    def __init__(self, handle: TextIO) -> None:
        self.handle = handle
        self.number = 0
        self.overlong: list[int] = []

    def __iter__(self) -> Iterator[str]:
        limit = MAX_LINE + 2  # room for the ending of a line exactly MAX_LINE long
        while line := self.handle.readline(limit):
            self.number += 1
            if len(line) == limit and not line.endswith("\n"):
                self._skip_rest(line)
                self.overlong.append(self.number)
                yield "\n"
            else:
                yield line

    def _skip_rest(self, piece: str) -> None:
        while piece and not piece.endswith(("\n", "\r")):
            piece = self.handle.readline(64 * 1024)
        if piece.endswith("\r"):
            # readline stopped at the piece's end: a \n right after still belongs to it.
            mark = self.handle.tell()
            if self.handle.read(1) != "\n":
                self.handle.seek(mark)

    def drain(self, upto: int) -> Iterator[Record]:
        while self.overlong and self.overlong[0] <= upto:
            yield _overlong(self.overlong.pop(0))


class RecordReader:
    """The records of one import file; a context manager that closes the file."""

    def __init__(self, path: Path, kind: ImportKind) -> None:
        self.kind = kind
        self._handle = path.open(encoding="utf-8-sig", newline="")
        try:
            self._lines = _Lines(self._handle)
            self._iter = iter(self._lines)
            self.shape = header_of(kind, next(self._iter, ""))
        except BaseException:
            self._handle.close()
            raise

    def __enter__(self) -> RecordReader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._handle.close()

    def __iter__(self) -> Iterator[Record]:
        if self.shape.format is Format.JSONL:
            return self._jsonl()
        return self._csv()

    def _csv(self) -> Iterator[Record]:
        shape, lines = self.shape, self._lines
        reader = csv.reader(self._iter, delimiter=shape.delimiter, strict=True)
        width = len(shape.columns)
        previous = 1  # the header
        while True:
            try:
                row = next(reader)
            except StopIteration:
                yield from lines.drain(lines.number)
                return
            except csv.Error as error:
                line, previous = previous + 1, reader.line_num + 1
                yield from lines.drain(previous)
                message = f"Malformed CSV: {error}"
                yield Record(line, {}, [RowError(line, None, ErrorCode.INVALID, message)])
                continue
            line, previous = previous + 1, reader.line_num + 1
            yield from lines.drain(previous)
            if not any(cell.strip() for cell in row):
                continue  # a blank line, or one of only delimiters (a spreadsheet's tail)
            if len(row) != width:
                if len(row) < width or any(cell.strip() for cell in row[width:]):
                    message = f"The row has {len(row)} fields, the header has {width}"
                    yield Record(line, {}, [RowError(line, None, ErrorCode.INVALID, message)])
                    continue
            cells = {
                column: unguard(cell)
                for column, cell in zip(shape.columns, row, strict=False)
                if column is not None
            }
            yield Record(line, cells)

    def _jsonl(self) -> Iterator[Record]:
        spec = SPECS[self.kind]
        lines = self._lines
        # The first line was read for the header: parse it again as the first record.
        self._handle.seek(0)
        lines.number = 0
        for text in self._iter:
            number = lines.number
            yield from lines.drain(number)
            if not text.strip():
                continue
            try:
                value = orjson.loads(text.removeprefix("\ufeff"))
            except orjson.JSONDecodeError as error:
                message = f"Not valid JSON: {error}"
                yield Record(number, {}, [RowError(number, None, ErrorCode.INVALID, message)])
                continue
            if not isinstance(value, dict):
                message = "Each line must be a JSON object"
                yield Record(number, {}, [RowError(number, None, ErrorCode.INVALID, message)])
                continue
            cells, problems = {}, []
            for key, cell in value.items():
                name = normalise(key)
                if not spec.known(name):
                    problems.append(
                        RowError(number, key, ErrorCode.INVALID, f"Unknown column {key!r}")
                    )
                elif (column := spec.canonical(name)) is not None:
                    cells[column] = cell
            yield Record(number, cells, problems)


class TooManyRows(Exception):
    """The file has more data rows than the import takes."""


def count_records(path: Path, kind: ImportKind, limit: int) -> int:
    """Data rows in the file; TooManyRows as soon as there are more than ``limit``."""
    rows = 0
    with RecordReader(path, kind) as reader:
        for _ in reader:
            rows += 1
            if rows > limit:
                raise TooManyRows(f"The file has more than {limit:,} rows")
    return rows
