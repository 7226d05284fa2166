"""The event log: the outbox every unit of work writes, and the reads that follow it.

Each recorded event is inserted into ``events`` by the transaction that made the change, as
its last statement before COMMIT, so an event exists exactly when its change does. Workers
read the log in id order and hand new rows on; the broker only says there is something new.

**Ordering: a bounded gap window.** Ids come from a sequence before commit, so on PostgreSQL
id 41 can commit after id 42. A reader that has seen 42 but not 41 keeps 41 open as a gap and
asks for it again on every read: if it commits within the window it is delivered then (after
42); once the window has passed it is taken for a rolled-back transaction and dropped. As the
rows are written just before COMMIT the window only has to outlast one INSERT and the COMMIT.
Snapshot ordering (``pg_current_snapshot()``'s xmin) was the alternative; it holds every
reader behind the oldest open write transaction in the whole cluster, so one long import
would stall every subscriber, where an open gap delays nothing but itself. Changes to one
stock level still arrive in order: the second waits for the first's row lock and takes its ids
after the first committed. SQLite has one writer at a time and AUTOINCREMENT ids that roll back
with their transaction, so there ids commit in order and no gap opens.

A ``Position`` is what a reader has handed on: every id up to ``high`` except its ``gaps``
(ranges still open). Its ``token`` is the opaque cursor a client resumes from; positions are
worker-independent, so a cursor from one worker resumes on another.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, false, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.events import Event, EventDecodeError, decode, encode
from db.models import EventRecord, utcnow

log = logging.getLogger("stockroom.events")

Range = tuple[int, int]  # inclusive
_END = 2**63  # past any id: the open end of what a position has not seen yet
MAX_GAPS = 256  # open ranges a position (and so a cursor) may carry
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TOKEN_PREFIX = "ev1."


class CursorError(ValueError):
    """A cursor that this log did not issue."""


def _normal(ranges: Iterable[Range]) -> tuple[Range, ...]:
    """Sorted, disjoint, non-adjacent ranges covering the same ids."""
    out: list[Range] = []
    for lo, hi in sorted(r for r in ranges if r[0] <= r[1]):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def _intersect(a: Sequence[Range], b: Sequence[Range]) -> tuple[Range, ...]:
    out: list[Range] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _complement(ranges: Sequence[Range]) -> tuple[Range, ...]:
    """The ids from 1 up to the end that ``ranges`` leaves out."""
    out: list[Range] = []
    start = 1
    for lo, hi in ranges:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= _END:
        out.append((start, _END))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Position:
    """Every event id up to ``high`` has been handed on, except those in ``gaps``."""

    high: int = 0
    gaps: tuple[Range, ...] = ()

    def _unseen(self) -> tuple[Range, ...]:
        return (*self.gaps, (self.high + 1, _END))

    @classmethod
    def _from_unseen(cls, unseen: Sequence[Range]) -> Position:
        *gaps, (lo, hi) = unseen
        assert hi == _END, "a position's unseen ids always run to the end"
        return cls(lo - 1, tuple(gaps))

    def has(self, event_id: int) -> bool:
        """Whether this event was handed on."""
        if event_id > self.high:
            return False
        return not any(lo <= event_id <= hi for lo, hi in self.gaps)

    def after(self, event_id: int) -> Position:
        """This position with one more event handed on (ids above ``high`` open gaps)."""
        if event_id > self.high:
            gaps = self.gaps
            if event_id > self.high + 1:
                gaps = (*gaps, (self.high + 1, event_id - 1))
            return Position(event_id, gaps)
        kept: list[Range] = []
        for lo, hi in self.gaps:
            if lo <= event_id <= hi:
                kept += [r for r in ((lo, event_id - 1), (event_id + 1, hi)) if r[0] <= r[1]]
            else:
                kept.append((lo, hi))
        return Position(self.high, tuple(kept))

    def covers(self, other: Position) -> bool:
        """Whether everything handed on at ``other`` was handed on here too."""
        mine = self._unseen()
        return _intersect(mine, other._unseen()) == mine

    def union(self, other: Position) -> Position:
        """What a reader has that was handed both."""
        return Position._from_unseen(_intersect(self._unseen(), other._unseen()))

    def replayed(self, until: Position, event_id: int) -> Position:
        """From this position, the events of ``until`` replayed in id order up to this one."""
        rest_of_until = _normal((*until._unseen(), (event_id + 1, _END)))
        return Position._from_unseen(_intersect(self._unseen(), rest_of_until))

    def forget_gaps_through(self, event_id: int) -> Position:
        """Give up on the gaps at or below ``event_id``: their transactions rolled back."""
        if not self.gaps or self.gaps[0][0] > event_id:
            return self
        gaps = tuple(
            (max(lo, event_id + 1), hi) for lo, hi in self.gaps if hi > event_id
        )
        return Position(self.high, gaps)

    def capped(self, limit: int = MAX_GAPS) -> Position:
        """At most ``limit`` open gaps: the oldest beyond that are given up."""
        return self if len(self.gaps) <= limit else Position(self.high, self.gaps[-limit:])

    def token(self, at: datetime) -> str:
        """The opaque cursor for this position, stamped with the commit time it stands at."""
        stamp = (at - _EPOCH) // timedelta(microseconds=1)
        body = f"{stamp}.{self.high}"
        if self.gaps:
            body += "." + "_".join(f"{lo}-{hi}" for lo, hi in self.gaps)
        return _TOKEN_PREFIX + base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")

    @staticmethod
    def parse(token: str) -> tuple[Position, datetime]:
        """A cursor back into its position and commit time; CursorError if it is not one."""
        if not token.startswith(_TOKEN_PREFIX) or len(token) > 8192:
            raise CursorError("not an event cursor")
        data = token.removeprefix(_TOKEN_PREFIX)
        try:
            body = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)).decode("ascii")
            stamp, high, *rest = body.split(".")
            if len(rest) > 1:
                raise ValueError("too many parts")
            parts = rest[0].split("_") if rest else []
            gaps = [tuple(int(n) for n in part.split("-")) for part in parts]
            position = Position(int(high), tuple((g[0], g[1]) for g in gaps))
            at = _EPOCH + timedelta(microseconds=int(stamp))
        except (binascii.Error, UnicodeError, ValueError, IndexError, OverflowError) as exc:
            raise CursorError("not an event cursor") from exc
        gaps_ok = (
            len(position.gaps) <= MAX_GAPS
            and all(len(g) == 2 for g in gaps)
            and _normal(position.gaps) == position.gaps
            and all(lo > 0 and hi < position.high for lo, hi in position.gaps)
        )
        if position.high < 0 or not gaps_ok:
            raise CursorError("not an event cursor")
        return position, at


@dataclass(frozen=True, slots=True)
class Logged:
    """An event as the log holds it: its id (place in the stream) and commit time."""

    id: int
    event: Event
    committed_at: datetime


class Delivery:
    """One logged event handed on by a reader, with the reader's position just after it."""

    __slots__ = ("_cursor", "logged", "position")

    def __init__(self, logged: Logged, position: Position) -> None:
        self.logged = logged
        self.position = position
        self._cursor: str | None = None

    @property
    def cursor(self) -> str:
        """The position's token, made once however many subscribers carry it."""
        if self._cursor is None:
            self._cursor = self.position.token(self.logged.committed_at)
        return self._cursor


@dataclass(frozen=True, slots=True)
class Row:
    """A log row as read, before its payload is decoded."""

    id: int
    channel: str
    payload: dict[str, Any]
    committed_at: datetime

    def decoded(self) -> Logged | None:
        """The typed event; None (logged) for one this version cannot read."""
        try:
            return Logged(self.id, decode(self.channel, self.payload), self.committed_at)
        except EventDecodeError as exc:
            log.warning("skipped event %d: %s", self.id, exc)
            return None


_COLUMNS = (EventRecord.id, EventRecord.channel, EventRecord.payload, EventRecord.committed_at)


async def write(session: AsyncSession, events: Sequence[Event]) -> list[Logged]:
    """Insert the events into the log (in this transaction); what was written, in order."""
    if not events:
        return []
    now = utcnow()
    rows = [
        {
            "channel": event.channel,
            "payload": encode(event),
            "item_id": getattr(event, "item_id", None),
            "warehouse_id": getattr(event, "warehouse_id", None),
            "committed_at": now,
        }
        for event in events
    ]
    stmt = insert(EventRecord).returning(EventRecord.id, sort_by_parameter_order=True)
    ids = (await session.execute(stmt, rows)).scalars().all()
    return [Logged(i, event, now) for i, event in zip(ids, events, strict=True)]


def _within(ranges: Sequence[Range]) -> ColumnElement[bool]:
    terms = [
        EventRecord.id >= lo if hi >= _END else EventRecord.id.between(lo, hi)
        for lo, hi in ranges
    ]
    return or_(*terms) if terms else false()


async def read_new(session: AsyncSession, position: Position, limit: int) -> list[Row]:
    """The rows a reader at ``position`` has not had yet, in id order."""
    stmt = (
        select(*_COLUMNS)
        .where(_within(position._unseen()))
        .order_by(EventRecord.id)
        .limit(limit)
    )
    return [Row(*r) for r in (await session.execute(stmt)).all()]


async def start_position(session: AsyncSession, window_start: datetime) -> Position:
    """Where a reader starting now stands: at the newest event, with the holes among the
    ids written since ``window_start`` still open (their transactions may yet commit)."""
    settled = (
        await session.execute(
            select(func.coalesce(func.max(EventRecord.id), 0)).where(
                EventRecord.committed_at < window_start
            )
        )
    ).scalar_one()
    recent = (
        await session.execute(
            select(EventRecord.id).where(EventRecord.id > settled).order_by(EventRecord.id)
        )
    ).scalars().all()
    position = Position(settled)
    for event_id in recent:
        position = position.after(event_id)
    return position.capped()


async def replay(
    session: AsyncSession,
    after: Position,
    until: Position,
    *,
    channel: str,
    item_id: int | None = None,
    warehouse_id: int | None = None,
    beyond: int = 0,
    limit: int = 200,
) -> list[Row]:
    """Rows of ``channel`` handed on at ``until`` but not at ``after``, ids above ``beyond``.

    Filtered by item and warehouse in SQL; the caller pages by passing the last id seen.
    """
    handed = _complement(until._unseen())
    wanted = _intersect(_intersect(after._unseen(), handed), ((beyond + 1, _END),))
    if not wanted:
        return []
    stmt = select(*_COLUMNS).where(_within(wanted), EventRecord.channel == channel)
    if item_id is not None:
        stmt = stmt.where(EventRecord.item_id == item_id)
    if warehouse_id is not None:
        stmt = stmt.where(EventRecord.warehouse_id == warehouse_id)
    stmt = stmt.order_by(EventRecord.id).limit(limit)
    return [Row(*r) for r in (await session.execute(stmt)).all()]


async def prune(session: AsyncSession, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` of the oldest events committed before ``before``; how many."""
    oldest = (
        select(EventRecord.id)
        .where(EventRecord.committed_at < before)
        .order_by(EventRecord.id)
        .limit(limit)
    )
    result = await session.execute(
        delete(EventRecord)
        .where(EventRecord.id.in_(oldest.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
