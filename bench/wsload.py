"""W4's load generator: graphql-transport-ws subscribers on bare ``asyncio.Protocol``s.

The ``websockets`` client spends tens of microseconds per frame and stamps a delivery only
when the coroutine waiting on that socket gets to run, so with a thousand sockets a
delivery's time included the client's work on the others. Here a socket is one small
Protocol object: it stamps ``time.time()`` first thing in ``data_received``, before any frame
or JSON work, recognises a ``next`` by a bounded byte search and keeps its payload; the JSON is
parsed (and ``committedAt`` read) after the event, off the clock.

Sockets live in child processes (``multiprocessing``, spawn), each with its own event loop
(uvloop when installed) and pinned to the load core (``bench.load``), so the server keeps the
other core to itself. The parent arms the children before each event and collects every
arrival with each child's own cost: its CPU seconds for the event and the time between its
first and last arrival. While a child keeps up, a stamp can be late by at most the CPU the
child spent on frames that came before it, so its CPU per event bounds the lag it adds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import hashlib
import math
import multiprocessing
import os
import resource
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any, cast

import orjson

SUBPROTOCOL = "graphql-transport-ws"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

# What a child holds while opening: more handshakes in flight only queue in the server's
# accept backlog (uvicorn's default 2048) while it answers them one at a time.
OPEN_WINDOW = 200
# Sockets per child (see processes()).
PER_PROCESS = 5000

# The hot path's test for a ``next``: the envelope's type is within its first bytes
# (api/ws.py writes ``{"id":...,"type":"next","payload":``); any other layout takes the slow
# path, which reads the type from the parsed JSON. A full orjson parse of a W4 delivery costs
# about 2 µs and Python's unbounded byte searches 0.3 µs each: this test is 0.2 µs.
NEXT = b'"type":"next"'
NEXT_WITHIN = 64


# ---------------------------------------------------------------- RFC 6455 framing


def accept_key(key: bytes) -> bytes:
    """The Sec-WebSocket-Accept a server must answer ``key`` (base64 bytes) with."""
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def mask(payload: bytes, key: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``key`` repeated (masking and unmasking alike)."""
    size = len(payload)
    if not size:
        return payload
    # One big-integer XOR instead of a Python loop over bytes: frames here are small.
    repeated = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        size, "big"
    )


def encode_frame(opcode: int, payload: bytes, key: bytes | None = None) -> bytes:
    """One final client frame: a client must mask every frame it sends (RFC 6455, 5.3)."""
    key = os.urandom(4) if key is None else key
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    elif size < 1 << 16:
        head = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    return head + key + mask(payload, key)


class ProtocolError(Exception):
    """The server broke RFC 6455 or graphql-transport-ws."""


Frame = tuple[bool, int, bytes]  # (fin, opcode, payload)


def split_frames(data: bytes) -> tuple[list[Frame], bytes]:
    """The complete server frames at the start of ``data``, and the bytes left over."""
    frames: list[Frame] = []
    pos, end = 0, len(data)
    while end - pos >= 2:
        first, second = data[pos], data[pos + 1]
        if second & 0x80:
            raise ProtocolError("the server masked a frame")
        if first & 0x70:
            raise ProtocolError("reserved bits set (no extension was negotiated)")
        size, head = second & 0x7F, 2
        if size == 126:
            if end - pos < 4:
                break
            size, head = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
        elif size == 127:
            if end - pos < 10:
                break
            size, head = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
        if end - pos < head + size:
            break
        start = pos + head
        frames.append((bool(first & 0x80), first & 0x0F, data[start : start + size]))
        pos = start + size
    return frames, data[pos:]


def committed_at(payload: bytes) -> float:
    """The ``committedAt`` (POSIX seconds) of a ``next`` for W4's document, or ValueError."""
    try:
        message = orjson.loads(payload)
        if message.get("type") != "next" or message["payload"].get("errors"):
            raise ValueError
        stamp = message["payload"]["data"]["stockChanged"]["committedAt"]
        return datetime.fromisoformat(stamp).timestamp()
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError(f"not a clean stockChanged delivery: {payload[:300]!r}") from None


def handshake(host: str, port: int, path: str, key: bytes) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key.decode()}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n"
        "\r\n"
    ).encode()


def check_upgrade(head: bytes, key: bytes) -> None:
    """Raise unless ``head`` (the response up to its blank line) accepts ``key``."""
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or status[1] != "101":
        raise ProtocolError(f"no upgrade: {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("sec-websocket-accept", "").encode() != accept_key(key):
        raise ProtocolError("wrong Sec-WebSocket-Accept")
    if headers.get("sec-websocket-protocol") != SUBPROTOCOL:
        raise ProtocolError(f"subprotocol {headers.get('sec-websocket-protocol')!r} chosen")


# ---------------------------------------------------------------- one socket


class Arrivals:
    """One child's deliveries for the current event, shared by its sockets."""

    __slots__ = ("armed", "closed", "connected", "done", "errors", "event", "expected", "failed",
                 "gone", "payloads", "times")

    def __init__(self) -> None:
        self.times = array("d")  # time.time() at each delivery
        self.payloads: list[bytes] = []  # its message, read after the event
        self.errors: list[str] = []
        self.failed = 0  # sockets whose delivery for this event went wrong
        self.expected = 0
        self.closed = 0  # sockets the server closed
        self.event = 0
        self.armed = False
        self.done: asyncio.Future[None] | None = None
        self.connected = 0  # TCP connections not yet lost
        self.gone = asyncio.Event()  # set when the last one is

    def lost(self) -> None:
        self.connected -= 1
        if self.connected == 0:
            self.gone.set()

    def arm(self, expected: int) -> None:
        self.times = array("d")
        self.payloads = []
        # What went wrong between events is reported with this one, but does not count
        # towards its deliveries.
        self.errors = [f"before event {self.event + 1}: {e}" for e in self.errors]
        self.failed = 0
        self.expected = expected
        self.event += 1
        self.armed = True
        self.done = asyncio.get_running_loop().create_future()
        self._check()

    def add(self, now: float, payload: bytes) -> None:
        self.times.append(now)
        self.payloads.append(payload)
        self._check()

    def fail(self, message: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(message)
        if self.armed:
            self.failed += 1
            self._check()

    def take_errors(self) -> list[str]:
        errors, self.errors = self.errors, []
        return errors

    def _check(self) -> None:
        if (
            self.done is not None
            and not self.done.done()
            and len(self.times) + self.failed >= self.expected
        ):
            self.done.set_result(None)


CONNECTING, INITIALISING, LIVE, CLOSING = range(4)


class Subscriber(asyncio.Protocol):
    """One WebSocket with one subscription; its state is these few slots."""

    __slots__ = (
        "arrivals",
        "buffer",
        "fragments",
        "init",
        "key",
        "opened",
        "seen",
        "state",
        "subscribe",
        "transport",
    )

    def __init__(
        self, arrivals: Arrivals, key: bytes, init: bytes, subscribe: bytes,
        opened: asyncio.Future[None],
    ) -> None:
        self.arrivals = arrivals
        self.key = key
        self.init = init  # connection_init's JSON, sent once the upgrade is accepted
        self.subscribe = subscribe
        self.opened = opened
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.fragments: list[bytes] | None = None
        self.state = CONNECTING
        self.seen = 0  # the event number of this socket's last delivery

    # The sockets' event loop calls these.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        self.arrivals.connected += 1

    def data_received(self, data: bytes) -> None:
        now = time.time()  # first: what follows is the client's own time
        if self.buffer:
            data, self.buffer = self.buffer + data, b""
        if self.state == CONNECTING:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = data
                return
            try:
                check_upgrade(data[:end], self.key)
            except ProtocolError as exc:
                self._fail_open(exc)
                return
            self.state = INITIALISING
            self._send(OP_TEXT, self.init)
            data = data[end + 4 :]
        try:
            frames, self.buffer = split_frames(data)
        except ProtocolError as exc:
            self._abort(str(exc))
            return
        for fin, opcode, payload in frames:
            if opcode in (OP_TEXT, OP_CONTINUATION):
                if not fin or self.fragments is not None:
                    payload = self._reassemble(fin, opcode, payload)
                    if not fin:
                        continue
                self._message(now, payload)
            elif opcode == OP_PING:
                self._send(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                self._closed_by_server(payload)
            elif opcode != OP_PONG:
                self._abort(f"unexpected opcode {opcode}")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"connection lost while opening: {exc}"))
        elif self.state != CLOSING:
            self._server_gone(f"connection lost: {exc or 'closed by the server'}")
        self.state = CLOSING
        self.transport = None
        self.arrivals.lost()

    # Messages.

    def _message(self, now: float, payload: bytes) -> None:
        if self.state == LIVE and payload.find(NEXT, 0, NEXT_WITHIN) >= 0:
            self._delivery(now, payload)
            return
        try:
            message = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self._abort(f"not JSON: {payload[:200]!r}")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "ping":  # graphql-transport-ws's own keep-alive
            self._send(OP_TEXT, b'{"type":"pong"}')
        elif kind == "pong":
            pass
        elif kind == "next" and self.state == LIVE:
            self._delivery(now, payload)
        elif kind == "connection_ack" and self.state == INITIALISING:
            self.state = LIVE
            self._send(OP_TEXT, self.subscribe)
            self.init = self.subscribe = b""  # not needed again: keep the socket small
            if not self.opened.done():
                self.opened.set_result(None)
        elif self.state == INITIALISING:
            self._fail_open(ProtocolError(f"no connection_ack: {payload[:200]!r}"))
        else:
            self.arrivals.fail(f"unexpected message: {payload[:300]!r}")

    def _delivery(self, now: float, payload: bytes) -> None:
        arrivals = self.arrivals
        if not arrivals.armed:
            arrivals.fail(f"a delivery outside any event: {payload[:200]!r}")
        elif self.seen == arrivals.event:
            arrivals.fail(f"a second delivery for one event: {payload[:200]!r}")
        else:
            self.seen = arrivals.event
            arrivals.add(now, payload)

    def _reassemble(self, fin: bool, opcode: int, payload: bytes) -> bytes:
        if opcode == OP_TEXT:
            if self.fragments is not None:
                raise ProtocolError("a new message inside a fragmented one")
            self.fragments = [payload]
        elif self.fragments is None:
            raise ProtocolError("a continuation frame outside a message")
        else:
            self.fragments.append(payload)
        if not fin:
            return b""
        whole, self.fragments = b"".join(self.fragments), None
        return whole

    # Sending and closing.

    def _send(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(opcode, payload))

    def close(self) -> None:
        """A normal close (1000): the server answers it, then closes the TCP connection."""
        if self.state != CLOSING:
            self._send(OP_CLOSE, (1000).to_bytes(2, "big"))
            self.state = CLOSING

    def abort(self) -> None:
        self.state = CLOSING
        if self.transport is not None:
            self.transport.abort()

    def _closed_by_server(self, payload: bytes) -> None:
        # Either way the TCP connection is left for the server to close (RFC 6455, 7.1.1):
        # closing it here first would leave 10,000 of this host's ephemeral ports in
        # TIME_WAIT for a minute, and the next size opens as many again. _close() aborts
        # whatever the server has not closed in time.
        if self.state == CLOSING:  # the answer to our close
            return
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
        reason = payload[2:].decode(errors="replace")
        self._send(OP_CLOSE, payload[:2])
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed while opening: {code} {reason}"))
        else:
            self._server_gone(f"closed by the server: {code} {reason}")
        self.state = CLOSING

    def _server_gone(self, message: str) -> None:
        self.arrivals.closed += 1
        self.arrivals.fail(message)

    def _fail_open(self, exc: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
        self.abort()

    def _abort(self, message: str) -> None:
        if not self.opened.done():
            self.opened.set_exception(ProtocolError(message))
        else:
            self.arrivals.fail(message)
        self.abort()


# ---------------------------------------------------------------- one child process


@dataclass(frozen=True)
class Spec:
    """What a child opens: ``count`` sockets whose operation ids start at ``first``."""

    host: str
    port: int
    path: str
    token: str
    query: str
    variables: dict[str, Any]
    first: int
    count: int
    window: int
    open_timeout: float
    core: int | None


async def _open_one(
    loop: asyncio.AbstractEventLoop, spec: Spec, arrivals: Arrivals, n: int, init: bytes,
    window: asyncio.Semaphore,
) -> Subscriber:
    async with window:
        key = base64.b64encode(os.urandom(16))
        subscribe = orjson.dumps(
            {"id": str(n), "type": "subscribe",
             "payload": {"query": spec.query, "variables": spec.variables}}
        )
        opened: asyncio.Future[None] = loop.create_future()
        _, protocol = await asyncio.wait_for(
            loop.create_connection(
                lambda: Subscriber(arrivals, key, init, subscribe, opened), spec.host, spec.port
            ),
            spec.open_timeout,
        )
        assert protocol.transport is not None
        protocol.transport.write(handshake(spec.host, spec.port, spec.path, key))
        try:
            await asyncio.wait_for(asyncio.shield(opened), spec.open_timeout)
        except BaseException:
            opened.cancel()  # nobody waits for it any more: let it not log an exception
            protocol.abort()
            raise
        return protocol


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"[:300]


async def _child(conn: Connection, spec: Spec) -> None:
    loop = asyncio.get_running_loop()
    arrivals = Arrivals()
    init = orjson.dumps(
        {"type": "connection_init", "payload": {"Authorization": f"Bearer {spec.token}"}}
    )
    window = asyncio.Semaphore(spec.window)
    results = await asyncio.gather(
        *(
            _open_one(loop, spec, arrivals, n, init, window)
            for n in range(spec.first, spec.first + spec.count)
        ),
        return_exceptions=True,
    )
    sockets = [r for r in results if isinstance(r, Subscriber)]
    failures = [_describe(r) for r in results if isinstance(r, BaseException)]
    # The heap now holds thousands of protocols: a full collection during an event would
    # be a pause in the stamps that is the client's, not the server's.
    gc.collect()
    gc.freeze()
    gc.disable()
    commands: asyncio.Queue[Any] = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: commands.put_nowait(conn.recv()))
    conn.send(("opened", len(sockets), failures[:10], len(failures)))
    try:
        while True:
            command, *args = await commands.get()
            if command == "arm":
                conn.send(await _event(conn, arrivals, len(sockets) - arrivals.closed, *args))
            elif command == "errors":
                conn.send(("errors", arrivals.take_errors()))
            elif command == "close":
                await _close(sockets, arrivals, float(args[0]))
                conn.send(("closed",))
                return
    finally:
        loop.remove_reader(conn.fileno())


class Ticker:
    """The event loop's own lag: a timer every millisecond, and its worst lateness.

    A timer is late by as long as the loop was held, by frames or by the kernel running
    something else on the core; a delivery that arrived meanwhile is stamped late by up to
    that much. The worst lateness of an event bounds what this process added to its times.
    """

    INTERVAL = 0.001

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.worst = 0.0
        self._due = time.monotonic() + self.INTERVAL
        self._handle = loop.call_later(self.INTERVAL, self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        self.worst = max(self.worst, now - self._due)
        self._due = now + self.INTERVAL
        self._handle = self._loop.call_later(self.INTERVAL, self._tick)

    def stop(self) -> float:
        self._handle.cancel()
        return self.worst


async def _event(
    conn: Connection, arrivals: Arrivals, expected: int, timeout: float
) -> tuple[Any, ...]:
    """Arm, say so, wait for every socket's delivery; the arrivals and this child's cost."""
    arrivals.arm(expected)
    assert arrivals.done is not None
    cpu = time.process_time()
    ticker = Ticker(asyncio.get_running_loop())
    conn.send(("armed",))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(arrivals.done), timeout)
    cpu = time.process_time() - cpu
    lag = ticker.stop()
    arrivals.armed = False
    # Off the clock now: read each delivery; one that is not a clean next is an error.
    times, committed = array("d"), array("d")
    for now, payload in zip(arrivals.times, arrivals.payloads, strict=True):
        try:
            committed.append(committed_at(payload))
        except ValueError as exc:
            arrivals.fail(str(exc))
            continue
        times.append(now)
    arrivals.payloads = []
    missing = expected - len(arrivals.times) - arrivals.failed
    return (
        "event", times.tobytes(), committed.tobytes(), cpu, lag, arrivals.take_errors(),
        max(0, missing),
    )


async def _close(sockets: list[Subscriber], arrivals: Arrivals, timeout: float) -> None:
    for socket in sockets:
        socket.close()
    if arrivals.connected:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrivals.gone.wait(), timeout)
    for socket in sockets:  # whatever did not answer in time
        socket.abort()


def _raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def child_main(conn: Connection, spec: Spec) -> None:
    """A child's entry point (spawned: it shares nothing with the harness but the pipe)."""
    _raise_file_limit()
    if spec.core is not None:
        os.sched_setaffinity(0, {spec.core})
    run: Callable[..., None] = asyncio.run
    try:
        import uvloop

        run = uvloop.run
    except ImportError:  # the standard loop works, at a few more microseconds per frame
        pass
    try:
        run(_child(conn, spec))
    except BaseException as exc:  # the parent is waiting on the pipe: tell it why
        with contextlib.suppress(OSError):
            conn.send(("crashed", _describe(exc)))
        raise


# ---------------------------------------------------------------- the parent's side


class OpenFailed(RuntimeError):
    pass


@dataclass
class Event:
    """One event across every child: arrivals and commits (wall clock), each child's cost."""

    times: list[float] = field(default_factory=list)
    committed: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)  # per child
    lag_s: list[float] = field(default_factory=list)  # per child: its loop's worst lateness
    spread_s: list[float] = field(default_factory=list)  # per child: last - first arrival
    errors: list[str] = field(default_factory=list)
    missing: int = 0


def processes(subscribers: int) -> int:
    """Children for ``subscribers`` sockets: one per 5,000.

    They are all pinned to the one load core, so more of them add no CPU; one loop reads a
    delivery in some 10-20 µs of its CPU (kernel included), well under the 30-40 µs the
    server core spends sending it, and kept up with 10,000 alone (its timer lag stayed at a
    few ms). Two at 10,000 cost no measurable CPU over one and keep any stall of one loop (a
    page fault, the kernel running something else there) to half the stamps, where that
    child's lag shows it; four cost a third more CPU in context switches and changed nothing.
    """
    return max(1, math.ceil(subscribers / PER_PROCESS))


def load_core() -> int | None:
    """The core wrk runs on (``bench.load``): the last, when there are two or more."""
    cores = sorted(os.sched_getaffinity(0))
    return cores[-1] if len(cores) >= 2 else None


class LoadGenerator:
    """``subscribers`` sockets in ``processes`` children; ``open()`` before, ``close()`` after."""

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        token: str,
        query: str,
        variables: dict[str, Any],
        subscribers: int,
        processes: int,
        *,
        open_timeout: float = 30.0,
        window: int = OPEN_WINDOW,
    ) -> None:
        self.subscribers = subscribers
        self.processes = max(1, min(processes, subscribers))
        context = multiprocessing.get_context("spawn")
        core = load_core()
        self._children: list[tuple[Any, Connection]] = []
        first = 0
        for index in range(self.processes):
            count = subscribers // self.processes + (index < subscribers % self.processes)
            spec = Spec(
                host, port, path, token, query, variables, first, count,
                max(1, window // self.processes), open_timeout, core,
            )
            first += count
            parent, child = context.Pipe()
            process = context.Process(target=child_main, args=(child, spec), daemon=True)
            self._children.append((process, parent))
        self._started = False

    def open(self, timeout: float) -> None:
        """Start the children and wait until every socket has subscribed, or raise."""
        for process, _ in self._children:
            process.start()
        self._started = True
        opened, failed, reasons = 0, 0, []
        for reply in self._replies(timeout):
            if reply[0] != "opened":
                raise OpenFailed(f"a load generator process failed: {reply}")
            opened += reply[1]
            reasons += reply[2]
            failed += reply[3]
        if failed:
            raise OpenFailed(
                f"{failed} of {self.subscribers} WebSockets failed to open "
                f"({opened} did); first reasons: {sorted(set(reasons))[:5]}"
            )

    def arm(self, timeout: float) -> None:
        """Tell every child an event is coming; returns once each has started its clock."""
        for _, conn in self._children:
            conn.send(("arm", timeout))
        for reply in self._replies(10.0):
            if reply[0] != "armed":
                raise RuntimeError(f"a load generator process did not arm: {reply}")

    def collect(self, timeout: float) -> Event:
        """Every child's arrivals for the armed event (children wait up to their timeout)."""
        event = Event()
        for reply in self._replies(timeout + 30):
            if reply[0] != "event":
                raise RuntimeError(f"a load generator process failed: {reply}")
            _, times_raw, committed_raw, cpu, lag, errors, missing = reply
            times, committed = array("d"), array("d")
            times.frombytes(times_raw)
            committed.frombytes(committed_raw)
            event.times += times
            event.committed += committed
            event.cpu_s.append(cpu)
            event.lag_s.append(lag)
            event.spread_s.append(max(times) - min(times) if times else 0.0)
            event.errors += errors
            event.missing += missing
        return event

    def errors(self) -> list[str]:
        """What went wrong on the sockets since the last event (a subscribe refused, ...)."""
        for _, conn in self._children:
            conn.send(("errors",))
        return [e for reply in self._replies(10.0) for e in reply[1]]

    def close(self, timeout: float = 5.0) -> None:
        if self._started:
            for process, conn in self._children:
                if process.is_alive():
                    with contextlib.suppress(OSError):
                        conn.send(("close", timeout))
            with contextlib.suppress(Exception):
                list(self._replies(timeout + 10))
        for process, conn in self._children:
            if self._started:
                process.join(5)
                if process.is_alive():
                    process.kill()
                    process.join(5)
            conn.close()

    def __enter__(self) -> LoadGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _replies(self, timeout: float) -> list[Any]:
        deadline = time.monotonic() + timeout
        replies = []
        for process, conn in self._children:
            while not conn.poll(0.1):
                if not process.is_alive():
                    raise RuntimeError(f"a load generator process exited ({process.exitcode})")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no answer from a load generator process in {timeout} s")
            try:
                reply = conn.recv()
            except EOFError:
                process.join(5)
                raise RuntimeError(
                    f"a load generator process exited ({process.exitcode}) without answering"
                ) from None
            if reply[0] == "crashed":
                raise RuntimeError(f"a load generator process crashed: {reply[1]}")
            replies.append(reply)
        return replies
