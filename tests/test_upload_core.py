"""The upload core without the application: storage, image sniffing, streaming receive.

The HTTP-level tests drive a tiny Starlette app (one route calling ``receive_upload``) with
httpx over ASGI, or call it as a raw ASGI app when the test must control the body stream
itself (how much of it was read, a disconnect, a cancelled request).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import struct
import warnings
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageFile
from starlette.applications import Starlette
from starlette.datastructures import Headers, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.uploads.images import ImageTooLarge, UnsupportedImage, sniff_image
from api.uploads.receive import (
    MULTIPART_OVERHEAD,
    UploadError,
    receive_upload,
    store_upload_file,
)
from api.uploads.storage import InvalidDigest, LocalStorage, check_digest, make_temp_file
from tests.images import image_bytes, png_declaring, png_of

MAX_BYTES = 200_000
MAX_PIXELS = 4_000_000
BOUNDARY = "testboundary1234"
FORMATS = [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"),
           ("GIF", "image/gif")]


# --------------------------------------------------------------------------- helpers


RGB_32x24 = struct.pack(">IIBBBBB", 32, 24, 8, 2, 0, 0, 0)


HOSTILE = {
    "html-as-png": b"<html><script>alert(1)</script></html>",
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "text": b"just some text",
    "truncated-png": image_bytes("PNG")[:-30],
    "truncated-jpeg": image_bytes("JPEG", (64, 64))[:-200],
    "corrupt-png": image_bytes("PNG")[:40] + b"\xff" * 20 + image_bytes("PNG")[60:],
    # Valid CRCs, so verify() passes: only decoding every pixel (load()) catches these.
    "png-short-pixel-data": png_of(RGB_32x24, zlib.compress(b"\x00" * 10)),
    "png-garbage-pixel-data": png_of(RGB_32x24, b"\x78\x9c" + b"\xde\xad\xbe\xef" * 20),
    "bmp": image_bytes("BMP"),
    "tiff": image_bytes("TIFF"),
}


def part(name: bytes, content: bytes, filename: bytes | None = b"x.png",
         content_type: bytes = b"image/png") -> bytes:
    disposition = b'form-data; name="' + name + b'"'
    if filename is not None:
        disposition += b'; filename="' + filename + b'"'
    return (b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: " + disposition
            + b"\r\nContent-Type: " + content_type + b"\r\n\r\n" + content + b"\r\n")


def form(*parts: bytes) -> bytes:
    return b"".join(parts) + b"--" + BOUNDARY.encode() + b"--\r\n"


def files_under(root: Path) -> list[Path]:
    """Every file below ``root``, hidden directories (``.tmp``) included."""
    found = []
    for directory, _, names in os.walk(root):
        found.extend(Path(directory, name) for name in names)
    return sorted(found)


def make_app(storage: LocalStorage) -> Starlette:
    async def upload(request: Request) -> JSONResponse:
        try:
            stored = await receive_upload(request, storage, MAX_BYTES, MAX_PIXELS)
        except UploadError as error:
            return JSONResponse({"detail": error.message}, status_code=error.status_code)
        return JSONResponse(asdict(stored), status_code=201)

    return Starlette(routes=[Route("/uploads", upload, methods=["POST"])])


class AsgiCall:
    """Call the app as a server would, with a body stream the test controls."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.sent: list[dict[str, Any]] = []
        self.read = 0  # body bytes handed to the app
        self.receives = 0

    async def __call__(self, chunks: list[bytes], headers: dict[str, str],
                       end: str = "complete", on_exhausted: Callable[[], Any] | None = None
                       ) -> None:
        pending = list(chunks)

        async def receive() -> dict[str, Any]:
            self.receives += 1
            if pending:
                body = pending.pop(0)
                self.read += len(body)
                more = bool(pending) or end != "complete"
                return {"type": "http.request", "body": body, "more_body": more}
            if end == "disconnect":
                return {"type": "http.disconnect"}
            if on_exhausted is not None:
                on_exhausted()
            await asyncio.Event().wait()  # "hang": the client stalls forever
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            self.sent.append(message)

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/uploads", "raw_path": b"/uploads",
            "query_string": b"", "root_path": "", "server": ("test", 80),
            "client": ("127.0.0.1", 1234),
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                        for k, v in headers.items()],
        }
        await self.app(scope, receive, send)

    @property
    def status(self) -> int:
        return next(m["status"] for m in self.sent if m["type"] == "http.response.start")


def multipart_headers(body: bytes | None = None) -> dict[str, str]:
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    if body is not None:
        headers["content-length"] = str(len(body))
    return headers


def split(body: bytes, size: int = 16 * 1024) -> list[bytes]:
    return [body[i:i + size] for i in range(0, len(body), size)]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "up"


@pytest.fixture
def storage(root: Path) -> LocalStorage:
    return LocalStorage(root)


@pytest.fixture
def app(storage: LocalStorage) -> Starlette:
    return make_app(storage)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def post(client: httpx.AsyncClient, body: bytes,
               headers: dict[str, str] | None = None) -> httpx.Response:
    return await client.post("/uploads", content=body,
                             headers=headers or multipart_headers())


# --------------------------------------------------------------------------- sniffing


@pytest.mark.parametrize(("fmt", "mime"), FORMATS)
def test_sniff_accepts_the_four_formats(tmp_path: Path, fmt: str, mime: str) -> None:
    path = tmp_path / "upload.txt"  # the name says nothing; the content decides
    path.write_bytes(image_bytes(fmt))
    info = sniff_image(path, MAX_PIXELS)
    assert (info.content_type, info.width, info.height, info.format) == (mime, 32, 24, fmt)


def test_sniff_treats_multi_picture_jpeg_as_jpeg(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (10, 8)).save(buffer, "MPO", save_all=True,
                                   append_images=[Image.new("RGB", (10, 8))])
    path = tmp_path / "camera"
    path.write_bytes(buffer.getvalue())
    assert sniff_image(path, MAX_PIXELS).content_type == "image/jpeg"


@pytest.mark.parametrize("content", list(HOSTILE.values()), ids=list(HOSTILE))
def test_sniff_refuses_what_is_not_a_sound_image(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(content)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(UnsupportedImage):
        sniff_image(path, MAX_PIXELS)


@pytest.mark.parametrize("side", [30_000, 3_000], ids=["past-pillow-limit", "past-ours"])
def test_sniff_refuses_a_bomb_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              side: int) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_declaring(side, side))
    assert path.stat().st_size < 10_000
    loads: list[object] = []
    original = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile) -> Any:
        loads.append(self)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    with pytest.raises(ImageTooLarge, match="pixels"):
        sniff_image(path, MAX_PIXELS)
    assert loads == []  # refused from the header: no pixel decoded


def test_sniff_refuses_a_real_bomb(tmp_path: Path) -> None:
    # A genuinely decodable 25 Mpx image that compresses to a few KB.
    buffer = io.BytesIO()
    Image.new("1", (5000, 5000)).save(buffer, "PNG")
    assert len(buffer.getvalue()) < 50_000
    path = tmp_path / "bomb.png"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ImageTooLarge):
        sniff_image(path, MAX_PIXELS)


def test_pillows_bomb_error_and_warning_become_refusals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(image_bytes("PNG", (40, 30)))  # 1200 pixels
    # Past twice Pillow's limit: open() raises DecompressionBombError.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)
    with pytest.raises(ImageTooLarge):
        sniff_image(path, 10**9)
    # Past the limit, with warnings as errors: open() raises DecompressionBombWarning.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(ImageTooLarge):
            sniff_image(path, 10**9)
    # Past the limit, warnings as usual: refused all the same (our check uses Pillow's limit).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with pytest.raises(ImageTooLarge):
            sniff_image(path, 10**9)


# --------------------------------------------------------------------------- storage


@pytest.mark.parametrize("bad", ["A" * 64, "a" * 63, "a" * 65, "a" * 64 + "\n",
                                 "../" + "a" * 61, "g" * 64, "", "a" * 32 + "/" + "a" * 31,
                                 "a" * 63 + "\x00"])
async def test_digests_are_checked_before_any_path(storage: LocalStorage, root: Path,
                                                   bad: str) -> None:
    with pytest.raises(InvalidDigest):
        check_digest(bad)
    with pytest.raises(InvalidDigest):
        storage.path(bad)
    with pytest.raises(InvalidDigest):
        storage.local_path(bad)
    with pytest.raises(InvalidDigest):
        await storage.exists(bad)
    with pytest.raises(InvalidDigest):
        await storage.delete(bad)
    with pytest.raises(InvalidDigest):
        storage.open(bad)
    fd, temp = make_temp_file(storage)
    os.close(fd)
    with pytest.raises(InvalidDigest):
        await storage.put_file(temp, bad)
    temp.unlink()
    assert files_under(root) == []


def staged(storage: LocalStorage, data: bytes) -> Path:
    fd, temp = make_temp_file(storage)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return temp


async def test_put_open_dedupe_delete(storage: LocalStorage, root: Path) -> None:
    data = b"hello, content addressing" * 100
    sha = hashlib.sha256(data).hexdigest()
    temp = staged(storage, data)
    assert temp.parent == storage.root / ".tmp" == storage.temp_dir()
    assert await storage.put_file(temp, sha) is True
    assert not temp.exists()  # renamed into place
    expected = storage.root / sha[:2] / sha[2:4] / sha
    assert storage.path(sha) == storage.local_path(sha) == expected
    assert storage.path(sha).read_bytes() == data
    again = staged(storage, data)
    assert await storage.put_file(again, sha) is False  # stored once
    again.unlink()  # the caller owns its temp file
    assert files_under(root) == [storage.path(sha)]
    assert b"".join([chunk async for chunk in storage.open(sha)]) == data
    assert await storage.exists(sha)
    await storage.delete(sha)
    await storage.delete(sha)  # idempotent
    assert not await storage.exists(sha)
    with pytest.raises(FileNotFoundError):
        await storage.open(sha).__anext__()
    assert files_under(root) == []


def test_sweep_temp_removes_only_old_leftovers(storage: LocalStorage) -> None:
    old, fresh = staged(storage, b"old"), staged(storage, b"fresh")
    os.utime(old, (0, 0))
    assert storage.sweep_temp(older_than=3600) == 1
    assert not old.exists() and fresh.exists()


# --------------------------------------------------------------------------- GraphQL path


def spooled(content: bytes) -> UploadFile:
    return UploadFile(io.BytesIO(content), filename="../../evil.png",
                      headers=Headers({"content-type": "image/png"}))


async def test_store_upload_file_shares_the_checks(storage: LocalStorage, root: Path) -> None:
    content = image_bytes("WEBP")
    stored = await store_upload_file(spooled(content), storage, MAX_BYTES, MAX_PIXELS)
    assert stored.sha256 == hashlib.sha256(content).hexdigest()
    assert (stored.size, stored.content_type, stored.width, stored.height) == (
        len(content), "image/webp", 32, 24)
    assert files_under(root) == [storage.path(stored.sha256)]
    assert storage.path(stored.sha256).read_bytes() == content
    sized = UploadFile(io.BytesIO(b"x"), size=MAX_BYTES + 1)  # the size the framework knows
    for upload, status in [
        (spooled(HOSTILE["svg"]), 415),
        (spooled(image_bytes("PNG") + b"\0" * MAX_BYTES), 413),
        (spooled(png_declaring(30_000, 30_000)), 413),
        (spooled(b""), 415),
        (sized, 413),
    ]:
        with pytest.raises(UploadError) as refused:
            await store_upload_file(upload, storage, MAX_BYTES, MAX_PIXELS)
        assert refused.value.status_code == status
    again = await store_upload_file(spooled(content), storage, MAX_BYTES, MAX_PIXELS)
    assert again == stored
    assert files_under(root) == [storage.path(stored.sha256)]


# --------------------------------------------------------------------------- over HTTP


@pytest.mark.parametrize(("fmt", "mime"), FORMATS)
async def test_round_trip_is_byte_identical(client: httpx.AsyncClient, storage: LocalStorage,
                                            root: Path, fmt: str, mime: str) -> None:
    content = image_bytes(fmt)
    # The part's filename and Content-Type say nothing true; the content decides.
    response = await client.post(
        "/uploads", files={"file": ("x.bin", content, "application/octet-stream")},
        data={"note": "ignored"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body == {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content),
                    "content_type": mime, "width": 32, "height": 24}
    assert files_under(root) == [storage.path(body["sha256"])]
    assert storage.path(body["sha256"]).read_bytes() == content


async def test_other_fields_around_the_file_are_ignored(client: httpx.AsyncClient) -> None:
    content = image_bytes("PNG")
    body = form(part(b"before", b"x" * 5000, None), part(b"file", content),
                part(b"after", b"y", b"y.png"))
    response = await post(client, body)
    assert response.status_code == 201, response.text
    assert response.json()["sha256"] == hashlib.sha256(content).hexdigest()


async def test_a_large_file_streams_in_small_chunks(app: Starlette, root: Path,
                                                    storage: LocalStorage) -> None:
    # Under the limit, fed 1000 bytes at a time: boundaries split across chunks still parse.
    content = image_bytes("PNG", (300, 200))
    body = form(part(b"file", content))
    call = AsgiCall(app)
    await call(split(body, 1000), multipart_headers(body))
    assert call.status == 201
    sha = hashlib.sha256(content).hexdigest()
    assert files_under(root) == [storage.path(sha)]


@pytest.mark.parametrize("content", list(HOSTILE.values()), ids=list(HOSTILE))
async def test_not_an_image_is_415_and_leaves_nothing(client: httpx.AsyncClient, root: Path,
                                                      content: bytes) -> None:
    response = await post(client, form(part(b"file", content)))  # labelled image/png
    assert response.status_code == 415, response.text
    assert files_under(root) == []


@pytest.mark.parametrize("side", [30_000, 3_000], ids=["past-pillow-limit", "past-ours"])
async def test_a_bomb_is_413_and_leaves_nothing(client: httpx.AsyncClient, root: Path,
                                                side: int) -> None:
    response = await post(client, form(part(b"file", png_declaring(side, side))))
    assert response.status_code == 413
    assert "pixels" in response.json()["detail"]
    assert files_under(root) == []


@pytest.mark.parametrize("name", [b"../../etc/passwd", b"..\\..\\x.png",
                                  "ünï😀.png".encode(), b"a\x00b.png", b"/abs/path.png",
                                  b"x.png\r\nX-Injected: 1"])
async def test_hostile_names_are_never_used(client: httpx.AsyncClient, storage: LocalStorage,
                                            root: Path, tmp_path: Path, name: bytes) -> None:
    content = image_bytes("PNG", (5, 5))
    response = await post(client, form(part(b"file", content, name)))
    assert response.status_code == 201, response.text
    sha = hashlib.sha256(content).hexdigest()
    assert response.json()["sha256"] == sha
    assert files_under(root) == [storage.path(sha)]
    assert files_under(tmp_path) == files_under(root)  # nothing written anywhere else


async def test_same_bytes_are_stored_once(client: httpx.AsyncClient, root: Path) -> None:
    content = image_bytes("JPEG")
    first = await post(client, form(part(b"file", content, b"a.jpg")))
    second = await post(client, form(part(b"file", content, b"b.jpg")))
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert len(files_under(root)) == 1


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (form(part(b"note", b"no file here", None)), None, 400),
        (form(part(b"file", image_bytes("PNG")), part(b"file", image_bytes("GIF"))), None, 400),
        (form(part(b"file", b"")), None, 415),
        (b"this is not multipart at all", None, 400),
        (form(part(b"file", image_bytes("PNG"))), {"content-type": "multipart/form-data"}, 400),
        (form(part(b"file", image_bytes("PNG"))),
         {"content-type": "multipart/form-data; boundary=" + "b" * 100}, 400),
        (image_bytes("PNG"), {"content-type": "image/png"}, 415),
        (b'{"file": "x"}', {"content-type": "application/json"}, 415),
        (form(part(b"file", image_bytes("PNG"))), {"content-type": ""}, 415),
        (form(part(b"file", image_bytes("PNG"))), {
            "content-type": f"multipart/form-data; boundary={BOUNDARY}",
            "content-length": "12abc"}, 400),
        (form(*(part(b"f", b"") for _ in range(40)), part(b"file", image_bytes("PNG"))),
         None, 400),
    ],
    ids=["no-file-field", "two-files", "empty-file", "garbage", "no-boundary",
         "long-boundary", "raw-png", "json", "no-content-type", "bad-content-length",
         "too-many-parts"],
)
async def test_malformed_requests(client: httpx.AsyncClient, root: Path, body: bytes,
                                  headers: dict[str, str] | None, status: int) -> None:
    response = await post(client, body, headers)
    assert response.status_code == status, response.text
    assert files_under(root) == []


@pytest.mark.parametrize("value", ["\u00b2", "-1", "1e9", " ", "0x10"])
async def test_malformed_content_length_is_400(app: Starlette, root: Path, value: str) -> None:
    call = AsgiCall(app)
    body = form(part(b"file", image_bytes("PNG")))
    await call([body], {**multipart_headers(), "content-length": value})
    assert (call.status, call.receives) == (400, 0)
    assert files_under(root) == []


async def test_over_the_limit_is_413_and_leaves_nothing(client: httpx.AsyncClient,
                                                        root: Path) -> None:
    big = image_bytes("PNG") + b"\0" * MAX_BYTES
    response = await post(client, form(part(b"file", big)))
    assert response.status_code == 413
    assert files_under(root) == []


async def test_exactly_the_limit_is_accepted_by_the_size_check(client: httpx.AsyncClient,
                                                               root: Path) -> None:
    # A PNG padded to exactly MAX_BYTES passes the byte limit (trailing bytes after IEND
    # are ignored by decoders), one byte more does not.
    png = image_bytes("PNG")
    exact = png + b"\0" * (MAX_BYTES - len(png))
    assert (await post(client, form(part(b"file", exact)))).status_code == 201
    assert (await post(client, form(part(b"file", exact + b"\0")))).status_code == 413
    assert len(files_under(root)) == 1


async def test_a_huge_content_length_is_refused_without_reading(app: Starlette,
                                                                root: Path) -> None:
    for declared in (str(10**12), "9" * 5000, str(MAX_BYTES + MULTIPART_OVERHEAD + 1)):
        call = AsgiCall(app)
        await call([b"--x\r\n"], {**multipart_headers(), "content-length": declared})
        assert (call.status, call.receives) == (413, 0)
    assert files_under(root) == []


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_the_limit_stops_the_stream(app: Starlette, root: Path, declared: bool) -> None:
    # A file well past the limit, under a Content-Length that does not give it away (or none):
    # reading must stop right after the limit, not at the end of the body.
    body = form(part(b"file", image_bytes("PNG") + b"\0" * (MAX_BYTES * 5)))
    headers = multipart_headers()
    if declared:
        headers["content-length"] = str(MAX_BYTES)  # a lie the server's framing would catch
    call = AsgiCall(app)
    await call(split(body), headers)
    assert call.status == 413
    assert call.read <= MAX_BYTES + 2 * 16 * 1024
    assert files_under(root) == []


async def test_total_body_is_capped_even_without_a_file(app: Starlette, root: Path) -> None:
    body = form(part(b"padding", b"p" * 2 * (MAX_BYTES + MULTIPART_OVERHEAD), None))
    call = AsgiCall(app)
    await call(split(body), multipart_headers())
    assert call.status == 413
    assert call.read <= MAX_BYTES + MULTIPART_OVERHEAD + 16 * 1024
    assert files_under(root) == []


async def test_a_disconnect_mid_body_leaves_nothing(app: Starlette, root: Path) -> None:
    body = form(part(b"file", image_bytes("PNG", (200, 200)) + b"\0" * 50_000))
    call = AsgiCall(app)
    await call(split(body)[:2], multipart_headers(body), end="disconnect")
    assert call.status == 400
    assert files_under(root) == []


async def test_a_body_cut_short_is_refused(client: httpx.AsyncClient, root: Path) -> None:
    content = image_bytes("PNG")
    body = form(part(b"file", content))
    for cut in (body[: len(body) // 2], body[: -len(f"--{BOUNDARY}--\r\n")]):
        response = await post(client, cut)
        assert response.status_code == 400, response.text
    assert files_under(root) == []


async def test_a_cancelled_request_leaves_nothing(app: Starlette, root: Path) -> None:
    body = form(part(b"file", image_bytes("PNG", (200, 200)) + b"\0" * 50_000))
    exhausted = asyncio.Event()
    call = AsgiCall(app)
    task = asyncio.create_task(
        call(split(body)[:2], multipart_headers(body), end="hang", on_exhausted=exhausted.set))
    await exhausted.wait()
    assert len(files_under(root / ".tmp")) == 1  # the temp file exists mid-stream
    task.cancel()  # what the server does to the request task when the connection drops
    with pytest.raises(asyncio.CancelledError):
        await task
    assert files_under(root) == []
