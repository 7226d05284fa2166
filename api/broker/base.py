"""The doorbell between workers: "events up to id N are in the log".

Events travel through the event log (``db/eventlog.py``), never through the broker. The broker
only rings, so every worker's feed reads the new rows at once instead of at its next poll. A
ring that is lost (the broker is down, a worker is reconnecting) delays readers until that
poll and loses nothing, and ringing never waits on the broker: a committed mutation returns
whether or not the broker is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from db.eventlog import Logged

log = logging.getLogger("stockroom.broker")

# Called with the id a commit rang for, or None after a (re)connect: "you may have missed
# rings, read the log now".
Listener = Callable[[int | None], None]


class BrokerBackend:
    """Rings this worker at once, and the others through the backing service."""

    name = "base"

    def __init__(self) -> None:
        self.connected = True
        self._listeners: list[Listener] = []
        self._pending: int | None = None
        self._sender: asyncio.Task[None] | None = None

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        """Connect to the backing service, if any."""

    async def close(self) -> None:
        """Disconnect."""
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender

    async def publish_events(self, logged: Sequence[Logged]) -> None:
        """Ring for what a commit wrote to the log (a ``db.session.Publisher``)."""
        self.ring(max(entry.id for entry in logged))

    def ring(self, upto: int) -> None:
        """Announce that events up to ``upto`` are committed; returns at once."""
        self.heard(upto)  # this worker needs no round trip through the broker
        self._pending = upto if self._pending is None else max(self._pending, upto)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_pending(), name="broker-ring")

    async def _send_pending(self) -> None:
        # One send at a time; rings arriving meanwhile coalesce into the highest id.
        while self._pending is not None:
            upto, self._pending = self._pending, None
            if not self.connected:
                continue  # the others poll the log while the broker is away
            try:
                await self._send(upto)
            except Exception as exc:  # a lost ring only delays: the log has the events
                log.debug("ring for event %d not sent (%s)", upto, exc)

    async def _send(self, upto: int) -> None:
        """Carry a ring to the other workers (backends with a service override this)."""

    def heard(self, upto: int | None) -> None:
        """A ring arrived (or a reconnect happened, ``None``): tell the listeners."""
        for listener in self._listeners:
            listener(upto)

    async def healthy(self) -> bool:
        return self.connected
