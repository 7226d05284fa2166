"""Receive an image upload: the size limit is enforced while the body streams in.

``receive_upload`` (``POST /uploads``) parses multipart/form-data incrementally from the ASGI
stream with python_multipart's ``MultipartParser`` and writes the ``file`` part into a temp
file under ``storage.temp_dir()`` while hashing and counting it: nothing is buffered beyond
one network chunk, and the upload is refused (413) the moment the file passes the limit,
without reading the rest of the body. ``store_upload_file`` (the GraphQL ``Upload`` scalar,
whose body the framework already spooled) goes through the same sink, image check and
publication. On every failure path, a cancelled task and a client that went away included,
the temp file is removed; on success it has been renamed into storage. The multipart
streaming itself (``stream_file_part``) takes any ``PartSink``: the import upload uses it
with its own checks.

Refusals raise ``UploadError`` (``status_code``, ``message``) for the route to map:
  400 ``BadUpload``: malformed Content-Length or multipart body, no ``file`` part or more
      than one, a body that ends early, a client that went away (``ClientGone``);
  413 ``UploadTooLarge``: Content-Length over ``max_bytes`` + 64 KiB of multipart overhead,
      a file over ``max_bytes`` (streamed), or an image over ``max_pixels`` pixels;
  415 ``UnsupportedUpload``: not multipart/form-data at all, or a file that is not a PNG,
      JPEG, WebP or GIF (decided from its bytes; an empty file included).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Protocol

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import Headers, UploadFile
from starlette.requests import ClientDisconnect, Request

from api.uploads.images import ImageTooLarge, UnsupportedImage, sniff_image
from api.uploads.storage import Storage, discard, make_temp_file
from db.uploads import ImageFile

if TYPE_CHECKING:
    from pathlib import Path

    from python_multipart.multipart import MultipartCallbacks


# Room for the part headers, boundaries and small extra fields on top of the file itself.
MULTIPART_OVERHEAD = 64 * 1024
CHUNK = 64 * 1024
# A form carrying one file needs a handful of parts; thousands of empty ones are an attack.
MAX_PARTS = 16
# Decoding is CPU- and memory-heavy (a 40 Mpx image is ~120 MB of pixels): a few at a time,
# rather than as many as the default thread pool (40) would allow.
SNIFF_CONCURRENCY = 4
FILE_FIELD = b"file"
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also accepts "²"
_MAX_DIGITS = 18  # longer is certainly too large; and int() of huge strings is slow


class UploadError(Exception):
    """A refused upload; routes map ``status_code`` and ``message`` to the HTTP response."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class BadUpload(UploadError):
    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class ClientGone(BadUpload):
    """The connection dropped mid-body; nobody reads the answer, but it must not leak."""

    def __init__(self) -> None:
        super().__init__("The client went away mid-upload")


class UploadTooLarge(UploadError):
    def __init__(self, message: str) -> None:
        super().__init__(413, message)


class UnsupportedUpload(UploadError):
    def __init__(self, message: str) -> None:
        super().__init__(415, message)


@dataclass(frozen=True, slots=True)
class StoredUpload:
    sha256: str
    size: int
    content_type: str
    width: int
    height: int

    def image_file(self) -> ImageFile:
        """What the database records of it."""
        return ImageFile(self.sha256, self.content_type, self.size, self.width, self.height)


class BoundedSink:
    """A file part's bytes: counted in the (synchronous) parser callbacks against
    ``max_bytes``, handed to ``_write`` in batches between awaits."""

    size: int
    max_bytes: int
    pending: list[bytes]

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_bytes:  # refuse now: the rest of the body is never read
            raise UploadTooLarge(f"The file is larger than {self.max_bytes} bytes")
        self.pending.append(data)

    async def flush(self) -> None:
        if not self.pending:
            return
        data = b"".join(self.pending)
        self.pending.clear()
        # Hashing and disk writes off the event loop (hashlib releases the GIL). Not abandoned
        # on cancellation, so the file is closed and removed only after the write returns.
        await anyio.to_thread.run_sync(self._write, data)

    def _write(self, data: bytes) -> None:
        raise NotImplementedError


class _Sink(BoundedSink):
    """Hashes and writes an image upload."""

    def __init__(self, handle: IO[bytes], max_bytes: int) -> None:
        self.handle = handle
        self.max_bytes = max_bytes
        self.digest = hashlib.sha256()
        self.size = 0
        self.pending: list[bytes] = []

    def _write(self, data: bytes) -> None:
        self.digest.update(data)
        self.handle.write(data)


_sniff_limiter: RunVar[anyio.CapacityLimiter] = RunVar("stockroom_sniff_limiter")


def _limiter() -> anyio.CapacityLimiter:
    # One per event loop (RunVar): a limiter must not be shared between loops.
    try:
        return _sniff_limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(SNIFF_CONCURRENCY)
        _sniff_limiter.set(limiter)
        return limiter


async def _stage(
    storage: Storage, max_bytes: int, max_pixels: int, fill: Callable[[_Sink], Awaitable[None]]
) -> StoredUpload:
    """Run ``fill`` into a fresh temp file, check the image, publish it by its digest."""
    # Created synchronously, with no await before the ``try`` that removes it.
    fd, temp = make_temp_file(storage)
    try:
        with os.fdopen(fd, "wb") as handle:
            sink = _Sink(handle, max_bytes)
            await fill(sink)
            await sink.flush()
        return await _check_and_publish(temp, sink, storage, max_pixels)
    finally:
        # On success the file was renamed into storage (or was a duplicate); on any failure,
        # CancelledError and ClientDisconnect included, nothing is left. Synchronous, so it
        # cannot itself be cancelled.
        discard(temp)


async def _check_and_publish(
    temp: Path, sink: _Sink, storage: Storage, max_pixels: int
) -> StoredUpload:
    if sink.size == 0:
        raise UnsupportedUpload("The file is empty, not an image")
    try:
        info = await anyio.to_thread.run_sync(
            sniff_image, temp, max_pixels, limiter=_limiter()
        )
    except UnsupportedImage as exc:
        raise UnsupportedUpload(f"The file is {exc.message}") from None
    except ImageTooLarge as exc:
        raise UploadTooLarge(f"The image has too many pixels: {exc.message}") from None
    sha256 = sink.digest.hexdigest()
    await storage.put_file(temp, sha256)  # a no-op when these bytes are already stored
    return StoredUpload(sha256, sink.size, info.content_type, info.width, info.height)


class _Form:
    """MultipartParser callbacks: route the ``file`` part's bytes into the sink."""

    def __init__(self, sink: PartSink) -> None:
        self.sink = sink
        self.parts = 0
        self.headers: dict[bytes, bytes] = {}
        self.field = bytearray()
        self.value = bytearray()
        self.in_file = False
        self.seen = False  # a ``file`` part began
        self.complete = False  # ... and its closing boundary arrived
        self.ended = False  # the final delimiter of the whole body arrived

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise BadUpload(f"More than {MAX_PARTS} form fields")
        self.headers.clear()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.field += data[start:end]  # the parser caps header size and count per part

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[bytes(self.field).strip().lower()] = bytes(self.value).strip()
        self.field.clear()
        self.value.clear()

    def on_headers_finished(self) -> None:
        kind, params = parse_options_header(self.headers.get(b"content-disposition", b""))
        # The part's filename and Content-Type are ignored: only the name picks the part.
        if kind == b"form-data" and params.get(b"name") == FILE_FIELD:
            if self.seen:  # two files: refuse rather than guess which one is meant
                raise BadUpload("Send exactly one `file` field")
            self.seen = self.in_file = True

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.sink.feed(data[start:end])

    def on_part_end(self) -> None:
        if self.in_file:
            self.in_file = False
            self.complete = True

    def on_end(self) -> None:
        self.ended = True


def check_multipart_headers(headers: Headers, max_bytes: int) -> bytes:
    """Refuse what the headers already give away; return the multipart boundary."""
    declared = headers.get("content-length")
    if declared is not None:
        declared = declared.strip()
        if _DIGITS.fullmatch(declared) is None:
            raise BadUpload("Malformed Content-Length")
        if len(declared) > _MAX_DIGITS or int(declared) > max_bytes + MULTIPART_OVERHEAD:
            raise UploadTooLarge(f"The file is larger than {max_bytes} bytes")
    content_type, params = parse_options_header(headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        raise UnsupportedUpload("Send multipart/form-data with a `file` field")
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadUpload("multipart/form-data without a boundary")
    return boundary


class PartSink(Protocol):
    """Where ``stream_file_part`` puts the ``file`` part's bytes."""

    def feed(self, data: bytes) -> None:
        """Take bytes from the parser callback (synchronous; may raise UploadError)."""
        ...

    async def flush(self) -> None:
        """Write what was fed, between network chunks."""
        ...


async def stream_file_part(
    request: Request, sink: PartSink, boundary: bytes, max_bytes: int
) -> None:
    """Parse the multipart body as it arrives and feed the ``file`` part to ``sink``.

    Reading stops (413) once the body passes ``max_bytes`` plus the multipart overhead,
    whatever Content-Length said; refusals raise ``UploadError``.
    """
    max_body = max_bytes + MULTIPART_OVERHEAD
    form = _Form(sink)
    try:
        parser = MultipartParser(boundary, form.callbacks())
    except FormParserError:
        raise BadUpload("Malformed multipart boundary") from None
    received = 0
    try:
        # aclosing: leaving early (413, a bad part) stops reading the body right there.
        async with aclosing(request.stream()) as body:
            async for chunk in body:
                received += len(chunk)
                if received > max_body:  # chunked (no Content-Length), or lying about it
                    raise UploadTooLarge(f"The file is larger than {max_bytes} bytes")
                parser.write(chunk)
                await sink.flush()
                if form.ended:
                    break  # an epilogue after the final delimiter is not worth reading
    except ClientDisconnect:
        raise ClientGone() from None
    except FormParserError:
        raise BadUpload("Malformed multipart body") from None
    if not form.seen:
        raise BadUpload("No `file` field in the form")
    if not (form.complete and form.ended):
        # python_multipart's finalize() does not check this: a cut-off body must not pass.
        raise BadUpload("The multipart body ended early")


async def receive_upload(
    request: Request, storage: Storage, max_bytes: int, max_pixels: int
) -> StoredUpload:
    """Stream the multipart field ``file`` into storage; refusals raise ``UploadError``."""
    boundary = check_multipart_headers(request.headers, max_bytes)

    async def fill(sink: _Sink) -> None:
        await stream_file_part(request, sink, boundary, max_bytes)

    return await _stage(storage, max_bytes, max_pixels, fill)


async def store_upload_file(
    upload: UploadFile, storage: Storage, max_bytes: int, max_pixels: int
) -> StoredUpload:
    """The GraphQL ``Upload`` path: an already-spooled file, read in chunks under the same
    limit, through the same checks and clean-up as ``receive_upload``."""
    if upload.size is not None and upload.size > max_bytes:
        raise UploadTooLarge(f"The file is larger than {max_bytes} bytes")

    async def fill(sink: _Sink) -> None:
        await upload.seek(0)
        while chunk := await upload.read(CHUNK):
            sink.feed(chunk)
            await sink.flush()

    return await _stage(storage, max_bytes, max_pixels, fill)
