"""One attempt of one delivery: the body, its signature, the POST, and how it ended.

The body is ``{"id", "type", "createdAt", "data"}`` with camelCase keys and Relay IDs, and
``Stockroom-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``
(Stripe's scheme: the receiver recomputes it over the raw body and refuses an old ``t``).
Redirects are not followed, the answer's body is read to at most 64 KiB, and only its status
and a short excerpt are kept. The secret never leaves this module except as a signature.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib import metadata
from typing import Any

import httpx
import orjson

from api.webhooks.guard import UrlGuard, UrlRefused
from db.webhooks import Attempt, Claimed
from schema.ids import to_global_id

try:
    VERSION = metadata.version("stockroom")
except metadata.PackageNotFoundError:  # run from a source tree that is not installed
    VERSION = "0.0.0"
USER_AGENT = f"Stockroom-Webhooks/{VERSION}"
MAX_RESPONSE_BYTES = 64 * 1024
EXCERPT_CHARS = 200
MAX_DELAY_SECONDS = 6 * 3600.0
MAX_RETRY_AFTER_SECONDS = 24 * 3600.0

# Stored keys that hold a primary key, and the type their Relay ID names.
ID_TYPES = {
    "item_id": "Item",
    "warehouse_id": "Warehouse",
    "stock_level_id": "StockLevel",
    "movement_id": "StockMovement",
    "reservation_id": "Reservation",
    "category_id": "Category",
    "webhook_id": "Webhook",
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def wire_data(data: dict[str, Any]) -> dict[str, Any]:
    """Stored data as receivers get it: camelCase keys, Relay IDs for primary keys."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in ID_TYPES and isinstance(value, int):
            value = to_global_id(ID_TYPES[key], value)
        elif isinstance(value, dict):
            value = wire_data(value)
        out[_camel(key)] = value
    return out


def body_of(delivery: Claimed) -> bytes:
    return orjson.dumps({
        "id": delivery.event_key,
        "type": delivery.event_type.wire,
        "createdAt": delivery.event_at.astimezone(UTC).isoformat(),
        "data": wire_data(delivery.data),
    })


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def backoff(base: float, attempt: int, retry_after: float | None) -> float:
    """Seconds before attempt ``attempt + 1``: the receiver's Retry-After when it sent one,
    else base x 6^(attempt-1) (10 s, 1 min, 6 min, ... for base 10) with +-20 % jitter, so
    many deliveries failing together do not come back together."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), MAX_RETRY_AFTER_SECONDS)
    delay = min(base * 6 ** (attempt - 1), MAX_DELAY_SECONDS)
    return delay * random.uniform(0.8, 1.2)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _excerpt(raw: bytes) -> str:
    text = raw[:EXCERPT_CHARS * 4].decode("utf-8", "replace")
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return text[:EXCERPT_CHARS]


def client(concurrency: int) -> httpx.AsyncClient:
    """The dispatcher's HTTP client: no redirects, no proxies from the environment."""
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        timeout=None,  # each attempt runs under its own overall deadline
        limits=httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency),
    )


async def send(
    http: httpx.AsyncClient, guard: UrlGuard, delivery: Claimed, *, timeout: float
) -> Attempt:
    """POST the delivery once; an Attempt whatever happens (it never raises but on cancel)."""

    def ended(status: int | None, error: str | None, retry: float | None = None) -> Attempt:
        return Attempt(delivery.id, delivery.webhook_id, delivery.attempt, status, error, retry)

    try:
        target = await guard.target(delivery.url)
    except UrlRefused as refused:
        return ended(None, f"refused: {refused}")
    body = body_of(delivery)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Stockroom-Event": delivery.event_type.wire,
        "Stockroom-Delivery": to_global_id("WebhookDelivery", delivery.id),
        "Stockroom-Signature": signature(delivery.secret, int(time.time()), body),
    }
    url = httpx.URL(target.url)
    default_port = 443 if target.scheme == "https" else 80
    headers["Host"] = url.host if target.port == default_port else f"{url.host}:{target.port}"
    if target.address != target.host:
        # Connect to the address the guard checked, not to a second lookup of the name.
        url = url.copy_with(host=target.address)
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    try:
        async with asyncio.timeout(timeout):
            request = http.build_request("POST", url, content=body, headers=headers,
                                         extensions=extensions)
            response = await http.send(request, stream=True)
            try:
                received = bytearray()
                async for chunk in response.aiter_raw():
                    received += chunk
                    if len(received) >= MAX_RESPONSE_BYTES:
                        break
            finally:
                await response.aclose()
    except TimeoutError:
        return ended(None, f"no answer within {timeout:g} s")
    except httpx.HTTPError as exc:
        return ended(None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    except OSError as exc:
        return ended(None, f"{type(exc).__name__}: {exc}")
    status = response.status_code
    if 200 <= status < 300:
        return ended(status, None)
    retry = _retry_after(response.headers.get("retry-after")) if status in (429, 503) else None
    excerpt = _excerpt(bytes(received))
    reason = f"HTTP {status}" + (f": {excerpt}" if excerpt else "")
    if 300 <= status < 400:
        reason = f"HTTP {status} (redirects are not followed)"
    return ended(status, reason, retry)
