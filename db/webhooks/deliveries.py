"""Deliveries: made from the event log, claimed by senders, and their attempts recorded.

**Making them.** One reader at a time follows the log from a shared cursor (the one
``webhook_cursor`` row, locked ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's single
writer serialises it) and, in the same transaction that moves the cursor, inserts a delivery
for every active webhook that wants each event. So an event that committed gets its
deliveries exactly once, whichever worker reads it and whenever: a worker that died while
reading rolls back and the next one reads the same rows again. Ids that are still open (a
transaction that took its id but has not committed) stay as gaps of the cursor, as in
``db/eventlog.py``, until the gap window has passed.

**Sending them.** A webhook's event deliveries go out in event order: only the oldest open
one of a webhook is claimable (its *head*), and the claimer takes the run of pending ones
behind it too. Claims are leases (``claimed_until``): a sender that dies loses its claim when
the lease lapses, and the next sender tries those deliveries again. Pings and redeliveries
stand outside the order and go out at once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import eventlog
from db.errors import ErrorCode, ServiceError
from db.eventlog import Position
from db.models import (
    DeliveryOrigin,
    DeliveryStatus,
    Webhook,
    WebhookCursor,
    WebhookDelivery,
    WebhookEventType,
    utcnow,
)
from db.models.webhooks import OPEN_EVENTS_SQL, OPEN_MANUAL_SQL
from db.webhooks.payloads import outgoing

CURSOR_ID = 1
READ_BATCH = 500
MARK_SECONDS = 0.1  # one (time, high) mark per interval, as the event feed keeps them
MAX_ERROR_LENGTH = 500
# Holes among the ids of the last minute stay open when the cursor jumps to now: longer than
# any gap window in use, and a hole held open too long only waits for nothing.
FAST_FORWARD_GAP_SECONDS = 60.0


# --- the cursor ---------------------------------------------------------------------------


@dataclass(slots=True)
class Cursor:
    row: WebhookCursor
    position: Position
    marks: list[list[float]]

    def advance(self, position: Position, now: float, gap_seconds: float) -> None:
        """Move to ``position``, giving up gaps older than the gap window."""
        marks = self.marks
        if marks and now - marks[-1][0] < MARK_SECONDS:
            marks[-1] = [marks[-1][0], float(position.high)]
        else:
            marks.append([now, float(position.high)])
        settled_before = now - gap_seconds - MARK_SECONDS
        while len(marks) > 1 and marks[1][0] <= settled_before:
            marks.pop(0)
        if marks[0][0] <= settled_before:
            position = position.forget_gaps_through(int(marks[0][1]))
        self.position = position.capped()

    def save(self, at: datetime) -> None:
        self.row.position = self.position.token(at)
        self.row.marks = [list(m) for m in self.marks]
        self.row.updated_at = at


async def _start(session: AsyncSession, gap_seconds: float) -> Position:
    return await eventlog.start_position(session, utcnow() - timedelta(seconds=gap_seconds))


async def _lock_cursor(session: AsyncSession, gap_seconds: float) -> Cursor | None:
    """The cursor, locked for this transaction; None while another worker holds it."""
    stmt = (
        select(WebhookCursor)
        .where(WebhookCursor.id == CURSOR_ID)
        .with_for_update(skip_locked=True)
    )
    row = (await session.scalars(stmt)).first()
    if row is None:
        exists_already = await session.scalar(
            select(WebhookCursor.id).where(WebhookCursor.id == CURSOR_ID)
        )
        if exists_already is not None:
            return None  # there, but locked by another worker's reader
        position = await _start(session, gap_seconds)
        row = WebhookCursor(id=CURSOR_ID, position="", marks=[])
        session.add(row)
        cursor = Cursor(row, position, [])
        cursor.save(utcnow())
        await session.flush()
        return cursor
    position, _ = Position.parse(row.position)
    return Cursor(row, position, [list(m) for m in row.marks])


async def fast_forward_if_idle(
    session: AsyncSession, webhook_id: int, gap_seconds: float = FAST_FORWARD_GAP_SECONDS
) -> None:
    """Before the first active webhook: move the cursor to now.

    With no active webhook the reader does not run, so the cursor stays where the last one
    left it; the log since then holds nothing for the new webhook (it only receives events
    committed after it was made), and skipping it saves reading up to a week of events.
    """
    others = await session.scalar(
        select(Webhook.id).where(Webhook.is_active, Webhook.id != webhook_id).limit(1)
    )
    if others is not None:
        return
    row = await session.get(WebhookCursor, CURSOR_ID, with_for_update=True)
    position = await _start(session, gap_seconds)
    if row is None:
        row = WebhookCursor(id=CURSOR_ID, position="", marks=[])
        session.add(row)
    cursor = Cursor(row, position, [])
    cursor.save(utcnow())
    await session.flush()


@dataclass(frozen=True, slots=True)
class Made:
    read: int  # log rows read
    made: int  # deliveries inserted
    locked: bool = False  # another worker was reading: nothing done here


async def make_deliveries(
    session: AsyncSession, *, gap_seconds: float, limit: int = READ_BATCH
) -> Made:
    """Read the next events after the cursor and insert their deliveries (one batch)."""
    cursor = await _lock_cursor(session, gap_seconds)
    if cursor is None:
        return Made(0, 0, locked=True)
    rows = await eventlog.read_new(session, cursor.position, limit)
    position = cursor.position
    logged = []
    for row in rows:
        position = position.after(row.id)
        decoded = row.decoded()
        if decoded is not None:
            logged.append(decoded)
    made = 0
    events = await outgoing(session, logged)
    if events:
        hooks = (
            await session.execute(
                select(Webhook.id, Webhook.events, Webhook.created_at).where(Webhook.is_active)
            )
        ).all()
        values: list[dict[str, Any]] = []
        for event in events:
            for hook_id, kinds, created_at in hooks:
                # A webhook receives the events committed after it was made.
                if event.kind.value in kinds and event.at >= created_at:
                    values.append({
                        "webhook_id": hook_id,
                        "origin": DeliveryOrigin.EVENT,
                        "event_type": event.kind,
                        "event_id": event.event_id,
                        "event_key": str(event.event_id),
                        "data": event.data,
                        "event_at": event.at,
                        "status": DeliveryStatus.PENDING,
                        "attempts": 0,
                        "next_attempt_at": event.at,
                        "created_at": utcnow(),
                    })
        if values:
            await session.execute(insert(WebhookDelivery), values)
            made = len(values)
    cursor.advance(position, time.time(), gap_seconds)
    cursor.save(utcnow())
    await session.flush()
    return Made(len(rows), made)


async def any_active(session: AsyncSession) -> bool:
    return (await session.scalar(select(Webhook.id).where(Webhook.is_active).limit(1))) is not None


# --- claiming and recording ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery in a sender's hands, with what it needs to send it."""

    id: int
    webhook_id: int
    url: str
    secret: str
    event_type: WebhookEventType
    event_key: str
    event_at: datetime
    data: dict[str, Any]
    attempt: int  # this attempt's number, from 1


_OPEN = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


def _open_events() -> Any:
    """Open event deliveries, spelled exactly as the partial index ``ix_webhook_deliveries_
    open_events`` (webhook, id) says it: as literal SQL, since neither database can use a
    partial index for a predicate whose values arrive as bound parameters."""
    return text(OPEN_EVENTS_SQL)


def _open_manual() -> Any:
    """Open pings and redeliveries (``ix_webhook_deliveries_open_manual``)."""
    return text(OPEN_MANUAL_SQL)


def _unclaimed(now: datetime) -> Any:
    return or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now)


@dataclass(frozen=True, slots=True)
class Due:
    """What may be sent now (``ids``: heads and manual deliveries), and when the next of the
    rest is due (None: nothing is waiting)."""

    ids: list[int]
    next_at: datetime | None


async def due(session: AsyncSession, now: datetime) -> Due:
    """The deliveries that could be claimed now, found without touching the backlog.

    Only the oldest open event delivery of each active webhook (its head) can be sent; it is
    found by one index lookup per webhook, so the cost does not grow with the deliveries
    queued behind the heads (a receiver down for an hour leaves thousands).
    """
    head = (
        select(func.min(WebhookDelivery.id))
        .where(WebhookDelivery.webhook_id == Webhook.id, _open_events())
        .correlate(Webhook)
        .scalar_subquery()
    )
    head_ids = [
        i for i in (await session.scalars(select(head).where(Webhook.is_active))).all()
        if i is not None
    ]
    manual = (
        select(WebhookDelivery.id)
        .where(_open_manual())
    )
    ids = head_ids + list((await session.scalars(manual)).all())
    if not ids:
        return Due([], None)
    rows = (
        await session.execute(
            select(
                WebhookDelivery.id, WebhookDelivery.next_attempt_at, WebhookDelivery.claimed_until
            ).where(WebhookDelivery.id.in_(ids))
        )
    ).all()
    ready: list[int] = []
    waits: list[datetime] = []
    for delivery_id, next_at, claimed_until in rows:
        held = claimed_until is not None and claimed_until >= now
        if (next_at is None or next_at <= now) and not held:
            ready.append(delivery_id)
        else:
            waits.append(max(t for t in (next_at, claimed_until) if t is not None))
    return Due(sorted(ready), min(waits) if waits else None)


async def claim(
    session: AsyncSession,
    *,
    sender: str,
    now: datetime,
    lease: timedelta,
    heads: int,
    run: int,
    candidates: Sequence[int] | None = None,
) -> list[list[Claimed]]:
    """Claim up to ``heads`` due deliveries, each with up to ``run`` more of its webhook
    queued behind it; runs are in the order they must be sent.

    ``candidates`` are the ids ``due`` found (looked up again here when not given). Each is
    locked ``FOR UPDATE SKIP LOCKED`` and checked again under the lock: another sender may
    have taken it, or sent it, since it was read.
    """
    if candidates is None:
        candidates = (await due(session, now)).ids
    if not candidates:
        return []
    locked = (
        select(WebhookDelivery.id, WebhookDelivery.webhook_id, WebhookDelivery.origin)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(
            WebhookDelivery.id.in_(list(candidates)),
            WebhookDelivery.status.in_(_OPEN),
            WebhookDelivery.next_attempt_at <= now,
            _unclaimed(now),
            or_(WebhookDelivery.origin != DeliveryOrigin.EVENT, Webhook.is_active),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(heads)
        .with_for_update(of=WebhookDelivery, skip_locked=True)
    )
    head_rows = (await session.execute(locked)).all()
    runs: list[list[int]] = []
    for delivery_id, webhook_id, origin in head_rows:
        ids = [delivery_id]
        if origin is DeliveryOrigin.EVENT:
            older = await session.scalar(
                select(WebhookDelivery.id)
                .where(WebhookDelivery.webhook_id == webhook_id, _open_events(),
                       WebhookDelivery.id < delivery_id)
                .limit(1)
            )
            if older is not None:
                continue  # no longer the head (an older one reopened): the order holds
            if run > 0:
                behind = (
                    select(WebhookDelivery.id)
                    .where(
                        WebhookDelivery.webhook_id == webhook_id,
                        _open_events(),
                        WebhookDelivery.status == DeliveryStatus.PENDING,
                        WebhookDelivery.id > delivery_id,
                        _unclaimed(now),
                    )
                    .order_by(WebhookDelivery.id)
                    .limit(run)
                    .with_for_update(skip_locked=True)
                )
                # Only an unbroken run: a row locked elsewhere ends it, so the order holds.
                ids += list((await session.scalars(behind)).all())
        runs.append(ids)
    every = [i for ids in runs for i in ids]
    if not every:
        return []
    until = now + lease
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(every))
        .values(
            claimed_by=sender,
            claimed_until=until,
            attempts=WebhookDelivery.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    rows = (
        await session.execute(
            select(WebhookDelivery, Webhook.url, Webhook.secret)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(WebhookDelivery.id.in_(every))
        )
    ).all()
    by_id = {
        d.id: Claimed(
            d.id, d.webhook_id, url, secret, d.event_type, d.event_key, d.event_at, d.data,
            d.attempts,
        )
        for d, url, secret in rows
    }
    return [[by_id[i] for i in ids if i in by_id] for ids in runs]


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one attempt ended: a status code, an error, or both (a non-2xx answer)."""

    delivery_id: int
    webhook_id: int
    attempt: int
    status_code: int | None
    error: str | None
    retry_after: float | None = None  # seconds, from a 429 or 503's Retry-After

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class Recorded:
    delivered: int
    failed: int
    gave_up: int
    deactivated: list[int]  # webhooks switched off by this batch of results


async def record(
    session: AsyncSession,
    sender: str,
    attempts: Sequence[Attempt],
    unsent: Sequence[int],
    *,
    now: datetime,
    max_attempts: int,
    backoff: Any,
    deactivate_after: int,
) -> Recorded:
    """Store the attempts' outcomes and hand back claimed deliveries that were not sent.

    ``backoff(attempt, retry_after)`` gives the seconds until the next attempt. Only claims
    still this sender's are touched: a lapsed one another sender took over is theirs now.
    """
    delivered = failed = gave_up = 0
    streaks: dict[int, int | None] = {}  # webhook -> give-ups to add (None: reset to 0)
    for attempt in attempts:
        mine = and_(
            WebhookDelivery.id == attempt.delivery_id,
            WebhookDelivery.claimed_by == sender,
            WebhookDelivery.attempts == attempt.attempt,
        )
        values: dict[str, Any] = {
            "response_status": attempt.status_code,
            "last_error": None if attempt.error is None else attempt.error[:MAX_ERROR_LENGTH],
            "claimed_by": None,
            "claimed_until": None,
        }
        if attempt.ok:
            values |= {"status": DeliveryStatus.DELIVERED, "delivered_at": now,
                       "next_attempt_at": None}
        elif attempt.attempt >= max_attempts:
            values |= {"status": DeliveryStatus.GAVE_UP, "next_attempt_at": None}
        else:
            delay = backoff(attempt.attempt, attempt.retry_after)
            values |= {"status": DeliveryStatus.FAILED,
                       "next_attempt_at": now + timedelta(seconds=delay)}
        result = await session.execute(
            update(WebhookDelivery).where(mine).values(values)
            .returning(WebhookDelivery.origin)
            .execution_options(synchronize_session=False)
        )
        origin = result.scalar_one_or_none()
        if origin is None:
            continue  # the claim lapsed and is someone else's now
        status = values["status"]
        if status is DeliveryStatus.DELIVERED:
            delivered += 1
            streaks[attempt.webhook_id] = None
        elif status is DeliveryStatus.GAVE_UP:
            gave_up += 1
            if origin is DeliveryOrigin.EVENT:
                previous = streaks.get(attempt.webhook_id, 0)
                streaks[attempt.webhook_id] = (previous or 0) + 1
        else:
            failed += 1
    if unsent:
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(unsent), WebhookDelivery.claimed_by == sender)
            .values(claimed_by=None, claimed_until=None, attempts=WebhookDelivery.attempts - 1)
            .execution_options(synchronize_session=False)
        )
    deactivated: list[int] = []
    for webhook_id, added in streaks.items():
        if added is None:
            await session.execute(
                update(Webhook).where(Webhook.id == webhook_id, Webhook.consecutive_failures > 0)
                .values(consecutive_failures=0)
            )
            continue
        streak = await session.scalar(
            update(Webhook).where(Webhook.id == webhook_id)
            .values(consecutive_failures=Webhook.consecutive_failures + added)
            .returning(Webhook.consecutive_failures)
        )
        if streak is not None and streak >= deactivate_after:
            switched = await session.scalar(
                update(Webhook).where(Webhook.id == webhook_id, Webhook.is_active)
                .values(
                    is_active=False,
                    updated_at=now,
                    disabled_reason=f"{streak} deliveries in a row gave up",
                )
                .returning(Webhook.id)
            )
            if switched is not None:
                deactivated.append(webhook_id)
    return Recorded(delivered, failed, gave_up, deactivated)


# --- by hand --------------------------------------------------------------------------------


async def ping(session: AsyncSession, webhook_id: int) -> WebhookDelivery:
    """A test delivery of its own kind, sent at once (also to an inactive webhook)."""
    webhook = await session.get(Webhook, webhook_id)
    if webhook is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such webhook", ["id"])
    now = utcnow()
    delivery = WebhookDelivery(
        webhook_id=webhook.id,
        origin=DeliveryOrigin.PING,
        event_type=WebhookEventType.PING,
        event_id=None,
        event_key=f"ping-{uuid.uuid4().hex}",
        data={"webhook_id": webhook.id, "message": "Ping from Stockroom"},
        event_at=now,
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    await session.flush()
    return delivery


async def redeliver(session: AsyncSession, delivery_id: int) -> WebhookDelivery:
    """A new delivery of the same event (same id, same data), sent at once."""
    original = await session.get(WebhookDelivery, delivery_id)
    if original is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such delivery", ["delivery_id"])
    if original.origin is DeliveryOrigin.PING:
        raise ServiceError(
            ErrorCode.INVALID, "A ping is not redelivered; send a new one", ["delivery_id"]
        )
    now = utcnow()
    copy = WebhookDelivery(
        webhook_id=original.webhook_id,
        origin=DeliveryOrigin.REDELIVERY,
        event_type=original.event_type,
        event_id=original.event_id,
        event_key=original.event_key,
        data=original.data,
        event_at=original.event_at,
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(copy)
    await session.flush()
    return copy


async def prune(session: AsyncSession, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` finished deliveries made before ``before``; how many."""
    oldest = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.created_at < before,
            WebhookDelivery.status.in_((DeliveryStatus.DELIVERED, DeliveryStatus.GAVE_UP)),
        )
        .order_by(WebhookDelivery.id)
        .limit(limit)
    )
    result = await session.execute(
        delete(WebhookDelivery)
        .where(WebhookDelivery.id.in_(oldest.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
