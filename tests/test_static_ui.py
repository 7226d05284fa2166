"""The offline GraphiQL / Swagger UI: vendored assets intact, pages with no CDN and no inline
script, strict CSP headers, static files served with the right headers (no browser here; the
browser checks use tests/browser_util.py and tests/browser/run_query.mjs)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import strawberry
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from strawberry.fastapi import GraphQLRouter

from api.docs_ui import (
    STATIC_DIR,
    graphiql_response,
    mount_static,
    swagger_ui_html,
    swagger_ui_response,
)

ROOT = Path(__file__).resolve().parent.parent
VENDOR_DIR = STATIC_DIR / "vendor"
MANIFEST = VENDOR_DIR / "MANIFEST.json"
GRAPHIQL_HTML = STATIC_DIR / "graphiql.html"
OWN_SCRIPTS = [STATIC_DIR / "graphiql.js", STATIC_DIR / "swagger-init.js"]
MAX_VENDOR_BYTES = 8 * 1024 * 1024


def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return data


def manifest_files() -> list[dict[str, Any]]:
    return [item for pkg in manifest()["packages"] for item in pkg["files"]]


class PageScan(HTMLParser):
    """Every URL a page references, its <script> elements, and any inline code or style."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.inline_script_bodies: list[str] = []
        self.event_handlers: list[str] = []
        self.style_elements = 0
        self.style_attributes = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name, value in attrs:
            if name in {"src", "href", "action", "formaction", "poster", "data"} and value:
                self.urls.append(value)
            if name.startswith("on"):
                self.event_handlers.append(f"<{tag} {name}>")
            if name == "style":
                self.style_attributes += 1
        if tag == "script":
            self.scripts.append(attributes)
            self._in_script = True
        if tag == "style":
            self.style_elements += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_script_bodies.append(data.strip())


def scan(page: str) -> PageScan:
    parser = PageScan()
    parser.feed(page)
    parser.close()
    return parser


def csp_directives(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def assert_strict_script_csp(header: str) -> dict[str, list[str]]:
    directives = csp_directives(header)
    assert directives["script-src"] == ["'self'"]
    assert directives["default-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    for name, sources in directives.items():
        if name.startswith("script-src") or name == "default-src":
            assert "'unsafe-inline'" not in sources, name
            assert "'unsafe-eval'" not in sources, name
    # nothing may load from another host: only 'self', data: and (for connect) ws:/wss:
    for name, sources in directives.items():
        for source in sources:
            assert source in {"'self'", "'none'", "'unsafe-inline'", "data:", "ws:", "wss:"}, (
                name,
                source,
            )
    return directives


def static_path(url: str) -> Path:
    assert url.startswith("/static/"), url
    path = (STATIC_DIR / url.removeprefix("/static/")).resolve()
    assert path.is_relative_to(STATIC_DIR), url
    return path


# --- vendored assets ------------------------------------------------------------------------


def test_manifest_files_exist_and_match_their_sha256() -> None:
    files = manifest_files()
    assert files
    for item in files:
        path = VENDOR_DIR / item["path"]
        assert path.is_file(), item["path"]
        data = path.read_bytes()
        assert len(data) == item["size"], item["path"]
        assert hashlib.sha256(data).hexdigest() == item["sha256"], item["path"]


def test_vendor_dir_holds_only_listed_files_and_stays_small() -> None:
    listed = {item["path"] for item in manifest_files()} | {"MANIFEST.json"}
    present = {p.relative_to(VENDOR_DIR).as_posix() for p in VENDOR_DIR.rglob("*") if p.is_file()}
    assert present == listed
    total = sum((VENDOR_DIR / path).stat().st_size for path in present)
    assert total < MAX_VENDOR_BYTES


def test_every_vendored_package_is_pinned_and_ships_its_licence() -> None:
    packages = manifest()["packages"]
    names = {pkg["package"] for pkg in packages}
    assert {
        "react",
        "react-dom",
        "graphiql",
        "@graphiql/plugin-explorer",
        "graphql-ws",
        "swagger-ui-dist",
    } <= names
    for pkg in packages:
        major, *_ = pkg["version"].split(".")
        assert major.isdigit() and all(c.isdigit() or c == "." for c in pkg["version"]), pkg
        assert pkg["integrity"].startswith("sha512-"), pkg["package"]
        assert pkg["license"], pkg["package"]
        assert any("LICENSE" in Path(f["path"]).name for f in pkg["files"]), pkg["package"]


def test_vendor_script_check_mode_agrees() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "vendor_static.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# --- the GraphiQL page ----------------------------------------------------------------------


def test_graphiql_html_references_only_local_static_files() -> None:
    page = scan(GRAPHIQL_HTML.read_text(encoding="utf-8"))
    assert page.urls
    for url in page.urls:
        assert "://" not in url and not url.startswith("//"), url
        if url.startswith("data:"):
            continue  # the empty favicon, so the browser asks for no /favicon.ico
        assert static_path(url).is_file(), url
    sources = [script.get("src") for script in page.scripts]
    assert sources == [
        "/static/vendor/react/react.production.min.js",
        "/static/vendor/react-dom/react-dom.production.min.js",
        "/static/vendor/graphql-ws/graphql-ws.min.js",
        "/static/vendor/graphiql/graphiql.min.js",
        "/static/vendor/graphiql-plugin-explorer/index.umd.js",
        "/static/graphiql.js",
    ]


def test_graphiql_html_has_no_inline_script_or_style() -> None:
    page = scan(GRAPHIQL_HTML.read_text(encoding="utf-8"))
    assert page.inline_script_bodies == []
    assert all(script.get("src") for script in page.scripts)
    assert page.event_handlers == []
    assert page.style_elements == 0
    assert page.style_attributes == 0
    assert "javascript:" not in GRAPHIQL_HTML.read_text(encoding="utf-8").lower()


@pytest.mark.parametrize("script", OWN_SCRIPTS, ids=lambda p: p.name)
def test_own_boot_scripts_need_no_eval_and_no_other_host(script: Path) -> None:
    code = script.read_text(encoding="utf-8")
    for forbidden in ("eval(", "new Function", "http://", "https://", "document.write"):
        assert forbidden not in code, forbidden


def test_graphiql_boot_script_sets_up_login_headers_and_subscriptions() -> None:
    code = (STATIC_DIR / "graphiql.js").read_text(encoding="utf-8")
    assert 'login(email: \\"admin@example.com\\", password: \\"admin\\")' in json.dumps(code)
    assert "accessToken" in code and "errors { code message }" in code
    assert "Bearer " in code and "shouldPersistHeaders: true" in code
    assert "graphqlWs.createClient" in code and "connectionParams" in code
    assert "GraphiQL.createFetcher" in code and "explorerPlugin" in code


def test_graphiql_response_has_strict_csp() -> None:
    response = graphiql_response()
    assert response.status_code == 200
    assert response.media_type == "text/html"
    assert bytes(response.body).decode() == GRAPHIQL_HTML.read_text(encoding="utf-8")
    assert response.headers["x-content-type-options"] == "nosniff"
    directives = assert_strict_script_csp(response.headers["content-security-policy"])
    assert set(directives["connect-src"]) == {"'self'", "ws:", "wss:"}


# --- the Swagger UI page --------------------------------------------------------------------


def test_swagger_ui_response_uses_vendored_assets_and_strict_csp() -> None:
    response = swagger_ui_response("/openapi.json", "Stockroom - Swagger UI")
    page_text = bytes(response.body).decode()
    page = scan(page_text)
    assert page.inline_script_bodies == []
    assert page.event_handlers == []
    assert [script.get("src") for script in page.scripts] == [
        "/static/vendor/swagger-ui/swagger-ui-bundle.js",
        "/static/swagger-init.js",
    ]
    for url in page.urls:
        assert static_path(url).is_file(), url
    assert response.headers["x-content-type-options"] == "nosniff"
    directives = assert_strict_script_csp(response.headers["content-security-policy"])
    assert directives["connect-src"] == ["'self'"]


def test_swagger_ui_config_travels_in_an_escaped_data_attribute() -> None:
    title = 'Evil </title><script>alert("x")</script>'
    page_text = swagger_ui_html(
        "/openapi.json?x=<b>", title, swagger_ui_parameters={"persistAuthorization": True}
    )
    page = scan(page_text)
    assert page.inline_script_bodies == []
    assert len(page.scripts) == 2  # only the two external ones, none from the title

    class ConfigScan(HTMLParser):
        config: dict[str, Any] | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            values = dict(attrs)
            if values.get("id") == "swagger-ui":
                self.config = json.loads(values["data-config"] or "{}")

    parser = ConfigScan()
    parser.feed(page_text)
    assert parser.config is not None
    assert parser.config["url"] == "/openapi.json?x=<b>"
    assert parser.config["dom_id"] == "#swagger-ui"
    assert parser.config["persistAuthorization"] is True


# --- serving --------------------------------------------------------------------------------


@strawberry.type
class _Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"


class _OfflineRouter(GraphQLRouter[Any, Any]):
    """The wiring create_app uses: Strawberry's IDE hook returns our page."""

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return graphiql_response()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI(docs_url=None, redoc_url=None)
    mount_static(app)
    app.include_router(
        _OfflineRouter(strawberry.Schema(_Query), graphql_ide="graphiql"), prefix="/graphql"
    )

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return swagger_ui_response("/openapi.json", "docs")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_get_graphql_serves_the_offline_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.text == GRAPHIQL_HTML.read_text(encoding="utf-8")
    assert_strict_script_csp(response.headers["content-security-policy"])
    assert "unpkg.com" not in response.text
    query = await client.post("/graphql", json={"query": "{ hello }"})
    assert query.json() == {"data": {"hello": "world"}}


async def test_every_asset_the_pages_use_is_served(client: httpx.AsyncClient) -> None:
    pages = [
        (await client.get("/graphql", headers={"Accept": "text/html"})).text,
        (await client.get("/docs")).text,
    ]
    urls = [url for page in pages for url in scan(page).urls if url.startswith("/static/")]
    assert len(urls) >= 10
    for url in urls:
        response = await client.get(url)
        assert response.status_code == 200, url
        assert response.headers["x-content-type-options"] == "nosniff"
        if url.endswith(".js"):
            assert "javascript" in response.headers["content-type"], url
        if url.endswith(".css"):
            assert response.headers["content-type"].startswith("text/css"), url


async def test_static_cache_headers(client: httpx.AsyncClient) -> None:
    url = "/static/vendor/graphiql/graphiql.min.js"
    vendored = await client.get(url)
    assert vendored.headers["cache-control"] == "public, max-age=86400"
    again = await client.get(url, headers={"If-None-Match": vendored.headers["etag"]})
    assert again.status_code == 304
    own = await client.get("/static/graphiql.js")
    assert own.headers["cache-control"] == "no-cache"


async def test_static_mount_does_not_escape_its_directory(client: httpx.AsyncClient) -> None:
    assert (await client.get("/static/../docs_ui.py")).status_code == 404
    assert (await client.get("/static/%2e%2e/docs_ui.py")).status_code == 404
    assert (await client.get("/static/vendor/../../docs_ui.py")).status_code == 404


# --- the browser driver's pins --------------------------------------------------------------


def test_browser_driver_is_pinned_with_a_lockfile() -> None:
    package = json.loads((ROOT / "tests/browser/package.json").read_text(encoding="utf-8"))
    version = package["dependencies"]["playwright-core"]
    assert version[0].isdigit(), "pin an exact playwright-core version"
    lock = json.loads((ROOT / "tests/browser/package-lock.json").read_text(encoding="utf-8"))
    assert lock["packages"]["node_modules/playwright-core"]["version"] == version
