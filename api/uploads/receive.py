"""Receive an upload: the size limit is enforced while the body streams in."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import anyio
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request

from api.uploads.images import ImageTooLarge, UnsupportedImage, sniff_image
from api.uploads.storage import Storage
from db import uploads
from db.errors import ErrorCode, ServiceError
from db.models import Image
from db.session import unit_of_work

MULTIPART_OVERHEAD = 64 * 1024
CHUNK = 64 * 1024


class UploadError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@dataclass(frozen=True, slots=True)
class StoredUpload:
    sha256: str
    size: int
    content_type: str
    width: int
    height: int


class _Sink:
    """Hash and count the ``file`` part into a temp file, refusing past the limit."""

    def __init__(self, handle: IO[bytes], max_bytes: int) -> None:
        self.handle = handle
        self.max_bytes = max_bytes
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise UploadError(413, f"The file is larger than {self.max_bytes} bytes")
        self.digest.update(data)
        self.handle.write(data)


class _PartState:
    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.header = b""
        self.value = b""
        self.in_file = False
        self.found = False


async def _finish(
    sink: _Sink, temp: Path, storage: Storage, max_pixels: int
) -> StoredUpload:
    sink.handle.close()
    if sink.size == 0:
        raise UploadError(400, "The file is empty")
    try:
        info = await anyio.to_thread.run_sync(sniff_image, temp, max_pixels)
    except UnsupportedImage as exc:
        raise UploadError(415, str(exc)) from None
    except ImageTooLarge as exc:
        raise UploadError(413, f"Image dimensions refused: {exc}") from None
    sha = sink.digest.hexdigest()
    await storage.put(temp, sha)
    return StoredUpload(sha, sink.size, info.content_type, info.width, info.height)


async def receive_upload(
    request: Request, storage: Storage, max_bytes: int, max_pixels: int
) -> StoredUpload:
    """Stream the multipart field ``file`` to storage; 413/415/400 as ``UploadError``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise UploadError(400, "Malformed Content-Length")
        if int(declared) > max_bytes + MULTIPART_OVERHEAD:
            raise UploadError(413, f"The file is larger than {max_bytes} bytes")
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UploadError(415, "Send multipart/form-data with a `file` field")

    handle, temp = storage.temp_file()
    sink = _Sink(handle, max_bytes)
    state = _PartState()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state.header += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state.value += data[start:end]

    def on_header_end() -> None:
        state.headers[state.header.lower()] = state.value
        state.header, state.value = b"", b""

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(state.headers.get(b"content-disposition", b""))
        state.in_file = disposition.get(b"name") == b"file" and not state.found
        state.found = state.found or state.in_file

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state.in_file:
            sink.write(data[start:end])

    def on_part_end() -> None:
        state.in_file = False
        state.headers.clear()

    parser = MultipartParser(
        boundary,
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        try:
            async for chunk in request.stream():
                parser.write(chunk)
            parser.finalize()
        except ClientDisconnect:
            raise UploadError(400, "The client went away mid-upload") from None
        except UploadError:
            raise
        except Exception as exc:  # malformed multipart
            raise UploadError(400, "Malformed multipart body") from exc
        if not state.found:
            raise UploadError(400, "No `file` field in the form")
        return await _finish(sink, temp, storage, max_pixels)
    finally:
        # On success the file was moved into place; on any failure, even cancellation
        # (a dropped connection), nothing partial is left behind.
        with contextlib.suppress(OSError):
            handle.close()
        temp.unlink(missing_ok=True)


async def store_upload_file(
    upload: UploadFile, storage: Storage, max_bytes: int, max_pixels: int
) -> StoredUpload:
    """The GraphQL multipart path: the same limit and the same checks on a spooled file."""
    handle, temp = storage.temp_file()
    sink = _Sink(handle, max_bytes)
    try:
        while chunk := await upload.read(CHUNK):
            sink.write(chunk)
        return await _finish(sink, temp, storage, max_pixels)
    finally:
        with contextlib.suppress(OSError):
            handle.close()
        temp.unlink(missing_ok=True)


class GraphQLImageUploads:
    """The ``uploadImage`` mutation's store: the same checks as ``POST /uploads``."""

    def __init__(self, storage: Storage, write_factory: Any, max_bytes: int,
                 max_pixels: int) -> None:
        self.storage = storage
        self.write_factory = write_factory
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels

    async def store(self, upload: Any, user_id: int) -> Image:
        if not isinstance(upload, UploadFile):
            raise ServiceError(ErrorCode.INVALID, "Expected a file", ["file"])
        try:
            stored = await store_upload_file(upload, self.storage, self.max_bytes,
                                             self.max_pixels)
        except UploadError as error:
            raise ServiceError(ErrorCode.INVALID, error.message, ["file"]) from None
        async with unit_of_work(self.write_factory) as session:
            return await uploads.record_image(
                session, sha256=stored.sha256, content_type=stored.content_type,
                size=stored.size, width=stored.width, height=stored.height,
                uploaded_by=user_id,
            )
