"""GraphQL over HTTP (the working group's spec): media types, status codes, GET caching.

- ``application/graphql-response+json`` when the client accepts it at least as much as
  ``application/json``; then a request error (parse, validation, variable coercion, a refused
  persisted query: no ``data`` entry, no error path) is a 4xx without ``data``. Under
  ``application/json`` (also for ``*/*`` or no Accept) such errors stay 200 with
  ``"data": null``, as before.
- A database outage is 503 with Retry-After under both (see ``api/outage.py``).
- GET reads carry ``Cache-Control: private, no-cache`` and a strong ETag over the body, and
  ``If-None-Match`` answers 304.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import orjson
from graphql import GraphQLError
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
CONTENT_TYPES = {
    GRAPHQL_RESPONSE_JSON: f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8",
    JSON: JSON,
}
GET_CACHE_CONTROL = "private, no-cache"


def _quality(accept: str, media_type: str) -> float:
    """The q-value ``accept`` gives exactly ``media_type`` (wildcards do not count)."""
    best = 0.0
    for part in accept.split(","):
        name, *params = (piece.strip() for piece in part.split(";"))
        if name.lower() != media_type:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best = max(best, q)
    return best


def negotiate(accept: str | None) -> str:
    """The response media type for an Accept header: the new type only when asked for."""
    if not accept:
        return JSON
    wanted = _quality(accept, GRAPHQL_RESPONSE_JSON)
    return GRAPHQL_RESPONSE_JSON if wanted > 0 and wanted >= _quality(accept, JSON) else JSON


def _code(error: GraphQLError) -> object:
    return (error.extensions or {}).get("code")


def is_request_error(result: ExecutionResult) -> bool:
    """No execution happened: parse, validation or coercion errors, none with a path."""
    errors = result.errors or []
    return result.data is None and bool(errors) and all(e.path is None for e in errors)


def result_status(result: ExecutionResult, media_type: str) -> int:
    """The HTTP status one GraphQL result deserves under ``media_type``."""
    errors: Sequence[GraphQLError] = result.errors or []
    if any(_code(e) == "SERVICE_UNAVAILABLE" for e in errors):
        return 503
    if media_type != GRAPHQL_RESPONSE_JSON or not is_request_error(result):
        return 200
    if any(_code(e) == "RATE_LIMITED" for e in errors):
        return 429
    unexpected = any(
        _code(e) == "INTERNAL_SERVER_ERROR"
        or (e.original_error is not None and not isinstance(e.original_error, GraphQLError))
        for e in errors
    )
    return 500 if unexpected else 400


def shape(formatted: GraphQLHTTPResponse, result: ExecutionResult, media_type: str,
          ) -> GraphQLHTTPResponse:
    """No ``data`` entry for a request error under the new media type (as the spec asks) nor
    for an outage under either."""
    request_error = media_type == GRAPHQL_RESPONSE_JSON and is_request_error(result)
    if request_error or any(_code(e) == "SERVICE_UNAVAILABLE" for e in result.errors or []):
        formatted.pop("data", None)
    return formatted


@dataclass
class Exchange:
    """What the router learns about one HTTP request while it runs."""

    media_type: str
    statuses: list[int] = field(default_factory=list)

    def status(self, batch: bool) -> int:
        if 503 in self.statuses:
            return 503
        if batch or not self.statuses:
            return 200  # a batch mixes outcomes: each entry carries its own errors
        return self.statuses[0]


def error_body(message: str, code: str) -> bytes:
    """A GraphQL response holding one request error (no ``data`` entry)."""
    return orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})


def strong_etag(body: bytes) -> str:
    """A strong validator over the exact bytes of the body."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=")
    return f'"{digest.decode()}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """``If-None-Match`` uses the weak comparison (RFC 9110 13.1.2): ``W/`` is ignored."""
    if not if_none_match:
        return False
    tags: Iterable[str] = (t.strip() for t in if_none_match.split(","))
    return any(t == "*" or t.removeprefix("W/") == etag for t in tags)
