"""Webhook endpoints: create, change, delete, rotate the secret, and the reads of the admin UI.

Only the shape of a URL is checked here; whether its host may be reached (https outside dev,
no private addresses) is the network policy of ``api/webhooks/guard.py``, applied before these
run and again before every send.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from db import batch, events, validation
from db.errors import ErrorCode, ServiceError
from db.events import WebhooksChanged
from db.models import DeliveryStatus, Webhook, WebhookDelivery, WebhookEventType, utcnow
from db.pagination import Page, PageArgs, SortKey, count, paginate
from db.webhooks.deliveries import fast_forward_if_idle

MAX_URL_LENGTH = 2048
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # of randomness, before encoding
SUBSCRIBABLE = frozenset(WebhookEventType) - {WebhookEventType.PING}


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """``WebhookInput`` as the service takes it."""

    url: str
    events: Sequence[WebhookEventType]
    description: str | None = None
    is_active: bool | None = None


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def check_url_shape(url: str) -> str:
    """The URL, trimmed, if it is an absolute http(s) URL with a host; INVALID on ``url``."""
    clean = url.strip()
    if not clean:
        raise ServiceError(ErrorCode.INVALID, "URL must not be empty", ["url"])
    if len(clean) > MAX_URL_LENGTH:
        raise ServiceError(
            ErrorCode.INVALID, f"URL must be at most {MAX_URL_LENGTH} characters", ["url"]
        )
    try:
        parts = urlsplit(clean)
        port = parts.port  # raises on a port that is not a number or out of range
    except ValueError:
        raise ServiceError(ErrorCode.INVALID, "URL is malformed", ["url"]) from None
    if parts.scheme not in ("http", "https"):
        raise ServiceError(ErrorCode.INVALID, "URL must start with https:// or http://", ["url"])
    if not parts.hostname:
        raise ServiceError(ErrorCode.INVALID, "URL must name a host", ["url"])
    if parts.username is not None or parts.password is not None:
        # They would travel in every log line that names the URL.
        raise ServiceError(ErrorCode.INVALID, "URL must not carry credentials", ["url"])
    if port == 0:
        raise ServiceError(ErrorCode.INVALID, "URL port must not be 0", ["url"])
    if any(ch.isspace() or ord(ch) < 0x20 for ch in clean):
        raise ServiceError(ErrorCode.INVALID, "URL must not contain spaces", ["url"])
    return clean


def _events(kinds: Sequence[WebhookEventType]) -> list[str]:
    if not kinds:
        raise ServiceError(ErrorCode.INVALID, "Choose at least one event", ["events"])
    if WebhookEventType.PING in kinds:
        raise ServiceError(
            ErrorCode.INVALID, "PING is sent by pingWebhook, not subscribed to", ["events"]
        )
    return sorted({kind.value for kind in kinds})


def _apply(webhook: Webhook, request: WebhookRequest) -> None:
    webhook.url = check_url_shape(request.url)
    webhook.events = _events(request.events)
    webhook.description = validation.optional_text(
        request.description, ["description"], max_length=2_000, label="Description"
    )
    if request.is_active is not None:
        if request.is_active and not webhook.is_active:
            # Switched back on by hand: the give-ups that switched it off are forgiven.
            webhook.consecutive_failures = 0
            webhook.disabled_reason = None
        webhook.is_active = request.is_active


async def _get(session: AsyncSession, webhook_id: int) -> Webhook:
    webhook = await session.get(Webhook, webhook_id)
    if webhook is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such webhook", ["id"])
    return webhook


def _changed(session: AsyncSession, webhook: Webhook) -> None:
    # Logged like any change, so every worker's dispatcher hears of it from the log.
    events.record(session, WebhooksChanged(webhook.id))


async def create_webhook(
    session: AsyncSession, request: WebhookRequest, *, actor_id: int | None
) -> tuple[Webhook, str]:
    """The new webhook and its secret (shown to the caller this once)."""
    webhook = Webhook(is_active=True, secret=new_secret(), created_by=actor_id)
    _apply(webhook, request)
    webhook.created_at = webhook.updated_at = utcnow()
    session.add(webhook)
    await session.flush()
    await fast_forward_if_idle(session, webhook.id)
    _changed(session, webhook)
    return webhook, webhook.secret


async def update_webhook(
    session: AsyncSession, webhook_id: int, request: WebhookRequest
) -> Webhook:
    webhook = await _get(session, webhook_id)
    was_active = webhook.is_active
    _apply(webhook, request)
    webhook.updated_at = utcnow()
    await session.flush()
    if webhook.is_active and not was_active:
        await fast_forward_if_idle(session, webhook.id)
    _changed(session, webhook)
    return webhook


async def delete_webhook(session: AsyncSession, webhook_id: int) -> int:
    """Delete the webhook and its delivery log."""
    webhook = await _get(session, webhook_id)
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id))
    await session.delete(webhook)
    await session.flush()
    _changed(session, webhook)
    return webhook_id


async def rotate_secret(session: AsyncSession, webhook_id: int) -> tuple[Webhook, str]:
    """A new secret at once: deliveries from now on are signed with it."""
    webhook = await _get(session, webhook_id)
    webhook.secret = new_secret()
    webhook.updated_at = utcnow()
    await session.flush()
    _changed(session, webhook)
    return webhook, webhook.secret


async def list_webhooks(session: AsyncSession, args: PageArgs) -> Page[Webhook]:
    return await paginate(session, select(Webhook), [SortKey(Webhook.id)], args)


async def count_webhooks(session: AsyncSession) -> int:
    return await count(session, select(Webhook))


async def webhooks_by_id(session: AsyncSession, ids: Sequence[int]) -> list[Webhook | None]:
    return await batch.by_ids(session, Webhook, ids)


async def get_delivery(session: AsyncSession, delivery_id: int) -> WebhookDelivery | None:
    return await session.get(WebhookDelivery, delivery_id)


def _deliveries(
    webhook_id: int, status: DeliveryStatus | None
) -> Select[WebhookDelivery]:
    stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    return stmt


async def list_deliveries(
    session: AsyncSession, webhook_id: int, status: DeliveryStatus | None, args: PageArgs
) -> Page[WebhookDelivery]:
    """A webhook's deliveries, newest first."""
    keys = [SortKey(WebhookDelivery.id, descending=True)]
    return await paginate(session, _deliveries(webhook_id, status), keys, args)


async def count_deliveries(
    session: AsyncSession, webhook_id: int, status: DeliveryStatus | None
) -> int:
    return await count(session, _deliveries(webhook_id, status))
