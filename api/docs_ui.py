"""GraphiQL and Swagger UI served entirely from the app: no CDN, strict CSP.

Strawberry's GraphiQL page loads React and GraphiQL from unpkg and FastAPI's ``/docs`` loads
swagger-ui from jsdelivr, so neither works offline nor under ``script-src 'self'``. The pinned
assets live in ``api/static/vendor/`` (put there by ``scripts/vendor_static.py``, listed with
their sha256 in ``vendor/MANIFEST.json``); the pages and their boot scripts are
``api/static/graphiql.html`` + ``graphiql.js`` and the HTML below + ``swagger-init.js``.
None has an inline script.

Wiring (in ``create_app``)::

    app = FastAPI(..., docs_url=None, redoc_url=None)
    mount_static(app)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return swagger_ui_response(app.openapi_url or "/openapi.json", f"{app.title} - Swagger UI")

and in the GraphQL router subclass (``graphql_ide`` must stay truthy for Strawberry to call it)::

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return graphiql_response()
"""

from __future__ import annotations

import functools
import html
import json
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.docs import swagger_ui_default_parameters
from fastapi.responses import HTMLResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR: Path = Path(__file__).resolve().parent / "static"
STATIC_URL = "/static"
VENDOR_URL = f"{STATIC_URL}/vendor"

SWAGGER_JS_URL = f"{VENDOR_URL}/swagger-ui/swagger-ui-bundle.js"
SWAGGER_CSS_URL = f"{VENDOR_URL}/swagger-ui/swagger-ui.css"
SWAGGER_FAVICON_URL = f"{VENDOR_URL}/swagger-ui/favicon-32x32.png"
SWAGGER_INIT_URL = f"{STATIC_URL}/swagger-init.js"

# Scripts: 'self' only, no 'unsafe-inline' or 'unsafe-eval' (checked in headless Chromium: no
# violation while loading, running queries and subscriptions, or using the explorer and dialogs).
# Styles need 'unsafe-inline': GraphiQL's dialogs (settings, short keys) inject <style>
# elements and are blocked by style-src 'self' alone; Swagger UI gets the same policy.
# Fonts and icons come as data: URLs inside the vendored CSS.
GRAPHIQL_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self' ws: wss:; "
    "frame-ancestors 'none'"
)
SWAGGER_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'"
)

# Vendored files have stable URLs (no version in the path), so they are cached for a day and
# then revalidated by ETag; our own pages and boot scripts are revalidated every time.
VENDOR_CACHE_CONTROL = "public, max-age=86400"
STATIC_CACHE_CONTROL = "no-cache"


def _security_headers(csp: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-cache",
    }


@functools.cache
def _graphiql_html() -> str:
    return (STATIC_DIR / "graphiql.html").read_text(encoding="utf-8")


def graphiql_response() -> HTMLResponse:
    """The offline GraphiQL page (``api/static/graphiql.html``) with its CSP."""
    return HTMLResponse(_graphiql_html(), headers=_security_headers(GRAPHIQL_CSP))


def swagger_ui_html(
    openapi_url: str,
    title: str,
    *,
    swagger_ui_parameters: dict[str, Any] | None = None,
    oauth2_redirect_url: str | None = None,
    init_oauth: dict[str, Any] | None = None,
) -> str:
    """Swagger UI's page, like ``fastapi.openapi.docs.get_swagger_ui_html`` but with the
    configuration in a ``data-config`` attribute read by ``/static/swagger-init.js`` instead
    of an inline script, and the assets from ``/static/vendor/swagger-ui/``."""
    config: dict[str, Any] = dict(swagger_ui_default_parameters)
    config["url"] = openapi_url
    if swagger_ui_parameters:
        config.update(swagger_ui_parameters)
    if oauth2_redirect_url:
        config["oauth2RedirectPath"] = oauth2_redirect_url
    if init_oauth:
        config["initOAuth"] = init_oauth
    data_config = html.escape(json.dumps(jsonable_encoder(config)), quote=True)
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{html.escape(title)}</title>
    <link rel="icon" type="image/png" href="{SWAGGER_FAVICON_URL}">
    <link rel="stylesheet" href="{SWAGGER_CSS_URL}">
    <script defer src="{SWAGGER_JS_URL}"></script>
    <script defer src="{SWAGGER_INIT_URL}"></script>
  </head>
  <body>
    <div id="swagger-ui" data-config="{data_config}"></div>
  </body>
</html>
"""


def swagger_ui_response(
    openapi_url: str,
    title: str,
    *,
    swagger_ui_parameters: dict[str, Any] | None = None,
) -> HTMLResponse:
    """Offline Swagger UI for ``openapi_url`` with a strict (script-src 'self') CSP."""
    page = swagger_ui_html(openapi_url, title, swagger_ui_parameters=swagger_ui_parameters)
    return HTMLResponse(page, headers=_security_headers(SWAGGER_CSP))


class _StaticFiles(StaticFiles):
    """StaticFiles with ``nosniff`` and a Cache-Control (long for vendor/, revalidate else)."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        vendored = Path(full_path).resolve().is_relative_to(STATIC_DIR / "vendor")
        response.headers["Cache-Control"] = (
            VENDOR_CACHE_CONTROL if vendored else STATIC_CACHE_CONTROL
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def mount_static(app: FastAPI, path: str = STATIC_URL) -> None:
    """Serve ``api/static`` at ``/static`` (the URLs the pages above use)."""
    app.mount(path, _StaticFiles(directory=STATIC_DIR), name="static")
