"""Outbound webhooks in GraphQL (ADMIN only): endpoints, their delivery log, and the
mutations that manage them. Sending is ``api/webhooks``; the rows are ``db/webhooks``.

The signing secret appears in exactly two places: the payload of ``createWebhook`` and of
``rotateWebhookSecret``. Every other read shows only its last four characters.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, TypeAlias

import strawberry

from db import webhooks
from db.errors import ServiceError
from db.models import DeliveryStatus as DeliveryStatusEnum
from db.models import Role, WebhookEventType
from db.models import Webhook as WebhookRow
from db.models import WebhookDelivery as DeliveryRow
from schema.context import Context
from schema.errors import ARGUMENTS, INPUT, UserError
from schema.ids import pk_of
from schema.mutations import DeletePayload, run
from schema.permissions import IsAdmin
from schema.relay import After, Connection, First, Node, global_id, page_args, paged

strawberry.enum(
    WebhookEventType,
    name="WebhookEvent",
    description="What a webhook is sent: stock changes, low-stock alerts, item changes, "
    "expired reservations. PING is only ever sent by `pingWebhook`.",
)
strawberry.enum(
    DeliveryStatusEnum,
    name="WebhookDeliveryStatus",
    description="PENDING: not tried yet; DELIVERED: answered 2xx; FAILED: will be retried at "
    "`nextAttemptAt`; GAVE_UP: out of attempts.",
)
WebhookEvent: TypeAlias = WebhookEventType
WebhookDeliveryStatus: TypeAlias = DeliveryStatusEnum


@strawberry.type(description="One event on its way to one webhook, and how its attempts went.")
class WebhookDelivery(Node):
    id: strawberry.ID = global_id("WebhookDelivery")
    event: WebhookEvent = strawberry.field(description="The kind of event.")
    event_id: str = strawberry.field(
        description="The event's id, the body's `id`: the same for every attempt and every "
        "redelivery of one event, so receivers dedupe on it."
    )
    status: WebhookDeliveryStatus = strawberry.field(description="Where the delivery stands.")
    attempts: int = strawberry.field(description="Attempts made so far.")
    response_status: int | None = strawberry.field(
        description="HTTP status of the last attempt's answer; null when none came."
    )
    last_error: str | None = strawberry.field(
        description="Why the last attempt failed (a short excerpt of an answer at most)."
    )
    next_attempt_at: datetime | None = strawberry.field(
        description="When it is tried next (UTC); null once delivered or given up."
    )
    created_at: datetime = strawberry.field(description="When it was queued (UTC).")
    delivered_at: datetime | None = strawberry.field(
        description="When a 2xx answer came (UTC)."
    )
    redelivery: bool = strawberry.field(description="Queued by `redeliverWebhook`.")
    pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: DeliveryRow) -> WebhookDelivery:
        return cls(
            pk=row.id,
            event=row.event_type,
            event_id=row.event_key,
            status=row.status,
            attempts=row.attempts,
            response_status=row.response_status,
            last_error=row.last_error,
            next_attempt_at=row.next_attempt_at if row.status.open else None,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
            redelivery=row.origin == "REDELIVERY",
        )


StatusArg = Annotated[
    WebhookDeliveryStatus | None,
    strawberry.argument(description="Only deliveries in this status."),
]


@strawberry.type(description="An endpoint that is sent signed events as they happen.")
class Webhook(Node):
    id: strawberry.ID = global_id("Webhook")
    url: str = strawberry.field(description="Where events are POSTed.")
    events: list[WebhookEvent] = strawberry.field(description="The kinds of event it gets.")
    description: str | None = strawberry.field(description="What it is for.")
    is_active: bool = strawberry.field(
        description="Whether events are sent to it. Switched off after 5 deliveries in a row "
        "gave up; switch it on again with `updateWebhook`."
    )
    disabled_reason: str | None = strawberry.field(
        description="Why it was switched off, when deliveries giving up did it."
    )
    secret_hint: str = strawberry.field(
        description="The last 4 characters of its signing secret."
    )
    created_at: datetime = strawberry.field(description="When it was created (UTC).")
    updated_at: datetime = strawberry.field(description="When it last changed (UTC).")
    pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: WebhookRow) -> Webhook:
        return cls(
            pk=row.id,
            url=row.url,
            events=[WebhookEventType(kind) for kind in row.events],
            description=row.description,
            is_active=row.is_active,
            disabled_reason=row.disabled_reason,
            secret_hint=row.secret_hint,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(description="Its deliveries, newest first.")
    async def deliveries(
        self,
        info: strawberry.Info[Context],
        first: First = None,
        after: After = None,
        status: StatusArg = None,
    ) -> Connection[WebhookDelivery]:
        reader, args = info.context.reader, page_args(first, after)
        return await paged(
            lambda: reader(webhooks.list_deliveries, self.pk, status, args),
            WebhookDelivery.from_row,
            lambda: reader(webhooks.count_deliveries, self.pk, status),
        )


def _admin(context: Context) -> bool:
    user = context.user
    return user is not None and user.role.includes(Role.ADMIN)


async def resolve_webhook_node(context: Context, pk: int) -> Webhook | None:
    """``node(id:)`` for a Webhook: ADMIN only, like everything about webhooks."""
    if not _admin(context):
        return None
    [row] = await context.reader(webhooks.webhooks_by_id, [pk])
    return None if row is None else Webhook.from_row(row)


async def resolve_delivery_node(context: Context, pk: int) -> WebhookDelivery | None:
    if not _admin(context):
        return None
    row = await context.reader(webhooks.get_delivery, pk)
    return None if row is None else WebhookDelivery.from_row(row)


@strawberry.type
class WebhookQuery:
    @strawberry.field(description="All webhooks, oldest first (ADMIN).",
                      permission_classes=[IsAdmin])
    async def webhooks(
        self, info: strawberry.Info[Context], first: First = None, after: After = None
    ) -> Connection[Webhook]:
        reader, args = info.context.reader, page_args(first, after)
        return await paged(
            lambda: reader(webhooks.list_webhooks, args),
            Webhook.from_row,
            lambda: reader(webhooks.count_webhooks),
        )


@strawberry.input(description="A webhook's settings.")
class WebhookInput:
    url: str = strawberry.field(
        description="Where to POST: https (http only in dev); outside dev it must not "
        "resolve to a loopback, private, link-local or metadata address."
    )
    events: list[WebhookEvent] = strawberry.field(description="The kinds of event to send.")
    description: str | None = strawberry.field(default=None, description="What it is for.")
    is_active: bool | None = strawberry.field(
        default=None, description="Send events to it (default: true when created; unchanged "
        "when updating)."
    )

    def to_request(self) -> webhooks.WebhookRequest:
        return webhooks.WebhookRequest(
            url=self.url,
            events=list(self.events),
            description=self.description,
            is_active=self.is_active,
        )


@strawberry.type(description="Result of a webhook mutation.")
class WebhookPayload:
    webhook: Webhook | None = strawberry.field(description="The webhook as stored now.")
    secret: str | None = strawberry.field(
        description="Its signing secret, shown here once: by createWebhook and "
        "rotateWebhookSecret only (null otherwise). Keep it where the receiver can read it."
    )
    errors: list[UserError] = strawberry.field(description="Why it failed, when it did.")


@strawberry.type(description="Result of queuing a delivery by hand.")
class WebhookDeliveryPayload:
    delivery: WebhookDelivery | None = strawberry.field(
        description="The delivery queued; it is sent at once."
    )
    errors: list[UserError] = strawberry.field(description="Why it failed, when it did.")


WebhookIdArg = Annotated[strawberry.ID, strawberry.argument(description="The webhook.")]
InputArg = Annotated[WebhookInput, strawberry.argument(description="Its settings.")]


async def _url_refused(context: Context, url: str) -> list[UserError]:
    """The URL policy, checked before any transaction opens (it may look up DNS)."""
    try:
        await context.services.webhooks.check_url(url)
    except ServiceError as error:
        return [UserError.from_service(error, INPUT)]
    return []


def _secret_payload(
    result: tuple[WebhookRow, str] | None, errors: list[UserError]
) -> WebhookPayload:
    if result is None:
        return WebhookPayload(webhook=None, secret=None, errors=errors)
    row, secret = result
    return WebhookPayload(webhook=Webhook.from_row(row), secret=secret, errors=errors)


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(
        description="Create a webhook (ADMIN). Its signing secret is in this payload only.",
        permission_classes=[IsAdmin],
    )
    async def create_webhook(self, info: strawberry.Info[Context], input: InputArg
                             ) -> WebhookPayload:
        context = info.context
        if refused := await _url_refused(context, input.url):
            return WebhookPayload(webhook=None, secret=None, errors=refused)
        actor = context.user.id if context.user is not None else None
        request = input.to_request()
        result, errors = await run(
            context, lambda s: webhooks.create_webhook(s, request, actor_id=actor)
        )
        return _secret_payload(result, errors)

    @strawberry.mutation(description="Change a webhook (ADMIN).", permission_classes=[IsAdmin])
    async def update_webhook(
        self, info: strawberry.Info[Context], id: WebhookIdArg, input: InputArg
    ) -> WebhookPayload:
        context = info.context
        if refused := await _url_refused(context, input.url):
            return WebhookPayload(webhook=None, secret=None, errors=refused)
        request = input.to_request()
        row, errors = await run(
            context,
            lambda s: webhooks.update_webhook(s, pk_of(id, "Webhook", "id"), request),
        )
        webhook = None if row is None else Webhook.from_row(row)
        return WebhookPayload(webhook=webhook, secret=None, errors=errors)

    @strawberry.mutation(
        description="Delete a webhook and its delivery log (ADMIN).",
        permission_classes=[IsAdmin],
    )
    async def delete_webhook(self, info: strawberry.Info[Context], id: WebhookIdArg
                             ) -> DeletePayload:
        deleted, errors = await run(
            info.context, lambda s: webhooks.delete_webhook(s, pk_of(id, "Webhook", "id"))
        )
        return DeletePayload(deleted_id=None if deleted is None else id, errors=errors)

    @strawberry.mutation(
        description="Give a webhook a new signing secret, in force at once (ADMIN). The new "
        "secret is in this payload only.",
        permission_classes=[IsAdmin],
    )
    async def rotate_webhook_secret(
        self, info: strawberry.Info[Context], id: WebhookIdArg
    ) -> WebhookPayload:
        result, errors = await run(
            info.context, lambda s: webhooks.rotate_secret(s, pk_of(id, "Webhook", "id"))
        )
        return _secret_payload(result, errors)

    @strawberry.mutation(
        description="Send a delivery's event again, now, as a new delivery with the same "
        "event id and data (ADMIN).",
        permission_classes=[IsAdmin],
    )
    async def redeliver_webhook(
        self,
        info: strawberry.Info[Context],
        delivery_id: Annotated[
            strawberry.ID, strawberry.argument(description="The delivery to send again.")
        ],
    ) -> WebhookDeliveryPayload:
        row, errors = await run(
            info.context,
            lambda s: webhooks.redeliver(
                s, pk_of(delivery_id, "WebhookDelivery", "delivery_id", "delivery")
            ),
            ARGUMENTS,
        )
        if row is not None:
            info.context.services.webhooks.wake()
        delivery = None if row is None else WebhookDelivery.from_row(row)
        return WebhookDeliveryPayload(delivery=delivery, errors=errors)

    @strawberry.mutation(
        description="Send a webhook a test event of type `webhook.ping` now, also while it is "
        "switched off (ADMIN).",
        permission_classes=[IsAdmin],
    )
    async def ping_webhook(self, info: strawberry.Info[Context], id: WebhookIdArg
                           ) -> WebhookDeliveryPayload:
        row, errors = await run(
            info.context, lambda s: webhooks.ping(s, pk_of(id, "Webhook", "id")), ARGUMENTS
        )
        if row is not None:
            info.context.services.webhooks.wake()
        delivery = None if row is None else WebhookDelivery.from_row(row)
        return WebhookDeliveryPayload(delivery=delivery, errors=errors)

