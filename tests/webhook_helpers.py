"""GraphQL documents and helpers shared by the webhook tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

WEBHOOK_FIELDS = "id url events description isActive disabledReason secretHint createdAt"

CREATE_WEBHOOK = f"""mutation($input: WebhookInput!) {{ createWebhook(input: $input) {{
  webhook {{ {WEBHOOK_FIELDS} }} secret errors {{ code field message }} }} }}"""

UPDATE_WEBHOOK = f"""mutation($id: ID!, $input: WebhookInput!) {{
  updateWebhook(id: $id, input: $input) {{
    webhook {{ {WEBHOOK_FIELDS} }} secret errors {{ code field message }} }} }}"""

ROTATE = f"""mutation($id: ID!) {{ rotateWebhookSecret(id: $id) {{
  webhook {{ {WEBHOOK_FIELDS} }} secret errors {{ code field message }} }} }}"""

DELETE_WEBHOOK = """mutation($id: ID!) { deleteWebhook(id: $id) {
  deletedId errors { code field message } } }"""

DELIVERY_FIELDS = """id event eventId status attempts responseStatus lastError nextAttemptAt
  createdAt deliveredAt redelivery"""

PING = f"""mutation($id: ID!) {{ pingWebhook(id: $id) {{
  delivery {{ {DELIVERY_FIELDS} }} errors {{ code field message }} }} }}"""

REDELIVER = f"""mutation($id: ID!) {{ redeliverWebhook(deliveryId: $id) {{
  delivery {{ {DELIVERY_FIELDS} }} errors {{ code field message }} }} }}"""

WEBHOOKS = f"""query($first: Int, $after: String) {{ webhooks(first: $first, after: $after) {{
  totalCount edges {{ node {{ {WEBHOOK_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"""

DELIVERIES = f"""query($id: ID!, $status: WebhookDeliveryStatus, $first: Int) {{ node(id: $id) {{
  ... on Webhook {{ isActive disabledReason deliveries(first: $first, status: $status) {{
    totalCount edges {{ node {{ {DELIVERY_FIELDS} }} }} }} }} }} }}"""

ADJUST = """mutation($input: AdjustStockInput!) { adjustStock(input: $input) {
  stockLevel { id onHand } movement { id } errors { code message } } }"""

Run = Callable[[str, dict[str, Any]], Awaitable[Any]]


async def create_webhook(run: Run, url: str, events: list[str], **extra: Any) -> dict[str, Any]:
    data = await run(CREATE_WEBHOOK, {"input": {"url": url, "events": events, **extra}})
    payload: dict[str, Any] = data["createWebhook"]
    assert payload["errors"] == [], payload
    return payload


async def deliveries(run: Run, webhook_id: str, **variables: Any) -> list[dict[str, Any]]:
    data = await run(DELIVERIES, {"id": webhook_id, "first": 100, **variables})
    return [edge["node"] for edge in data["node"]["deliveries"]["edges"]]


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30,
                     what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
