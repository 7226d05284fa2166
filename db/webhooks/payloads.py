"""What a logged event becomes for webhooks: its kind and the ``data`` of the body.

``data`` is stored snake_case with plain primary keys (``item_id: 7``); the sender renders it
for the wire (camelCase keys, Relay IDs) so this layer knows nothing of GraphQL. It carries
what the matching subscription payload does, plus the SKU and warehouse code receivers key on.
Rows are looked up once per batch of events, not per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.eventlog import Logged
from db.events import ItemChange, ItemChanged, LowStock, ReservationExpired, StockChanged
from db.models import Item, Warehouse, WebhookEventType

_ITEM_KINDS = {
    ItemChange.CREATED: WebhookEventType.ITEM_CREATED,
    ItemChange.UPDATED: WebhookEventType.ITEM_UPDATED,
    ItemChange.ARCHIVED: WebhookEventType.ITEM_ARCHIVED,
    ItemChange.DELETED: WebhookEventType.ITEM_DELETED,
}


def kind_of(logged: Logged) -> WebhookEventType | None:
    """The webhook event a logged event is, or None for one webhooks do not carry."""
    match logged.event:
        case StockChanged():
            return WebhookEventType.STOCK_CHANGED
        case LowStock():
            return WebhookEventType.LOW_STOCK
        case ItemChanged(kind=kind):
            return _ITEM_KINDS[kind]
        case ReservationExpired():
            return WebhookEventType.RESERVATION_EXPIRED
    return None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One logged event as webhooks send it."""

    event_id: int
    kind: WebhookEventType
    data: dict[str, Any]
    at: datetime


def _item(row: Item | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "item_id": row.id,
        "sku": row.sku,
        "name": row.name,
        "description": row.description,
        "category_id": row.category_id,
        "unit_price": str(row.unit_price),
        "reorder_point": row.reorder_point,
        "archived": row.archived,
        "version": row.version,
    }


async def outgoing(session: AsyncSession, batch: Sequence[Logged]) -> list[Outgoing]:
    """The events of ``batch`` that webhooks carry, with their data, in log order."""
    kinds = [(logged, kind_of(logged)) for logged in batch]
    wanted = [(logged, kind) for logged, kind in kinds if kind is not None]
    if not wanted:
        return []
    item_ids = {getattr(logged.event, "item_id", None) for logged, _ in wanted} - {None}
    place_ids = {getattr(logged.event, "warehouse_id", None) for logged, _ in wanted} - {None}
    items: dict[int, Item] = {}
    places: dict[int, str] = {}
    if item_ids:
        found = await session.scalars(select(Item).where(Item.id.in_(item_ids)))
        items = {row.id: row for row in found}
    if place_ids:
        codes = await session.execute(
            select(Warehouse.id, Warehouse.code).where(Warehouse.id.in_(place_ids))
        )
        places = {row[0]: row[1] for row in codes}

    def sku(item_id: int, fallback: str | None = None) -> str | None:
        row = items.get(item_id)
        return row.sku if row is not None else fallback

    out: list[Outgoing] = []
    for logged, kind in wanted:
        event = logged.event
        data: dict[str, Any]
        match event:
            case StockChanged():
                data = {
                    "stock_level_id": event.stock_level_id,
                    "movement_id": event.movement_id,
                    "item_id": event.item_id,
                    "sku": sku(event.item_id),
                    "warehouse_id": event.warehouse_id,
                    "warehouse_code": places.get(event.warehouse_id),
                    "kind": event.kind.value,
                    "delta": event.delta,
                    "on_hand": event.on_hand,
                    "reserved": event.reserved,
                    "available": event.available,
                }
            case LowStock():
                data = {
                    "item_id": event.item_id,
                    "sku": sku(event.item_id),
                    "warehouse_id": event.warehouse_id,
                    "warehouse_code": places.get(event.warehouse_id),
                    "available": event.available,
                    "reorder_point": event.reorder_point,
                }
            case ItemChanged():
                current = items.get(event.item_id)
                deleted = event.kind is ItemChange.DELETED
                data = {
                    "kind": event.kind.value,
                    "item_id": event.item_id,
                    "sku": sku(event.item_id, event.sku) if not deleted else event.sku,
                    # The item as it is when the delivery is made; null once deleted.
                    "item": None if deleted else _item(current),
                }
            case ReservationExpired():
                data = {
                    "reservation_id": event.reservation_id,
                    "item_id": event.item_id,
                    "sku": sku(event.item_id),
                    "warehouse_id": event.warehouse_id,
                    "warehouse_code": places.get(event.warehouse_id),
                    "quantity": event.quantity,
                }
            case _:
                continue
        assert kind is not None
        out.append(Outgoing(logged.id, kind, data, logged.committed_at))
    return out
