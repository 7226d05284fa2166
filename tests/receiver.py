"""A webhook receiver for tests: a small HTTP/1.1 server on 127.0.0.1 in the test's loop.

It records every request (headers and raw body), answers with the status its ``script``
gives for each request (then ``status``), may sleep first, and can be stopped and started
again on the same port to play a receiver that is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.throwaway import free_port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


def verify(secret: str, header: str, body: bytes, tolerance: float = 300) -> bool:
    """What a receiver does with Stockroom-Signature (the README's ten lines)."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(parts["t"])
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), parts["v1"])


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    status: int = 200
    script: list[int] = field(default_factory=list)  # statuses for the first requests
    delay: float = 0.0
    extra_headers: dict[str, str] = field(default_factory=dict)
    answer_body: bytes = b"ok"
    received: list[Received] = field(default_factory=list)
    on_request: Callable[[Received], None] | None = None
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def __aenter__(self) -> Receiver:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def ids(self) -> list[str]:
        return [r.json["id"] for r in self.received]

    async def until(self, count: int, timeout: float = 60) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"received {len(self.received)} of {count} deliveries")
            await asyncio.sleep(0.05)
        return self.received

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Received(headers, body, time.monotonic())
                status = self.script.pop(0) if self.script else self.status
                if self.delay:
                    await asyncio.sleep(self.delay)
                self.received.append(request)
                if self.on_request is not None:
                    self.on_request(request)
                extra = "".join(f"{k}: {v}\r\n" for k, v in self.extra_headers.items())
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Length: {len(self.answer_body)}\r\n"
                    f"{extra}\r\n".encode() + self.answer_body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
