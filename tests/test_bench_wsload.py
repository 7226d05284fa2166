"""W4's load generator (bench/wsload.py) without a Stockroom server: RFC 6455 framing, the
graphql-transport-ws exchange of one socket against a fake transport, and the processes'
arm / collect round trip against a small fake server in a thread."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import pytest

from bench import wsload
from bench.wsload import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Arrivals,
    ProtocolError,
    Subscriber,
    accept_key,
    encode_frame,
    split_frames,
)

COMMITTED = "2030-01-02T03:04:05.250000+00:00"


def server_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """An unmasked frame, as a server sends it."""
    size = len(payload)
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        return bytes((first, size)) + payload
    if size < 1 << 16:
        return bytes((first, 126)) + size.to_bytes(2, "big") + payload
    return bytes((first, 127)) + size.to_bytes(8, "big") + payload


def unmask_client_frame(frame: bytes) -> tuple[int, bytes]:
    """(opcode, payload) of one masked client frame; asserts it is final and masked."""
    assert frame[0] & 0x80, "client frames here are never fragmented"
    assert frame[1] & 0x80, "a client must mask every frame"
    size, head = frame[1] & 0x7F, 2
    if size == 126:
        size, head = int.from_bytes(frame[2:4], "big"), 4
    elif size == 127:
        size, head = int.from_bytes(frame[2:10], "big"), 10
    key = frame[head : head + 4]
    body = frame[head + 4 : head + 4 + size]
    assert len(body) == size
    return frame[0] & 0x0F, bytes(b ^ key[i % 4] for i, b in enumerate(body))


def next_message(operation: str = "1", committed: str = COMMITTED) -> bytes:
    # The server's envelope (api/ws.py) around a group payload.
    return orjson.dumps(
        {"id": operation, "type": "next", "payload": {"data": {"stockChanged": {
            "committedAt": committed, "movement": {"kind": "RECEIPT", "delta": 1}}}}}
    )


# ---------------------------------------------------------------- framing


def test_masking_and_accept_key_match_the_rfc_examples() -> None:
    # RFC 6455, 5.7: a masked "Hello" with key 37 fa 21 3d.
    frame = encode_frame(OP_TEXT, b"Hello", key=bytes.fromhex("37fa213d"))
    assert frame == bytes.fromhex("818537fa213d7f9f4d5158")
    # RFC 6455, 1.3: the sample nonce and its accept value.
    assert accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    # every length encoding round-trips, with a fresh key each time
    for size in (0, 1, 125, 126, 65535, 65536):
        payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
        assert unmask_client_frame(encode_frame(OP_TEXT, payload)) == (OP_TEXT, payload)
    assert encode_frame(OP_TEXT, b"x")[2:6] != encode_frame(OP_TEXT, b"x")[2:6]


def test_split_frames_handles_every_length_and_partial_data() -> None:
    small, medium, large = b"Hello", b"m" * 300, b"L" * 70_000
    stream = (
        server_frame(OP_TEXT, small)
        + server_frame(OP_PING, b"")
        + server_frame(OP_TEXT, medium)
        + server_frame(OP_TEXT, large)
    )
    frames, rest = split_frames(stream)
    assert frames == [
        (True, OP_TEXT, small), (True, OP_PING, b""), (True, OP_TEXT, medium),
        (True, OP_TEXT, large),
    ]
    assert rest == b""
    # cut anywhere, the complete frames come out and the rest waits for more bytes
    for cut in (1, 2, 3, 7, 8, 10, len(stream) - 1):
        frames, rest = split_frames(stream[:cut])
        more, left = split_frames(rest + stream[cut:])
        assert frames + more == split_frames(stream)[0] and left == b""
    # a fragmented message comes out as its frames, fin only on the last
    fragmented = server_frame(OP_TEXT, b"Hel", fin=False) + server_frame(0, b"lo")
    assert split_frames(fragmented)[0] == [(False, OP_TEXT, b"Hel"), (True, 0, b"lo")]


def test_split_frames_refuses_masked_or_extended_server_frames() -> None:
    with pytest.raises(ProtocolError, match="masked"):
        split_frames(encode_frame(OP_TEXT, b"hi"))  # what only a client may send
    with pytest.raises(ProtocolError, match="reserved"):
        split_frames(bytes((0xC1, 2)) + b"hi")  # RSV1: permessage-deflate, not negotiated


def test_committed_at_reads_only_a_clean_next() -> None:
    assert wsload.committed_at(next_message()) == datetime.fromisoformat(COMMITTED).timestamp()
    errors = orjson.dumps({"type": "next", "id": "1", "payload": {
        "data": {"stockChanged": {"committedAt": COMMITTED}}, "errors": [{"message": "x"}]}})
    for wrong in (errors, b'{"type":"complete","id":"1"}', b'{"type":"next","id":"1"}', b"[1"):
        with pytest.raises(ValueError, match="not a clean stockChanged delivery"):
            wsload.committed_at(wrong)


# ---------------------------------------------------------------- one socket


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def sent(self) -> list[tuple[int, bytes]]:
        frames, self.written = [unmask_client_frame(f) for f in self.written], []
        return frames


def upgrade_response(key: bytes, protocol: str = "graphql-transport-ws") -> bytes:
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(key).decode()}\r\n"
        f"Sec-WebSocket-Protocol: {protocol}\r\n\r\n"
    ).encode()


def opened_subscriber() -> tuple[Subscriber, FakeTransport, Arrivals, asyncio.Future[None]]:
    loop = asyncio.get_running_loop()
    arrivals = Arrivals()
    key = base64.b64encode(b"0123456789abcdef")
    opened: asyncio.Future[None] = loop.create_future()
    init = b'{"type":"connection_init","payload":{"Authorization":"Bearer t"}}'
    subscribe = b'{"id":"1","type":"subscribe","payload":{"query":"subscription { x }"}}'
    socket = Subscriber(arrivals, key, init, subscribe, opened)
    transport = FakeTransport()
    socket.connection_made(transport)
    return socket, transport, arrivals, opened


async def test_one_socket_upgrades_initialises_subscribes_and_stamps_deliveries() -> None:
    socket, transport, arrivals, opened = opened_subscriber()
    # given the 101 with the right accept key, in two pieces
    response = upgrade_response(socket.key)
    socket.data_received(response[:20])
    assert transport.sent() == []
    socket.data_received(response[20:])
    # then connection_init goes out, masked, with the bearer token
    ((opcode, payload),) = transport.sent()
    assert opcode == OP_TEXT
    assert orjson.loads(payload) == {
        "type": "connection_init", "payload": {"Authorization": "Bearer t"}
    }
    # and on connection_ack the subscription, and the socket counts as open
    socket.data_received(server_frame(OP_TEXT, b'{"type":"connection_ack"}'))
    ((opcode, payload),) = transport.sent()
    assert orjson.loads(payload)["type"] == "subscribe" and opened.done()
    # a WebSocket ping is answered with its payload, a protocol ping with a protocol pong
    socket.data_received(server_frame(OP_PING, b"beat") + server_frame(OP_TEXT, b'{"type":"ping"}'))
    assert transport.sent() == [(OP_PONG, b"beat"), (OP_TEXT, b'{"type":"pong"}')]

    # when an event is armed and its next arrives split across reads
    arrivals.arm(1)
    frame = server_frame(OP_TEXT, next_message())
    before = time.time()
    socket.data_received(frame[:9])
    socket.data_received(frame[9:])
    after = time.time()
    # then it is stamped once, on the read that completed it, its message kept for later
    assert arrivals.payloads == [next_message()]
    assert before <= arrivals.times[0] <= after
    assert arrivals.done is not None and arrivals.done.done()
    # a second delivery for the same event is an error, not a second arrival
    socket.data_received(frame)
    assert len(arrivals.times) == 1 and "second delivery" in arrivals.errors[0]

    # a fragmented next, with its type where the hot path does not look, is reassembled
    # and recognised the slow way
    arrivals.arm(1)
    whole = orjson.dumps({"payload": orjson.loads(next_message())["payload"] | {"pad": "x" * 80},
                          "id": "1", "type": "next"})
    socket.data_received(
        server_frame(OP_TEXT, whole[:30], fin=False) + server_frame(0, whole[30:])
    )
    assert arrivals.payloads == [whole] and arrivals.failed == 0
    # and the earlier error is reported with this event, without counting against it
    assert arrivals.errors[0].startswith("before event 2: a second delivery")

    # our close is answered by the server's; the TCP close is left to the server, so that
    # the TIME_WAIT is on its side, and the answer is not a failure
    socket.close()
    assert transport.sent() == [(OP_CLOSE, (1000).to_bytes(2, "big"))]
    socket.data_received(server_frame(OP_CLOSE, (1000).to_bytes(2, "big")))
    assert transport.sent() == [] and not transport.closed and arrivals.closed == 0


async def test_a_wrong_accept_key_or_subprotocol_fails_the_open() -> None:
    socket, transport, _, opened = opened_subscriber()
    socket.data_received(upgrade_response(b"c29tZSBvdGhlciBrZXk="))
    with pytest.raises(ProtocolError, match="Sec-WebSocket-Accept"):
        await opened
    assert transport.aborted

    socket, transport, _, opened = opened_subscriber()
    socket.data_received(upgrade_response(socket.key, protocol="graphql-ws"))
    with pytest.raises(ProtocolError, match="subprotocol"):
        await opened

    socket, transport, _, opened = opened_subscriber()
    socket.data_received(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
    with pytest.raises(ProtocolError, match="no upgrade"):
        await opened


async def test_a_close_from_the_server_while_live_is_a_failed_delivery() -> None:
    socket, transport, arrivals, _ = opened_subscriber()
    socket.data_received(upgrade_response(socket.key))
    socket.data_received(server_frame(OP_TEXT, b'{"type":"connection_ack"}'))
    transport.sent()
    arrivals.arm(1)
    socket.data_received(server_frame(OP_CLOSE, (4499).to_bytes(2, "big") + b"too slow"))
    # answered with the same code, counted as closed, and the event stops waiting for it
    assert transport.sent() == [(OP_CLOSE, (4499).to_bytes(2, "big"))]
    assert arrivals.closed == 1 and "4499 too slow" in arrivals.errors[0]
    assert arrivals.done is not None and arrivals.done.done()


# ---------------------------------------------------------------- processes


class FakeServer:
    """graphql-transport-ws just enough for the load generator: upgrade, ack, and a ``next``
    to every subscriber when ``publish()`` is called; in its own thread and loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.writers: list[asyncio.StreamWriter] = []
        self.subscribed = 0
        self.port = 0
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()
        server.close()

    async def _frame(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        head = await reader.readexactly(2)
        size = head[1] & 0x7F
        if size == 126:
            size = int.from_bytes(await reader.readexactly(2), "big")
        key = await reader.readexactly(4)
        body = await reader.readexactly(size)
        return head[0] & 0x0F, bytes(b ^ key[i % 4] for i, b in enumerate(body))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = (await reader.readuntil(b"\r\n\r\n")).decode()
        key = next(
            line.split(":", 1)[1].strip() for line in request.split("\r\n")
            if line.lower().startswith("sec-websocket-key")
        )
        writer.write(upgrade_response(key.encode()))
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                opcode, payload = await self._frame(reader)
                if opcode == OP_CLOSE:
                    writer.write(server_frame(OP_CLOSE, payload))
                    writer.close()
                    return
                message = orjson.loads(payload)
                if message["type"] == "connection_init":
                    assert message["payload"] == {"Authorization": "Bearer secret"}
                    writer.write(server_frame(OP_TEXT, b'{"type":"connection_ack"}'))
                elif message["type"] == "subscribe":
                    assert message["payload"]["variables"] == {"item": "SXRlbTox"}
                    self.writers.append(writer)
                    self.subscribed += 1

    def publish(self, committed: str) -> None:
        def send() -> None:
            for writer in self.writers:
                writer.write(server_frame(OP_TEXT, next_message(committed=committed)))

        self.loop.call_soon_threadsafe(send)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    server = FakeServer()
    yield server
    server.stop()


def test_processes_open_every_socket_and_report_each_arrival(fake_server: FakeServer) -> None:
    # given 30 subscribers in two processes, each opening 4 at a time
    generator = wsload.LoadGenerator(
        "127.0.0.1", fake_server.port, "/graphql", "secret", "subscription { x }",
        {"item": "SXRlbTox"}, 30, 2, window=8,
    )
    with generator:
        generator.open(timeout=60)
        deadline = time.monotonic() + 10
        while fake_server.subscribed < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fake_server.subscribed == 30
        for round_number in range(2):
            # when an event is armed and the server publishes it
            generator.arm(timeout=10)
            committed = time.time()
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(committed))
            published = f"{stamp}.{int(committed % 1 * 1e6):06d}+00:00"
            fake_server.publish(published)
            event = generator.collect(timeout=10)
            # then every socket's arrival comes back with the commit time it carried
            assert len(event.times) == 30 and not event.missing and not event.errors, event
            assert all(c == pytest.approx(committed, abs=1e-5) for c in event.committed)
            assert all(0 <= t - committed < 5 for t in event.times), round_number
            # with each process's own cost
            assert len(event.cpu_s) == 2 and all(0 <= c < 5 for c in event.cpu_s)
            assert len(event.spread_s) == 2 and all(0 <= s < 5 for s in event.spread_s)
        assert generator.errors() == []


def test_sockets_that_cannot_connect_are_counted_in_the_error() -> None:
    # given a port nobody listens on
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    generator = wsload.LoadGenerator(
        "127.0.0.1", port, "/graphql", "t", "subscription { x }", {}, 5, 1, open_timeout=5
    )
    with generator, pytest.raises(wsload.OpenFailed, match=r"5 of 5 WebSockets failed to open"):
        generator.open(timeout=60)


def test_processes_scale_with_the_subscribers() -> None:
    assert wsload.processes(20) == 1
    assert wsload.processes(1000) == 1
    assert wsload.processes(10_000) == 2
    loaded: Any = wsload.load_core()
    assert loaded is None or isinstance(loaded, int)
