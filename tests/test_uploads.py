"""Image uploads: round trips, hostile files, limits, disconnects, GraphQL multipart."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.conftest import _client_for, make_settings
from tests.images import image_bytes, png_declaring
from tests.queries import LOGIN
from tests.seeded import seeded_ids
from tests.server import serve


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture
async def uploads_client(seeded_db, tmp_path):
    settings_ = make_settings(seeded_db.url, upload_dir=str(tmp_path / "up"),
                              max_upload_bytes=200_000, max_image_pixels=4_000_000)
    async for client in _client_for(settings_):
        client.upload_root = tmp_path / "up"
        await client.login_as("clerk")
        yield client


async def post_file(client, content: bytes, name: str = "x.png",
                    content_type: str = "image/png", token: str | None = "default"):
    headers = {}
    bearer = client.token if token == "default" else token
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    return await client.http.post("/uploads", files={"file": (name, content, content_type)},
                                  headers=headers)


@pytest.mark.parametrize(("fmt", "mime"), [("PNG", "image/png"), ("JPEG", "image/jpeg"),
                                           ("WEBP", "image/webp"), ("GIF", "image/gif")])
async def test_round_trip(uploads_client, fmt, mime):
    content = image_bytes(fmt)
    created = await post_file(uploads_client, content, content_type="application/octet-stream")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["contentType"] == mime
    assert (body["width"], body["height"], body["size"]) == (32, 24, len(content))
    got = await uploads_client.http.get(body["url"])
    assert got.status_code == 200
    assert got.content == content
    assert got.headers["content-type"] == mime
    assert got.headers["etag"] == f'"{body["sha256"]}"'
    assert got.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"].startswith("inline; filename=")
    cached = await uploads_client.http.get(body["url"],
                                           headers={"If-None-Match": got.headers["etag"]})
    assert cached.status_code == 304
    assert cached.content == b""


async def test_auth_and_roles(uploads_client):
    assert (await post_file(uploads_client, image_bytes("PNG"), token=None)).status_code == 401
    viewer = await uploads_client.login("viewer@example.com", "viewer")
    assert (await post_file(uploads_client, image_bytes("PNG"), token=viewer)).status_code == 403
    assert (await post_file(uploads_client, image_bytes("PNG"), token="forged.token.x")
            ).status_code == 401


@pytest.mark.parametrize(
    "content",
    [b"<html><script>alert(1)</script></html>",
     b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
     b"just some text",
     image_bytes("PNG")[:-30]],
    ids=["html-as-png", "svg", "text", "truncated-png"],
)
async def test_not_an_image_is_415_and_leaves_nothing(uploads_client, content):
    response = await post_file(uploads_client, content)
    assert response.status_code == 415, response.text
    assert stored_files(uploads_client.upload_root) == []


async def test_over_the_limit_is_413_and_leaves_nothing(uploads_client):
    big = image_bytes("PNG") + b"\x00" * 300_000
    response = await post_file(uploads_client, big)
    assert response.status_code == 413
    assert stored_files(uploads_client.upload_root) == []
    # a body with a lying, huge Content-Length is refused before it is read
    response = await uploads_client.http.post(
        "/uploads", content=b"--x\r\n", headers={
            "Authorization": f"Bearer {uploads_client.token}",
            "Content-Type": "multipart/form-data; boundary=x",
            "Content-Length": str(10**12)})
    assert response.status_code == 413


async def test_decompression_bomb_is_refused(uploads_client):
    response = await post_file(uploads_client, png_declaring(30_000, 30_000))
    assert response.status_code == 413
    assert "pixels" in response.json()["detail"]
    assert stored_files(uploads_client.upload_root) == []


@pytest.mark.parametrize("name", ["../../etc/passwd", "..\\..\\x.png", "ünï😀.png",
                                  "a\x00b.png", "/abs/path.png"])
async def test_hostile_names_never_touch_the_filesystem(uploads_client, name):
    content = image_bytes("PNG", (5, 5))
    response = await post_file(uploads_client, content, name=name)
    assert response.status_code == 201
    sha = response.json()["sha256"]
    files = stored_files(uploads_client.upload_root)
    assert [f.name for f in files] == [sha]
    assert all(uploads_client.upload_root.resolve() in f.resolve().parents for f in files)


async def test_same_bytes_stored_once(uploads_client):
    content = image_bytes("JPEG")
    first = (await post_file(uploads_client, content)).json()
    second = (await post_file(uploads_client, content, name="other.jpg")).json()
    assert first["id"] == second["id"]
    assert len(stored_files(uploads_client.upload_root)) == 1


SET_IMAGE = """mutation($i: ID!, $u: ID) { setItemImage(itemId: $i, uploadId: $u) {
  item { image { url contentType sha256 } } errors { code } } }"""


async def test_attach_replace_and_collect(uploads_client, tmp_path, monkeypatch):
    first = (await post_file(uploads_client, image_bytes("PNG"))).json()
    second = (await post_file(uploads_client, image_bytes("GIF"))).json()
    await uploads_client.login_as("manager")
    (a, b), _ = await seeded_ids(uploads_client.data, ["SKU-00001", "SKU-00002"])
    for item in (a, b):
        done = await uploads_client.data(SET_IMAGE, {"i": item, "u": first["id"]})
        assert done["setItemImage"]["item"]["image"]["sha256"] == first["sha256"]
    # replacing a's image keeps the file b still uses
    await uploads_client.data(SET_IMAGE, {"i": a, "u": second["id"]})
    assert (await uploads_client.http.get(first["url"])).status_code == 200
    bad = await uploads_client.data(SET_IMAGE, {"i": a, "u": "SW1hZ2U6OTk5OQ=="})
    assert bad["setItemImage"]["errors"][0]["code"] == "NOT_FOUND"
    # garbage collection removes only what nothing points at
    await uploads_client.data(SET_IMAGE, {"i": b, "u": second["id"]})
    from api.cli import _gc_uploads

    monkeypatch.setenv("STOCKROOM_DATABASE_URL", str(uploads_client.engine.url))
    monkeypatch.setenv("STOCKROOM_UPLOAD_DIR", str(uploads_client.upload_root))
    await _gc_uploads(0)
    assert (await uploads_client.http.get(first["url"])).status_code == 404
    assert (await uploads_client.http.get(second["url"])).status_code == 200


UPLOAD_MUTATION = "mutation($f: Upload!) { uploadImage(file: $f) { image { sha256 contentType } " \
                  "errors { code message } } }"


def multipart_graphql(content: bytes) -> dict:
    return {
        "data": {"operations": json.dumps({"query": UPLOAD_MUTATION, "variables": {"f": None}}),
                 "map": json.dumps({"0": ["variables.f"]})},
        "files": {"0": ("x.png", content, "image/png")},
    }


async def test_graphql_multipart_upload_needs_the_csrf_header(uploads_client):
    auth = {"Authorization": f"Bearer {uploads_client.token}"}
    refused = await uploads_client.http.post("/graphql", headers=auth,
                                             **multipart_graphql(image_bytes("PNG")))
    assert refused.status_code == 400
    assert "Apollo-Require-Preflight" in refused.text
    ok = await uploads_client.http.post(
        "/graphql", headers={**auth, "Apollo-Require-Preflight": "true"},
        **multipart_graphql(image_bytes("PNG")))
    assert ok.status_code == 200, ok.text
    assert ok.json()["data"]["uploadImage"]["image"]["contentType"] == "image/png"
    svg = await uploads_client.http.post(
        "/graphql", headers={**auth, "Apollo-Require-Preflight": "true"},
        **multipart_graphql(b"<svg xmlns='http://www.w3.org/2000/svg'/>"))
    assert svg.json()["data"]["uploadImage"]["errors"][0]["code"] == "INVALID"


@pytest.mark.e2e
async def test_client_that_disconnects_mid_upload_leaves_no_file(seeded_db, tmp_path):
    with serve(seeded_db.url, tmp_path) as server:
        import httpx

        async with httpx.AsyncClient(base_url=server.url) as http:
            login = await http.post("/graphql", json={"query": LOGIN, "variables": {
                "e": "clerk@example.com", "p": "clerk"}})
            token = login.json()["data"]["login"]["accessToken"]
        _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        body_start = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\""
                      b"\r\nContent-Type: image/png\r\n\r\n" + image_bytes("PNG")[:40])
        writer.write(
            b"POST /uploads HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {token}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=b\r\n"
            + b"Content-Length: 500000\r\n\r\n" + body_start)
        await writer.drain()
        await asyncio.sleep(0.5)
        writer.close()  # the client goes away with most of the body unsent
        await asyncio.sleep(1.0)
        # the server did start on the body (its temp file existed), then cleaned up
        assert "POST /uploads 400" in server.output()
        assert stored_files(tmp_path / "uploads") == []
