"""Subscription fan-out: one execution per group of subscribers per event.

Subscribers are grouped by (document, operation, variables, role). The worker's feed
(``api/broker/feed.py``) reads each new event from the log once and calls ``Hub.dispatch``;
an index on (channel, item, warehouse) finds the groups whose filters match, and each of
those executes its document once for the event, through Strawberry's ordinary subscription
pipeline, encodes the payload once and hands the same text to every member's ``Sink``
(``api/ws.py``: a bounded queue per socket with its own writer, so a slow socket delays only
itself). Permissions in subscription payloads depend only on the viewer's role (``unitCost``
is MANAGER and above), so a group runs as its role alone, never as one of its members.

``Group.execute`` is the seam for a planned execution (compiled read plans): it takes the
group's events and yields ``ExecutionResult``s; today it runs ``schema.subscribe`` once per
group and graphql-core executes the selection for each event.

Resuming: a subscriber that passes ``after`` joins its group *held*, at the hub's position at
that moment. Its own execution then replays from the log what that position has and the
cursor lacks; when it has sent the last of those, the payloads held meanwhile follow. The
position at joining splits the stream in two, so nothing is missed or repeated at the seam.

Subscriptions that do not come through our WebSocket handler (multipart over HTTP, or a
direct ``schema.subscribe``) run *solo*: the same replay, then live events executed for them
alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, TypeVar

import orjson
import strawberry
from graphql import ArgumentNode, FieldNode, VariableNode
from strawberry.types.execution import ExecutionResult, PreExecutionError

from db import eventlog
from db.eventlog import CursorError, Delivery, Position
from db.events import Event
from db.models import Role, utcnow
from schema.context import Context, Services, Viewer
from schema.errors import CodedError, bad_input

log = logging.getLogger("stockroom.fanout")

T = TypeVar("T")
Build = Callable[[Context, Delivery], Awaitable[T | None]]
IndexKey = tuple[str, int | None, int | None]
GroupKey = tuple[str, str | None, bytes, Role]

REPLAY_PAGE = 200
CATCH_UP_SECONDS = 5.0  # how long a resuming subscriber waits for this worker to reach it
READY_SECONDS = 10.0  # how long a subscriber waits for the feed's first read at start-up


class SubscriberTooSlow(CodedError):
    """A solo subscriber's queue overflowed: it is cut off rather than left to grow memory."""

    def __init__(self) -> None:
        super().__init__("Subscriber fell too far behind the event stream", "SLOW_SUBSCRIBER")


@dataclass(frozen=True, slots=True)
class Topic:
    """Which events a subscription wants: one channel, optionally one item and warehouse."""

    event_type: type[Event]
    item_id: int | None = None
    warehouse_id: int | None = None

    @property
    def key(self) -> IndexKey:
        return (self.event_type.channel, self.item_id, self.warehouse_id)


def _index_keys(event: Event) -> set[IndexKey]:
    """The index entries an event matches: its own ids, and 'any' in each place."""
    item = getattr(event, "item_id", None)
    place = getattr(event, "warehouse_id", None)
    channel = event.channel
    return {(channel, item, place), (channel, item, None), (channel, None, place),
            (channel, None, None)}


class Sink(Protocol):
    """Where a grouped subscriber's messages go (its socket, in its protocol's envelope)."""

    def send(self, payload: str) -> None:
        """Queue one encoded ``payload`` object; never waits on the socket."""
        ...

    def too_slow(self) -> None:
        """The subscriber fell too far behind: cut it off."""
        ...

    def complete(self) -> None:
        """The group ended: end this subscription."""
        ...


class MemberRoot:
    """Root value of an operation our WebSocket handler runs: how to reach its socket."""

    __slots__ = ("member", "operation_name", "query", "sink", "variables")

    def __init__(
        self,
        query: str,
        variables: Mapping[str, Any] | None,
        operation_name: str | None,
        sink: Sink,
    ) -> None:
        self.query = query
        self.variables = dict(variables or {})
        self.operation_name = operation_name
        self.sink = sink
        self.member: Member | None = None

    def leave(self) -> None:
        if self.member is not None:
            self.member.leave()

    @property
    def live(self) -> bool:
        """Whether the subscription has caught up and is now fed by its group."""
        return self.member is not None and self.member.caught_up and not self.member.left


class GroupRoot:
    """Root value of a group's own execution."""

    __slots__ = ("group",)

    def __init__(self, group: Group) -> None:
        self.group = group


def encode_result(result: ExecutionResult) -> str:
    """The ``payload`` of a next/data message, as Strawberry's handlers shape it."""
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return orjson.dumps(payload).decode()


def role_viewer(role: Role) -> Viewer:
    """The viewer a group runs as: its role and nothing that names anyone."""
    return Viewer(id=0, email="", role=role, token_version=0)


class Member:
    """One grouped subscription: what it already has, and its sink."""

    __slots__ = ("caught_up", "context", "group", "held", "left", "seen", "sink")

    def __init__(self, group: Group, sink: Sink, seen: Position, context: Context) -> None:
        self.group = group
        self.sink = sink
        self.seen = seen  # events it has from its cursor or that predate it
        self.context = context
        self.held: list[str] | None = []  # payloads kept back while it replays
        self.caught_up = False
        self.left = False

    def deliver(self, event_id: int | None, payload: str) -> None:
        """Pass on a group payload for this event (None: not about one event, an error)."""
        if self.left or (event_id is not None and self.seen.has(event_id)):
            return
        held = self.held
        if held is None:
            self.sink.send(payload)
        elif len(held) < self.group.hub.queue_size:
            held.append(payload)
        else:
            self.sink.too_slow()

    def go_live(self) -> None:
        """The replay has been sent: the payloads held meanwhile follow, then live ones."""
        held, self.held = self.held, None
        for payload in held or ():
            self.sink.send(payload)

    def leave(self) -> None:
        if not self.left:
            self.left = True
            self.context.active_subscriptions -= 1
            self.group.remove(self)


class Group:
    """Subscribers of one (document, operation, variables, role): executed once per event."""

    def __init__(
        self,
        hub: Hub,
        key: GroupKey,
        topic: Topic,
        schema: Any,
        root: MemberRoot,
        services: Services,
    ) -> None:
        self.hub = hub
        self.key = key
        self.topic = topic
        self.members: set[Member] = set()
        self._schema = schema
        self._query = root.query
        self._variables = root.variables
        self._operation_name = root.operation_name
        self._services = services
        self._queue: deque[Delivery] = deque()
        self._arrived = asyncio.Event()
        self.current: Delivery | None = None
        self.task = asyncio.create_task(self._run(), name="subscription-group")

    def offer(self, delivery: Delivery) -> None:
        if len(self._queue) >= self.hub.backlog:
            log.warning("a subscription group fell %d events behind: cutting it off",
                        len(self._queue))
            for member in list(self.members):
                member.sink.too_slow()
            return
        self._queue.append(delivery)
        self._arrived.set()

    async def _next(self) -> Delivery:
        while not self._queue:
            self._arrived.clear()
            await self._arrived.wait()
        return self._queue.popleft()

    async def events(self, context: Context, build: Build[T]) -> AsyncGenerator[T, None]:
        """The group's source stream: its events, built once for all members."""
        while True:
            delivery = await self._next()
            self.current = delivery
            value = await build(context, delivery)
            if value is not None:
                yield value
            await context.reader.reset()  # the event is resolved: hand the connection back

    async def execute(self, context: Context) -> AsyncGenerator[ExecutionResult, None]:
        """Execute the group's document for each of its events (the planner's seam)."""
        source = await self._schema.subscribe(
            self._query,
            variable_values=self._variables,
            context_value=context,
            root_value=GroupRoot(self),
            operation_name=self._operation_name,
        )
        async with aclosing(source):
            async for result in source:
                yield result

    async def _run(self) -> None:
        context = Context(self._services, request_id=None)
        context.user = role_viewer(self.key[3])
        try:
            async with aclosing(self.execute(context)) as results:
                async for result in results:
                    if isinstance(result, PreExecutionError):
                        # Its members passed the same checks: this is a bug, not bad input.
                        log.error("a subscription group failed to start: %s", result.errors)
                        return
                    self.hub.executions += 1
                    payload = encode_result(result)
                    event_id = None if self.current is None else self.current.logged.id
                    for member in list(self.members):
                        member.deliver(event_id, payload)
        except asyncio.CancelledError:
            raise
        except Exception:  # keep the worker alive; the members are told the stream ended
            log.exception("a subscription group failed")
        finally:
            self.hub.drop(self)
            for member in list(self.members):
                member.sink.complete()
            await context.close()

    def add(self, member: Member) -> None:
        self.members.add(member)
        self.hub.subscriber_count += 1

    def remove(self, member: Member) -> None:
        if member in self.members:
            self.members.discard(member)
            self.hub.subscriber_count -= 1
            if not self.members:
                self.hub.drop(self)
                self.task.cancel()


class Solo:
    """A subscription outside our WebSocket handler: its events, executed for it alone."""

    def __init__(self, hub: Hub, topic: Topic) -> None:
        self.hub = hub
        self.topic = topic
        self._queue: deque[Delivery] = deque()
        self._arrived = asyncio.Event()
        self._overflowed = False

    def offer(self, delivery: Delivery) -> None:
        if len(self._queue) >= self.hub.queue_size:
            self._overflowed = True
        else:
            self._queue.append(delivery)
        self._arrived.set()

    async def next(self) -> Delivery:
        while not self._queue:
            if self._overflowed:
                raise SubscriberTooSlow()
            self._arrived.clear()
            await self._arrived.wait()
        return self._queue.popleft()


def _after_variable(info: strawberry.Info[Context]) -> str | None:
    """The variable that carries this field's ``after``, if a variable does."""
    response_key = info.path.key
    for selection in info.operation.selection_set.selections:
        if not isinstance(selection, FieldNode):
            continue
        name = selection.alias.value if selection.alias else selection.name.value
        if name != response_key:
            continue
        for argument in selection.arguments or ():
            if isinstance(argument, ArgumentNode) and argument.name.value == "after":
                value = argument.value
                return value.name.value if isinstance(value, VariableNode) else None
    return None


class Hub:
    """This worker's subscriptions: the index, the groups, and the feed's position."""

    def __init__(self, *, queue_size: int, retention: timedelta, backlog: int = 10_000) -> None:
        self.queue_size = queue_size
        self.retention = retention
        self.backlog = backlog
        self.position: Position | None = None
        self.subscriber_count = 0
        self.events = 0  # events dispatched
        self.executions = 0  # group executions: one per matching group per event
        self.wake: Callable[[], None] = lambda: None  # the feed's "read the log now"
        self._ready = asyncio.Event()
        self._waiters: list[asyncio.Future[None]] = []
        self._index: dict[IndexKey, set[Group | Solo]] = {}
        self._groups: dict[GroupKey, Group] = {}

    # -- the feed's side ---------------------------------------------------------------

    def start(self, position: Position) -> None:
        """The feed's first read: subscribers may join from here."""
        self.position = position
        self._ready.set()

    def dispatch(self, deliveries: list[Delivery], position: Position) -> None:
        """New events from the log, in the order read, and the position after them."""
        self.position = position
        for delivery in deliveries:
            self.events += 1
            for key in _index_keys(delivery.logged.event):
                for listener in self._index.get(key, ()):
                    listener.offer(delivery)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- the subscriptions' side -------------------------------------------------------

    @property
    def group_count(self) -> int:
        return len(self._groups)

    def _listen(self, key: IndexKey, listener: Group | Solo) -> None:
        self._index.setdefault(key, set()).add(listener)

    def _unlisten(self, key: IndexKey, listener: Group | Solo) -> None:
        listeners = self._index.get(key)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._index[key]

    def drop(self, group: Group) -> None:
        if self._groups.get(group.key) is group:
            del self._groups[group.key]
            self._unlisten(group.topic.key, group)

    def cursor(self, after: str | None) -> Position | None:
        """The position a client's ``after`` names; a coded error when it cannot resume."""
        if after is None:
            return None
        try:
            position, at = Position.parse(after)
        except CursorError:
            raise bad_input("Invalid cursor: pass the cursor of an event you received") from None
        if at < utcnow() - self.retention:
            raise CodedError(
                "The cursor is older than the event log keeps: refetch the current state, "
                "then subscribe without `after`",
                "CURSOR_EXPIRED",
            )
        return position

    async def _joined(self, cursor: Position | None) -> Position:
        """Where a subscriber joins: this worker's position, once it has reached the cursor."""
        try:
            await asyncio.wait_for(self._ready.wait(), READY_SECONDS)
        except TimeoutError:
            unavailable = CodedError("The event stream is not available yet",
                                     "SERVICE_UNAVAILABLE")
            raise unavailable from None
        assert self.position is not None
        if cursor is not None and not self.position.covers(cursor):
            # A cursor from a worker further on: let this one read up to it first.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + CATCH_UP_SECONDS
            while not self.position.covers(cursor) and loop.time() < deadline:
                waiter = loop.create_future()
                self._waiters.append(waiter)
                self.wake()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter, deadline - loop.time())
        return self.position if cursor is None else self.position.union(cursor)

    async def open(
        self, info: strawberry.Info[Context], topic: Topic, after: str | None, build: Build[T]
    ) -> AsyncGenerator[T, None]:
        """The source stream for one subscription field (see the module docstring)."""
        context = info.context
        root = info.root_value
        if isinstance(root, GroupRoot):
            return root.group.events(context, build)
        cursor = self.cursor(after)
        cap = context.settings.subscription_cap
        if context.active_subscriptions >= cap:
            raise CodedError(f"At most {cap} subscriptions per connection", "RATE_LIMITED")
        context.active_subscriptions += 1  # counted now: others may start while this waits
        try:
            seen = await self._joined(cursor)
        except BaseException:
            context.active_subscriptions -= 1
            raise
        until = self.position
        assert until is not None
        # From here to the member's registration nothing awaits: the join is one instant.
        replay = self._replay(context, topic, cursor, until, build)
        if isinstance(root, MemberRoot) and context.user is not None:
            group = self._group(info, topic, root, context.user.role)
            member = Member(group, root.sink, seen, context)
            group.add(member)
            root.member = member
            return self._until_caught_up(member, replay)
        solo = Solo(self, topic)
        self._listen(topic.key, solo)
        self.subscriber_count += 1
        return self._solo(context, solo, seen, replay, build)

    def _group(
        self, info: strawberry.Info[Context], topic: Topic, root: MemberRoot, role: Role
    ) -> Group:
        after = _after_variable(info)
        variables = {k: v for k, v in root.variables.items() if k != after}
        key: GroupKey = (
            root.query,
            root.operation_name,
            orjson.dumps(variables, option=orjson.OPT_SORT_KEYS),
            role,
        )
        group = self._groups.get(key)
        if group is None:
            group = Group(self, key, topic, info.schema, root, info.context.services)
            self._groups[key] = group
            self._listen(topic.key, group)
        return group

    async def _replay(
        self,
        context: Context,
        topic: Topic,
        cursor: Position | None,
        until: Position,
        build: Build[T],
    ) -> AsyncGenerator[T, None]:
        """What ``until`` has and ``cursor`` lacks, from the log in id order."""
        if cursor is None:
            return
        beyond = 0
        while True:
            async with context.services.read_factory() as session:
                rows = await eventlog.replay(
                    session,
                    cursor,
                    until,
                    channel=topic.event_type.channel,
                    item_id=topic.item_id,
                    warehouse_id=topic.warehouse_id,
                    beyond=beyond,
                    limit=REPLAY_PAGE,
                )
            for row in rows:
                beyond = row.id
                logged = row.decoded()
                if logged is None:
                    continue
                value = await build(context, Delivery(logged, cursor.replayed(until, row.id)))
                if value is not None:
                    yield value
                await context.reader.reset()
            if len(rows) < REPLAY_PAGE:
                return

    @staticmethod
    async def _until_caught_up(
        member: Member, replay: AsyncGenerator[T, None]
    ) -> AsyncGenerator[T, None]:
        async with aclosing(replay):
            async for value in replay:
                yield value
        member.caught_up = True  # the handler now sends the held payloads: see go_live

    async def _solo(
        self,
        context: Context,
        solo: Solo,
        seen: Position,
        replay: AsyncGenerator[T, None],
        build: Build[T],
    ) -> AsyncGenerator[T, None]:
        try:
            async with aclosing(replay):
                async for value in replay:
                    yield value
            while True:
                delivery = await solo.next()
                if seen.has(delivery.logged.id):
                    continue
                built = await build(context, delivery)
                if built is not None:
                    yield built
                await context.reader.reset()
        finally:
            self._unlisten(solo.topic.key, solo)
            self.subscriber_count -= 1
            context.active_subscriptions -= 1


async def subscribe(
    info: strawberry.Info[Context], topic: Topic, after: str | None, build: Build[T]
) -> AsyncGenerator[T, None]:
    """A subscription field's event stream, through this worker's hub."""
    hub: Hub = info.context.services.fanout
    return await hub.open(info, topic, after, build)
