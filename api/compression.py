"""gzip for HTTP responses over ~1 KiB, with strong ETags that stay per representation.

``api/edge.py`` sends a request through ``Compression`` only when it accepts gzip, so the
common identity case costs nothing here.

Starlette's ``GZipMiddleware`` (pure ASGI) compresses; this layer keeps validators honest
around it, as Apache's mod_deflate does: a strong ETag names exact bytes, so the gzip
representation gets its own tag (``"x"`` becomes ``"x-gzip"``), and an ``If-None-Match``
carrying such a tag reaches the app as the identity tag it knows, its 304 going back with the
tag the client holds. Handlers (the GraphQL router, static files) thus compute ETags and 304s
over the bytes they produce and need not know about compression.

WebSockets are not touched: frames are never compressed (see ``api/cli.py``).
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MINIMUM_SIZE = 1024
# Level 5: nearly the ratio of 9 on JSON at a fraction of the CPU per response.
COMPRESS_LEVEL = 5
SUFFIX = "-gzip"


def accepts_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "x-gzip"):
            q = params.strip().removeprefix("q=").strip() if "q=" in params else "1"
            try:
                if float(q) > 0:
                    return True
            except ValueError:
                continue
    return False


def gzip_etag(etag: str) -> str:
    """The tag of the gzip representation of a strong ETag (weak ones are shared)."""
    if etag.startswith("W/") or not etag.endswith('"'):
        return etag
    return etag[:-1] + SUFFIX + '"'


def _identity_tags(if_none_match: str) -> str:
    tags = []
    for tag in (t.strip() for t in if_none_match.split(",")):
        if tag.endswith(SUFFIX + '"') and not tag.startswith("W/"):
            tag = tag[: -len(SUFFIX) - 1] + '"'
        tags.append(tag)
    return ", ".join(tags)


class Compression:
    """gzip around ``app`` for an HTTP request that accepts it (``accepts_gzip``)."""

    def __init__(self, app: ASGIApp, minimum_size: int = MINIMUM_SIZE,
                 compresslevel: int = COMPRESS_LEVEL) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size, compresslevel=compresslevel)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent_tags = Headers(scope=scope).get("if-none-match")
        if sent_tags is not None:
            raw = [(k, v) for k, v in scope["headers"] if k != b"if-none-match"]
            raw.append((b"if-none-match", _identity_tags(sent_tags).encode("latin-1")))
            scope = {**scope, "headers": raw}
        held = {t.strip() for t in (sent_tags or "").split(",")}

        async def tag_representation(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(raw=message["headers"])
                etag = headers.get("etag")
                if etag is not None:
                    compressed = headers.get("content-encoding") == "gzip"
                    if compressed or (message["status"] == 304 and gzip_etag(etag) in held):
                        headers["etag"] = gzip_etag(etag)
            await send(message)

        await self.gzip(scope, receive, tag_representation)
