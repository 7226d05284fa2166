"""Demo and benchmark data: warehouses, a category tree, items with stock and history."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import (
    Category,
    Item,
    MovementKind,
    Role,
    StockLevel,
    StockMovement,
    User,
    Warehouse,
    utcnow,
)

DEMO_USERS = [
    ("admin@example.com", "admin", Role.ADMIN),
    ("manager@example.com", "manager", Role.MANAGER),
    ("clerk@example.com", "clerk", Role.CLERK),
    ("viewer@example.com", "viewer", Role.VIEWER),
]

CATEGORY_TREE: dict[str, list[str]] = {
    "Hardware": ["Fasteners", "Hand tools", "Power tools"],
    "Electrical": ["Cables", "Lighting", "Switches"],
    "Plumbing": ["Pipes", "Fittings"],
}

WAREHOUSES = [
    ("BER-1", "Berlin Central", "Am Hafen 1, 10115 Berlin"),
    ("HAM-1", "Hamburg Port", "Kai 7, 20457 Hamburg"),
    ("MUC-1", "Munich South", "Ring 3, 80331 München"),
]

NOUNS = ["Bolt", "Screw", "Washer", "Drill", "Cable", "Bulb", "Switch", "Pipe", "Elbow", "Saw"]
ADJECTIVES = ["Steel", "Brass", "Heavy", "Compact", "Pro", "Mini", "Outdoor", "Classic"]


@dataclass(frozen=True, slots=True)
class SeedSummary:
    users: int
    warehouses: int
    categories: int
    items: int
    stock_levels: int
    movements: int


async def is_empty(session: AsyncSession) -> bool:
    return not await session.scalar(select(func.count()).select_from(Item))


async def seed(
    session: AsyncSession,
    *,
    hash_password: Callable[[str], str],
    items: int = 200,
    warehouses: int | None = None,
    categories: int | None = None,
    movements_per_level: int = 2,
    demo_users: bool = True,
    rng_seed: int = 7,
) -> SeedSummary:
    """Insert a coherent data set: every level's ledger adds up to its on-hand."""
    rng = random.Random(rng_seed)
    now = utcnow()
    user_ids: list[int] = []
    if demo_users:
        for email, password, role in DEMO_USERS:
            user = User(email=email, password_hash=hash_password(password), role=role)
            session.add(user)
            await session.flush()
            user_ids.append(user.id)

    warehouse_specs: list[tuple[str, str, str | None]] = list(WAREHOUSES)
    for n in range(len(warehouse_specs), warehouses or len(warehouse_specs)):
        warehouse_specs.append((f"WH-{n + 1:02d}", f"Warehouse {n + 1}", None))
    warehouse_rows = [Warehouse(code=c, name=n, address=a) for c, n, a in warehouse_specs]
    session.add_all(warehouse_rows)

    category_rows: list[Category] = []
    for parent_name, children in CATEGORY_TREE.items():
        parent = Category(name=parent_name, description=f"All things {parent_name.lower()}")
        session.add(parent)
        await session.flush()
        category_rows.append(parent)
        for child in children:
            category_rows.append(Category(name=child, parent_id=parent.id))
    leaves_wanted = (categories or len(category_rows)) - len(category_rows)
    for n in range(max(0, leaves_wanted)):
        category_rows.append(Category(name=f"Range {n + 1}", parent_id=category_rows[0].id))
    session.add_all(category_rows)
    await session.flush()

    item_values = []
    for n in range(items):
        price = Decimal(rng.randint(99, 49_999)) / 100
        item_values.append(
            {
                "sku": f"SKU-{n + 1:05d}",
                "name": f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {n + 1}",
                "description": None,
                "category_id": rng.choice(category_rows).id,
                "unit_price": price,
                "unit_cost": (price * Decimal("0.6")).quantize(Decimal("0.01")),
                "reorder_point": rng.choice([0, 5, 10, 20]),
                "archived": False,
                "version": 1,
                "created_at": now - timedelta(minutes=items - n),
                "updated_at": now,
            }
        )
    if item_values:
        await session.execute(insert(Item), item_values)
    item_ids = list((await session.scalars(select(Item.id).order_by(Item.id))).all())

    level_values: list[dict[str, Any]] = []
    movement_values: list[dict[str, Any]] = []
    actor = user_ids[2] if len(user_ids) > 2 else None
    for item_id in item_ids:
        for warehouse in warehouse_rows:
            on_hand = 0
            for step in range(movements_per_level):
                delta = rng.randint(5, 60) if step == 0 else -rng.randint(0, on_hand // 2)
                if delta == 0:
                    continue
                on_hand += delta
                movement_values.append(
                    {
                        "item_id": item_id,
                        "warehouse_id": warehouse.id,
                        "kind": MovementKind.RECEIPT if delta > 0 else MovementKind.SHIPMENT,
                        "delta": delta,
                        "on_hand_after": on_hand,
                        "reserved_after": 0,
                        "reason": "Opening stock" if step == 0 else "Customer order",
                        "reference": f"DEMO-{len(movement_values) + 1}",
                        "actor_id": actor,
                        "created_at": now - timedelta(hours=movements_per_level - step),
                    }
                )
            level_values.append(
                {
                    "item_id": item_id,
                    "warehouse_id": warehouse.id,
                    "on_hand": on_hand,
                    "reserved": 0,
                    "updated_at": now,
                }
            )
    for chunk in range(0, len(level_values), 5000):
        await session.execute(insert(StockLevel), level_values[chunk : chunk + 5000])
    for chunk in range(0, len(movement_values), 5000):
        await session.execute(insert(StockMovement), movement_values[chunk : chunk + 5000])
    await session.flush()
    return SeedSummary(
        users=len(user_ids),
        warehouses=len(warehouse_rows),
        categories=len(category_rows),
        items=len(item_ids),
        stock_levels=len(level_values),
        movements=len(movement_values),
    )
