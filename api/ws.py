"""WebSocket subscriptions through the fan-out hub, for both protocols Strawberry speaks.

A subscribe (graphql-transport-ws) or start (graphql-ws) still runs through Strawberry's
pipeline, with a ``MemberRoot`` as the operation's root value: parsing, validation, limits,
permissions and the resolver's own checks behave as before, and their errors reach the client
as before. The resolver joins the subscriber to its group (``schema/fanout.py``) and returns a
stream that replays what ``after`` asked for; when that stream ends the operation stays open,
and the group feeds it through the socket's ``Outbox``. Queries and mutations sent over the
socket, and every protocol rule and close code, are Strawberry's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
from starlette.websockets import WebSocket
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
    _OperationStreamClosed,  # the base's signal that a pre-execution error closed the socket
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import CompleteMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    CompleteMessage as LegacyCompleteMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import ErrorMessage, StartMessage
from strawberry.types.execution import PreExecutionError
from strawberry.utils.aio import aclosing

from schema.context import Context
from schema.fanout import MemberRoot
from schema.subscriptions import SLOW_CLOSE_CODE

log = logging.getLogger("stockroom.ws")


class Outbox:
    """Messages for one socket: queued without waiting, sent in order by their own task.

    A group hands the same payload to thousands of sockets in one pass, so it must never wait
    on any of them; a socket whose queue outgrows its bound is closed instead (4499).
    """

    __slots__ = ("_closing", "_queue", "_socket", "_task", "limit")

    def __init__(self, socket: WebSocket, limit: int) -> None:
        self._socket = socket
        self._queue: deque[str] = deque()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.limit = limit

    def put(self, text: str) -> None:
        if self._closing:
            return
        if len(self._queue) >= self.limit:
            self.too_slow()
            return
        self._queue.append(text)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._queue:
                await self._socket.send_text(self._queue.popleft())
        except Exception:  # the socket went away; the handler's read loop ends the rest
            self._closing = True
            self._queue.clear()
        finally:
            self._task = None

    def too_slow(self) -> None:
        """Cut the socket off: it fell further behind than its queues allow."""
        if self._closing:
            return
        self._closing = True
        self._queue.clear()
        self._task = asyncio.get_running_loop().create_task(self._close())

    async def _close(self) -> None:
        with contextlib.suppress(Exception):  # already closing or gone
            await self._socket.close(code=SLOW_CLOSE_CODE, reason="Subscriber fell too far behind")

    def close(self) -> None:
        self._closing = True
        self._queue.clear()
        if self._task is not None and not self._task.done():
            self._task.cancel()


class _Sink:
    """One subscription's envelope around group payloads, on its socket's outbox."""

    __slots__ = ("_complete", "_done", "_outbox", "_prefix")

    def __init__(
        self, outbox: Outbox, prefix: str, complete: str, done: Callable[[], None]
    ) -> None:
        self._outbox = outbox
        self._prefix = prefix
        self._complete = complete
        self._done = done

    def send(self, payload: str) -> None:
        self._outbox.put(self._prefix + payload + "}")

    def too_slow(self) -> None:
        self._outbox.too_slow()

    def complete(self) -> None:
        self._outbox.put(self._complete)
        self._done()


def _id(operation_id: str) -> str:
    return orjson.dumps(operation_id).decode()


class _Members:
    """The grouped subscriptions of one socket, by operation id."""

    def __init__(self, context: Context, websocket: Any) -> None:
        assert isinstance(websocket, ASGIWebSocketAdapter)
        self.queue_size: int = context.services.fanout.queue_size
        self.outbox = Outbox(websocket.ws, self.queue_size)
        self.roots: dict[str, MemberRoot] = {}

    def add(self, operation_id: str, root: MemberRoot) -> None:
        self.roots[operation_id] = root
        self.outbox.limit = self.queue_size * len(self.roots)

    def leave(self, operation_id: str, root: MemberRoot | None = None) -> None:
        """End one subscription's membership (``root``: that one, even if already removed:
        a cancelled operation may join its group after it was removed here)."""
        if root is None or self.roots.get(operation_id) is root:
            root = self.roots.pop(operation_id, root)
        if root is not None:
            root.leave()
            self.outbox.limit = self.queue_size * max(1, len(self.roots))

    def close(self) -> None:
        for operation_id in list(self.roots):
            self.leave(operation_id)
        self.outbox.close()


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, with subscriptions fed by their group."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.members = _Members(self.context, self.websocket)

    def _root(self, operation: Operation[Context, None]) -> MemberRoot:
        operation_id = operation.id

        def done() -> None:
            self.members.leave(operation_id)
            self.operations.pop(operation_id, None)

        sink = _Sink(
            self.members.outbox,
            '{"id":' + _id(operation_id) + ',"type":"next","payload":',
            '{"id":' + _id(operation_id) + ',"type":"complete"}',
            done,
        )
        return MemberRoot(operation.query, operation.variables, operation.operation_name, sink)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        """Strawberry's run_operation, except that a subscription ends its own stream once
        it has caught up and then lives on in its group."""
        root = self._root(operation)
        self.members.add(operation.id, root)
        try:
            result_source = await self.schema.stream(
                operation.query,
                variable_values=operation.variables,
                context_value=self.context,
                root_value=root,
                operation_name=operation.operation_name,
            )
            async with aclosing(result_source):
                await self._send_result_stream(operation, result_source)
            if root.live:
                assert root.member is not None
                root.member.go_live()
                return
            await operation.send_operation_message(
                CompleteMessage(id=operation.id, type="complete")
            )
        except _OperationStreamClosed:
            return
        except Exception as error:
            await self.handle_task_exception(error)
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise
        finally:
            if not root.live:
                self.members.leave(operation.id, root)

    async def cleanup_operation(self, operation_id: str) -> None:
        self.members.leave(operation_id)
        await super().cleanup_operation(operation_id)

    async def shutdown(self) -> None:
        await super().shutdown()
        self.members.close()


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """graphql-ws (legacy), with subscriptions fed by their group."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.members = _Members(self.context, self.websocket)

    def _root(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> MemberRoot:
        def done() -> None:
            self.members.leave(operation_id)

        sink = _Sink(
            self.members.outbox,
            '{"type":"data","id":' + _id(operation_id) + ',"payload":',
            '{"type":"complete","id":' + _id(operation_id) + "}",
            done,
        )
        return MemberRoot(query, variables, operation_name, sink)

    async def handle_start(self, message: StartMessage) -> None:
        operation_id = message["id"]
        if operation_id in self.members.roots and operation_id not in self.tasks:
            await self.cleanup_operation(operation_id)  # restarted while fed by its group
        await super().handle_start(message)

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        """Strawberry's handle_async_results, except that a subscription ends its own stream
        once it has caught up and then lives on in its group."""
        root = self._root(operation_id, query, operation_name, variables)
        self.members.add(operation_id, root)
        try:
            result_source = await self.schema.subscribe(
                query=query,
                variable_values=variables,
                operation_name=operation_name,
                context_value=self.context,
                root_value=root,
            )
            self.subscriptions[operation_id] = result_source
            is_first_result = True
            async for result in result_source:
                if is_first_result and isinstance(result, PreExecutionError):
                    assert result.errors
                    await self.send_message(
                        ErrorMessage(
                            type="error", id=operation_id, payload=result.errors[0].formatted
                        )
                    )
                    return
                await self.send_data_message(result, operation_id)
                is_first_result = False
            if root.live:
                assert root.member is not None
                root.member.go_live()
                return
            await self.send_message(LegacyCompleteMessage(type="complete", id=operation_id))
        except asyncio.CancelledError:
            await self.send_message(LegacyCompleteMessage(type="complete", id=operation_id))
        finally:
            self.subscriptions.pop(operation_id, None)
            self.tasks.pop(operation_id, None)
            if not root.live:
                self.members.leave(operation_id, root)

    async def cleanup_operation(self, operation_id: str) -> None:
        root = self.members.roots.get(operation_id)
        if root is not None and root.live and operation_id not in self.tasks:
            self.members.leave(operation_id)
            # As for a running operation that is stopped: the client hears it complete.
            await self.send_message(LegacyCompleteMessage(type="complete", id=operation_id))
            return
        await super().cleanup_operation(operation_id)

    async def cleanup(self) -> None:
        await super().cleanup()
        self.members.close()
