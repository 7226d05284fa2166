"""A bare graphql-transport-ws / graphql-ws client for protocol and fan-out tests."""

from __future__ import annotations

import json
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"


async def connect(url: str, protocol: str = TRANSPORT_WS, **kw: Any) -> ClientConnection:
    return await websockets.connect(url, subprotocols=[protocol], **kw)  # type: ignore[list-item]


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def receive(ws: ClientConnection, skip: tuple[str, ...] = ("ping", "pong", "ka")) -> Any:
    while True:
        message = json.loads(await ws.recv())
        if message.get("type") not in skip:
            return message


async def init(ws: ClientConnection, token: str | None) -> Any:
    payload = {"Authorization": f"Bearer {token}"} if token else {}
    await send(ws, {"type": "connection_init", "payload": payload})
    return await receive(ws)


async def subscribe(
    ws: ClientConnection, sub_id: str, query: str, variables: dict[str, Any] | None = None
) -> None:
    await send(ws, {"id": sub_id, "type": "subscribe",
                    "payload": {"query": query, "variables": variables or {}}})
