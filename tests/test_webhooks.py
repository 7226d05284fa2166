"""Webhooks in one process: the GraphQL contract, the secret, the URL guard, signing,
delivery with retries, order, ping and redelivery, switching off, and the delivery log.

Receivers are real HTTP servers on 127.0.0.1 (``tests/receiver.py``); the dispatcher runs in
the in-process app's lifespan as it does in ``stockroom serve``.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from api.webhooks import sender
from api.webhooks.guard import UrlGuard, UrlRefused
from db.models import WebhookEventType
from db.webhooks import Claimed
from tests.conftest import GraphQLClient, _client_for, make_settings
from tests.receiver import Receiver, verify
from tests.seeded import seeded_ids
from tests.webhook_helpers import (
    ADJUST,
    DELETE_WEBHOOK,
    PING,
    REDELIVER,
    ROTATE,
    UPDATE_WEBHOOK,
    WEBHOOKS,
    create_webhook,
    deliveries,
    eventually,
)

FAST = {"webhook_backoff": 0.1, "webhook_poll_seconds": 0.05, "webhook_timeout": 2.0,
        "event_poll_seconds": 0.1}


@asynccontextmanager
async def admin_app(url: str, **overrides: Any) -> AsyncIterator[GraphQLClient]:
    """An in-process app with these settings, and a client logged in as ADMIN."""
    async for client in _client_for(make_settings(url, **{**FAST, **overrides})):
        await client.login_as("admin")
        yield client


@pytest.fixture
async def admin(seeded_db) -> AsyncIterator[GraphQLClient]:
    async with admin_app(seeded_db.url) as client:
        yield client


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as r:
        yield r


async def adjust(client: GraphQLClient, delta: int = 1, sku: str = "SKU-00001") -> dict:
    [item], [warehouse] = await seeded_ids(client.data, [sku], ["BER-1"])
    data = await client.data(ADJUST, {"input": {"itemId": item, "warehouseId": warehouse,
                                                "delta": delta, "kind": "ADJUSTMENT"}})
    assert data["adjustStock"]["errors"] == []
    return data["adjustStock"]


def relay(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


# --- the contract -------------------------------------------------------------------------


async def test_the_secret_is_shown_once_and_only_its_hint_after(admin, receiver):
    created = await create_webhook(admin.data, receiver.url, ["STOCK_CHANGED", "LOW_STOCK"],
                                   description="ERP")
    secret, webhook = created["secret"], created["webhook"]
    assert secret.startswith("whsec_") and len(secret) >= 43  # 32 random bytes, encoded
    assert webhook["secretHint"] == secret[-4:]
    assert webhook["events"] == ["LOW_STOCK", "STOCK_CHANGED"]
    assert webhook["isActive"] is True and webhook["description"] == "ERP"

    listed = await admin.execute(WEBHOOKS, {"first": 10})
    node = await admin.execute(
        "query($id: ID!) { node(id: $id) { ... on Webhook { id url secretHint } } }",
        {"id": webhook["id"]},
    )
    updated = await admin.data(UPDATE_WEBHOOK, {"id": webhook["id"], "input": {
        "url": receiver.url, "events": ["STOCK_CHANGED"]}})
    for body in (listed, node, updated):
        assert secret not in str(body)
    assert listed["data"]["webhooks"]["totalCount"] == 1
    assert updated["updateWebhook"]["secret"] is None
    assert updated["updateWebhook"]["webhook"]["events"] == ["STOCK_CHANGED"]

    rotated = (await admin.data(ROTATE, {"id": webhook["id"]}))["rotateWebhookSecret"]
    assert rotated["secret"] != secret and rotated["secret"].startswith("whsec_")
    assert rotated["webhook"]["secretHint"] == rotated["secret"][-4:]

    deleted = (await admin.data(DELETE_WEBHOOK, {"id": webhook["id"]}))["deleteWebhook"]
    assert deleted == {"deletedId": webhook["id"], "errors": []}
    assert (await admin.data(WEBHOOKS, {}))["webhooks"]["totalCount"] == 0


async def test_only_admins_see_or_manage_webhooks(client, receiver):
    await client.login_as("manager")
    body = await client.execute(WEBHOOKS, {})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await client.execute(
        "mutation($i: WebhookInput!) { createWebhook(input: $i) { secret } }",
        {"i": {"url": receiver.url, "events": ["STOCK_CHANGED"]}},
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["data"] is None


@pytest.mark.parametrize(
    ("url", "events", "field", "message"),
    [
        ("ftp://example.com/x", ["STOCK_CHANGED"], ["input", "url"], "https://"),
        ("https://", ["STOCK_CHANGED"], ["input", "url"], "host"),
        ("https://user:pw@example.com/", ["STOCK_CHANGED"], ["input", "url"], "credentials"),
        ("https://example.com:99999/", ["STOCK_CHANGED"], ["input", "url"], "malformed"),
        ("https://example.com/" + "x" * 2100, ["STOCK_CHANGED"], ["input", "url"], "2048"),
        ("http://127.0.0.1/", [], ["input", "events"], "at least one"),
        ("http://127.0.0.1/", ["PING"], ["input", "events"], "pingWebhook"),
    ],
)
async def test_bad_settings_are_refused_with_the_field_at_fault(admin, url, events, field,
                                                                message):
    data = await admin.data(
        "mutation($i: WebhookInput!) { createWebhook(input: $i) { webhook { id } secret "
        "errors { code field message } } }",
        {"i": {"url": url, "events": events}},
    )
    payload = data["createWebhook"]
    assert payload["webhook"] is None and payload["secret"] is None
    [error] = payload["errors"]
    assert error["code"] == "INVALID" and error["field"] == field
    assert message in error["message"]
    assert (await admin.data(WEBHOOKS, {}))["webhooks"]["totalCount"] == 0


async def test_unknown_ids_are_not_found(admin, receiver):
    missing = relay("Webhook", 999_999)
    data = await admin.data(UPDATE_WEBHOOK, {"id": missing, "input": {
        "url": receiver.url, "events": ["STOCK_CHANGED"]}})
    assert data["updateWebhook"]["errors"][0]["code"] == "NOT_FOUND"
    data = await admin.data(PING, {"id": relay("Item", 1)})  # the wrong type of ID
    assert data["pingWebhook"]["errors"][0] == {
        "code": "NOT_FOUND", "field": ["id"], "message": "No such webhook"}
    data = await admin.data(REDELIVER, {"id": relay("WebhookDelivery", 999_999)})
    assert data["redeliverWebhook"]["errors"][0]["field"] == ["deliveryId"]


# --- where webhooks may point ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/hook",  # a host name that resolves to loopback
        "https://[::ffff:127.0.0.1]/hook",
        "https://192.168.1.10/",
        "https://100.64.0.1/",  # shared address space
        "https://224.0.0.1/",
        "https://0.0.0.0/",
        "http://127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/",
        "http://93.184.216.34/",  # public, but plain http outside dev
    ],
)
async def test_outside_dev_private_addresses_and_plain_http_are_refused(seeded_db, url):
    async with admin_app(seeded_db.url, env="prod") as admin:
        data = await admin.data(
            "mutation($i: WebhookInput!) { createWebhook(input: $i) { webhook { id } "
            "errors { code field message } } }",
            {"i": {"url": url, "events": ["STOCK_CHANGED"]}},
        )
        [error] = data["createWebhook"]["errors"]
        assert error["code"] == "INVALID" and error["field"] == ["input", "url"], error
        assert data["createWebhook"]["webhook"] is None


async def test_outside_dev_a_public_https_address_is_accepted(seeded_db):
    async with admin_app(seeded_db.url, env="prod") as admin:
        created = await create_webhook(admin.data, "https://93.184.216.34/hook",
                                       ["STOCK_CHANGED"])
        assert created["webhook"]["isActive"] is True


async def test_private_addresses_can_be_allowed_for_a_lab(seeded_db, receiver):
    async with admin_app(seeded_db.url, env="prod", webhook_allow_private=True) as admin:
        data = await admin.data(
            "mutation($i: WebhookInput!) { createWebhook(input: $i) { errors { message } } }",
            {"i": {"url": "https://10.0.0.1/hook", "events": ["STOCK_CHANGED"]}},
        )
        assert data["createWebhook"]["errors"] == []


async def test_the_guard_checks_again_at_send_time_and_pins_the_checked_address():
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    guard = UrlGuard(allow_private=False, require_https=True, resolver=rebinding)
    target = await guard.target("https://hooks.example.com/x")
    assert (target.address, target.host, target.port) == ("93.184.216.34", "hooks.example.com",
                                                         443)
    with pytest.raises(UrlRefused, match="loopback"):
        await guard.target("https://hooks.example.com/x")  # DNS changed since


async def test_a_refused_address_is_never_connected_to(receiver):
    guard = UrlGuard(allow_private=False, require_https=False)
    http = sender.client(1)
    try:
        attempt = await sender.send(http, guard, _claimed(receiver.url), timeout=2)
    finally:
        await http.aclose()
    assert not attempt.ok and attempt.status_code is None
    assert attempt.error is not None and "loopback" in attempt.error
    assert receiver.received == []


def _claimed(url: str, secret: str = "whsec_test") -> Claimed:
    return Claimed(1, 1, url, secret, WebhookEventType.STOCK_CHANGED, "41",
                   datetime(2026, 12, 2, tzinfo=UTC), {"item_id": 7, "sku": "A"}, 1)


# --- signing and sending --------------------------------------------------------------------


async def test_a_stock_change_arrives_signed_with_the_subscription_payload(admin, receiver):
    created = await create_webhook(admin.data, receiver.url, ["STOCK_CHANGED"])
    changed = await adjust(admin, delta=3)
    [request] = await receiver.until(1)
    assert verify(created["secret"], request.headers["stockroom-signature"], request.body)
    assert not verify("whsec_other", request.headers["stockroom-signature"], request.body)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("Stockroom-Webhooks/")
    assert request.headers["stockroom-event"] == "stock.changed"
    body = request.json
    assert set(body) == {"id", "type", "createdAt", "data"}
    assert body["type"] == "stock.changed"
    datetime.fromisoformat(body["createdAt"])
    data = body["data"]
    assert data["stockLevelId"] == changed["stockLevel"]["id"]
    assert data["movementId"] == changed["movement"]["id"]
    assert data["onHand"] == changed["stockLevel"]["onHand"] and data["delta"] == 3
    assert data["sku"] == "SKU-00001" and data["warehouseCode"] == "BER-1"
    assert data["kind"] == "ADJUSTMENT"
    [item], [warehouse] = await seeded_ids(admin.data, ["SKU-00001"], ["BER-1"])
    assert (data["itemId"], data["warehouseId"]) == (item, warehouse)

    async def delivered() -> list[dict]:
        rows = await deliveries(admin.data, created["webhook"]["id"])
        return rows if rows and rows[0]["status"] == "DELIVERED" else []

    [row] = await eventually(delivered, what="DELIVERED")
    assert request.headers["stockroom-delivery"] == row["id"]
    assert row["eventId"] == body["id"] and row["event"] == "STOCK_CHANGED"
    assert (row["attempts"], row["responseStatus"], row["lastError"]) == (1, 200, None)
    assert row["deliveredAt"] is not None and row["nextAttemptAt"] is None


async def test_only_events_after_creation_and_of_the_chosen_kinds_are_sent(admin, receiver):
    await adjust(admin, delta=1)  # before the webhook: not sent
    created = await create_webhook(admin.data, receiver.url, ["ITEM_UPDATED"])
    await adjust(admin, delta=1)  # a kind it did not ask for
    [item], _ = await seeded_ids(admin.data, ["SKU-00002"])
    await admin.data(
        'mutation($id: ID!) { updateItem(id: $id, input: {name: "Renamed"}) { errors { code } } }',
        {"id": item},
    )
    [request] = await receiver.until(1)
    assert request.json["type"] == "item.updated"
    assert request.json["data"]["item"]["name"] == "Renamed"
    assert request.json["data"]["itemId"] == item and request.json["data"]["sku"] == "SKU-00002"
    await _settle(admin, created["webhook"]["id"], 1)
    assert len(receiver.received) == 1


async def _settle(admin: GraphQLClient, webhook_id: str, count: int) -> list[dict]:
    async def done() -> list[dict]:
        rows = await deliveries(admin.data, webhook_id)
        closed = [r for r in rows if r["status"] in ("DELIVERED", "GAVE_UP")]
        return rows if len(closed) >= count and len(closed) == len(rows) else []

    result: list[dict] = await eventually(done, what=f"{count} finished deliveries")
    return result


async def test_failures_are_retried_with_backoff_in_event_order(admin, receiver):
    receiver.script = [500, 500]
    created = await create_webhook(admin.data, receiver.url, ["STOCK_CHANGED"])
    for _ in range(4):
        await adjust(admin, delta=1)
    await receiver.until(6)
    ids = receiver.ids()
    first = ids[0]
    assert ids[:3] == [first] * 3  # the head is retried; nothing overtakes it
    assert ids[3:] == sorted(ids[3:], key=int) and int(ids[3]) > int(first)
    assert len(set(ids)) == 4
    gaps = [b.at - a.at for a, b in zip(receiver.received[:2], receiver.received[1:3], strict=True)]
    assert gaps[0] >= 0.08 and gaps[1] >= 0.45  # 0.1 s, then 0.6 s, each -20 % at most
    rows = await _settle(admin, created["webhook"]["id"], 4)
    head = next(r for r in rows if r["eventId"] == first)
    assert head["attempts"] == 3 and head["status"] == "DELIVERED"
    assert head["responseStatus"] == 200


async def test_retry_after_on_429_is_honoured(admin, receiver):
    receiver.script = [429]
    receiver.extra_headers = {"Retry-After": "2"}
    created = await create_webhook(admin.data, receiver.url, ["STOCK_CHANGED"])
    await adjust(admin)
    await receiver.until(1)

    async def failed() -> list[dict]:
        rows = await deliveries(admin.data, created["webhook"]["id"], status="FAILED")
        return rows

    [row] = await eventually(failed, what="FAILED")
    assert row["responseStatus"] == 429 and row["lastError"].startswith("HTTP 429")
    wait = datetime.fromisoformat(row["nextAttemptAt"]) - datetime.now(UTC)
    assert timedelta(seconds=0.5) < wait <= timedelta(seconds=2.1)
    receiver.extra_headers = {}
    await receiver.until(2, timeout=10)
    assert receiver.received[1].at - receiver.received[0].at >= 1.5


def test_backoff_grows_sixfold_with_jitter_and_respects_retry_after():
    for attempt, expected in ((1, 10), (2, 60), (3, 360), (4, 2160)):
        delays = [sender.backoff(10, attempt, None) for _ in range(50)]
        assert all(0.8 * expected <= d <= 1.2 * expected for d in delays)
        assert len(set(delays)) > 1  # jittered
    assert sender.backoff(10, 30, None) <= sender.MAX_DELAY_SECONDS * 1.2
    assert sender.backoff(10, 1, 120.0) == 120.0


async def test_redirects_are_not_followed_and_answers_are_cut_short(admin, receiver):
    async with Receiver() as elsewhere:
        receiver.script = [302]
        receiver.extra_headers = {"Location": elsewhere.url}
        receiver.answer_body = b"x" * (2 * 1024 * 1024)
        created = await create_webhook(admin.data, receiver.url, ["STOCK_CHANGED"])
        await adjust(admin)
        await receiver.until(1)

        async def failed() -> list[dict]:
            return await deliveries(admin.data, created["webhook"]["id"], status="FAILED")

        [row] = await eventually(failed, what="FAILED")
        assert row["responseStatus"] == 302 and "not followed" in row["lastError"]
        assert elsewhere.received == []


async def test_a_ping_and_a_redelivery_go_out_at_once(admin, receiver):
    created = await create_webhook(admin.data, receiver.url, ["STOCK_CHANGED"])
    webhook_id = created["webhook"]["id"]
    ping = (await admin.data(PING, {"id": webhook_id}))["pingWebhook"]
    assert ping["errors"] == [] and ping["delivery"]["event"] == "PING"
    [request] = await receiver.until(1)
    assert request.json["type"] == "webhook.ping"
    assert request.json["id"] == ping["delivery"]["eventId"]
    assert request.json["data"]["webhookId"] == webhook_id
    assert verify(created["secret"], request.headers["stockroom-signature"], request.body)

    await adjust(admin)
    await receiver.until(2)
    rows = await _settle(admin, webhook_id, 2)
    event = next(r for r in rows if r["event"] == "STOCK_CHANGED")
    again = (await admin.data(REDELIVER, {"id": event["id"]}))["redeliverWebhook"]
    assert again["errors"] == [] and again["delivery"]["redelivery"] is True
    assert again["delivery"]["eventId"] == event["eventId"]
    assert again["delivery"]["id"] != event["id"]
    await receiver.until(3)
    assert receiver.received[2].body == receiver.received[1].body  # same id, same data
    ping_row = next(r for r in rows if r["event"] == "PING")
    refused = (await admin.data(REDELIVER, {"id": ping_row["id"]}))["redeliverWebhook"]
    assert refused["errors"][0]["code"] == "INVALID"


async def test_a_webhook_whose_deliveries_keep_giving_up_is_switched_off(seeded_db, receiver):
    receiver.status = 500
    async with admin_app(seeded_db.url, webhook_max_attempts=1) as admin:
        created = await create_webhook(admin.data, receiver.url, ["STOCK_CHANGED"])
        webhook_id = created["webhook"]["id"]
        for _ in range(7):
            await adjust(admin)

        async def off() -> dict:
            data = await admin.data(
                "query($id: ID!) { node(id: $id) { ... on Webhook { isActive disabledReason } } "
                "}",
                {"id": webhook_id},
            )
            node: dict = data["node"]
            return node if not node["isActive"] else {}

        node = await eventually(off, what="the webhook switched off")
        assert "5 deliveries in a row gave up" in node["disabledReason"]
        await receiver.until(5)
        metrics = admin.app.state.stockroom.metrics
        assert metrics.registry.get_sample_value("stockroom_webhooks_deactivated_total") == 1
        assert metrics.registry.get_sample_value(
            "stockroom_webhook_deliveries_total", {"outcome": "gave_up"}) >= 5
        sent = len(receiver.received)
        await adjust(admin)  # switched off: nothing new is made for it
        gave_up = await deliveries(admin.data, webhook_id, status="GAVE_UP")
        assert len(gave_up) >= 5 and all(r["attempts"] == 1 for r in gave_up)
        assert len(receiver.received) <= 7 and sent >= 5

        receiver.status = 200
        data = await admin.data(UPDATE_WEBHOOK, {"id": webhook_id, "input": {
            "url": receiver.url, "events": ["STOCK_CHANGED"], "isActive": True}})
        assert data["updateWebhook"]["webhook"]["isActive"] is True
        assert data["updateWebhook"]["webhook"]["disabledReason"] is None


async def test_a_slow_receiver_times_out_and_others_keep_flowing(seeded_db, receiver):
    async with (
        Receiver(delay=3.0) as slow,
        admin_app(seeded_db.url, webhook_timeout=0.5) as admin,
    ):
        slow_hook = await create_webhook(admin.data, slow.url, ["STOCK_CHANGED"])
        await create_webhook(admin.data, receiver.url, ["STOCK_CHANGED"])
        for _ in range(5):
            await adjust(admin)
        await receiver.until(5, timeout=10)
        assert len(set(receiver.ids())) == 5

        async def timed_out() -> list[dict]:
            return await deliveries(admin.data, slow_hook["webhook"]["id"], status="FAILED")

        [row] = await eventually(timed_out, what="the slow delivery FAILED")
        assert row["lastError"] == "no answer within 0.5 s" and row["responseStatus"] is None


def test_the_readme_receiver_verifies_a_real_signature():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert "def verified" in code and len(code.strip().splitlines()) <= 10
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    claimed = _claimed("https://example.com/hook", secret="whsec_readme")
    body = sender.body_of(claimed)
    header = sender.signature("whsec_readme", int(time.time()), body)
    assert namespace["verified"]("whsec_readme", header, body)
    assert not namespace["verified"]("whsec_readme", header, body + b" ")
    stale = sender.signature("whsec_readme", int(time.time()) - 600, body)
    assert not namespace["verified"]("whsec_readme", stale, body)


async def test_an_expired_reservation_is_sent_once_the_sweeper_releases_it(admin, receiver):
    await create_webhook(admin.data, receiver.url, ["RESERVATION_EXPIRED"])
    [item], [warehouse] = await seeded_ids(admin.data, ["SKU-00001"], ["BER-1"])
    soon = (datetime.now(UTC) + timedelta(seconds=0.5)).isoformat()
    data = await admin.data(
        "mutation($i: ReserveStockInput!) { reserveStock(input: $i) { reservation { id } "
        "errors { code message } } }",
        {"i": {"itemId": item, "warehouseId": warehouse, "quantity": 2, "expiresAt": soon}},
    )
    assert data["reserveStock"]["errors"] == []
    reservation = data["reserveStock"]["reservation"]["id"]
    [request] = await receiver.until(1, timeout=20)
    assert request.json["type"] == "reservation.expired"
    assert request.json["data"] == {
        "reservationId": reservation, "itemId": item, "sku": "SKU-00001",
        "warehouseId": warehouse, "warehouseCode": "BER-1", "quantity": 2,
    }


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_record_stuck_behind_the_writer_lock_past_its_lease_is_not_sent_twice(
    seeded_db, receiver, monkeypatch
):
    import sqlite3

    from api.webhooks import dispatcher

    # given a lease that lapses at once (no slack beyond a short timeout)
    monkeypatch.setattr(dispatcher, "LEASE_SLACK_SECONDS", 0.0)
    path = seeded_db.url.removeprefix("sqlite+aiosqlite:///")
    held = asyncio.Event()

    def hold_the_writer_lock() -> None:
        connection = sqlite3.connect(path, timeout=30)
        connection.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(1.5)
        connection.rollback()
        connection.close()

    async with admin_app(seeded_db.url, webhook_timeout=0.3) as admin:
        await create_webhook(admin.data, receiver.url, ["STOCK_CHANGED"])
        loop = asyncio.get_running_loop()
        # when another writer holds SQLite's lock the moment the first delivery is sent,
        # so that its result cannot be recorded until well after its claim lapsed
        receiver.on_request = lambda _: loop.call_soon_threadsafe(
            lambda: held.is_set() or asyncio.ensure_future(asyncio.to_thread(hold_the_writer_lock)))
        for _ in range(3):
            await adjust(admin)
        await receiver.until(3, timeout=20)
        await asyncio.sleep(2.0)
    # then each event went out once: this worker never re-claims what it has in flight
    assert len(receiver.ids()) == len(set(receiver.ids())) == 3
