"""The floor: a bare Starlette app answering W1/W2/W3 with hand-written SQL through asyncpg.

No GraphQL, no ORM, no auth: what the same answers cost when nothing stands between the
socket and PostgreSQL. ``python -m bench.peers.floor --dsn DSN --port PORT``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.peers import serve

# W1 as one statement: PostgreSQL builds the whole GraphQL-shaped response.
W1_JSON = """
select json_build_object('data', json_build_object('items', json_build_object('edges',
  coalesce(json_agg(json_build_object('node', json_build_object(
    'sku', i.sku, 'name', i.name, 'unitPrice', i.unit_price::text,
    'category', case when c.id is null then null else json_build_object('name', c.name) end,
    'stockLevels', coalesce((
      select json_agg(json_build_object('onHand', l.on_hand,
               'available', greatest(l.on_hand - l.reserved - l.damaged - l.quality_control
                                       - l.safety_stock, 0),
               'warehouse', json_build_object('code', w.code)) order by w.code)
      from stock_levels l join warehouses w on w.id = l.warehouse_id
      where l.item_id = i.id), '[]'::json)
  )) order by i.name, i.id), '[]'::json))))::text
from (select * from items where not archived order by name, id limit $1) i
left join categories c on c.id = i.category_id
"""

# W1 as three statements (page, categories, levels with warehouses), joined in Python.
W1_ITEMS = """
select id, sku, name, unit_price::text as unit_price, category_id from items
where not archived order by name, id limit $1
"""
W1_CATEGORIES = "select id, name from categories where id = any($1::int[])"
W1_LEVELS = """
select l.item_id, l.on_hand,
  greatest(l.on_hand - l.reserved - l.damaged - l.quality_control - l.safety_stock, 0) as available,
  w.code
from stock_levels l join warehouses w on w.id = l.warehouse_id
where l.item_id = any($1::int[]) order by w.code
"""

W2 = """
select json_build_object('data', json_build_object('item', json_build_object(
  'sku', sku, 'name', name, 'unitPrice', unit_price::text, 'reorderPoint', reorder_point
)))::text from items where id = $1
"""

W3 = """
update stock_levels set on_hand = on_hand + 1, updated_at = now() where id = $1
returning on_hand
"""

JSON = "application/json"


async def _keep(_: asyncpg.Connection) -> None:
    return None


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    # No reset on release: these connections keep no session state, and asyncpg's default
    # reset would add four statements to every request.
    app.state.pool = await asyncpg.create_pool(app.state.dsn, min_size=10, max_size=10, reset=_keep)
    try:
        yield
    finally:
        await app.state.pool.close()


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


async def _arguments(request: Request) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(await request.body() or b"{}")
    return body


async def w1_json(request: Request) -> Response:
    first = int((await _arguments(request)).get("first", 100))
    return Response(await _pool(request).fetchval(W1_JSON, first), media_type=JSON)


async def w1_three(request: Request) -> Response:
    first = int((await _arguments(request)).get("first", 100))
    async with _pool(request).acquire() as connection:
        items = await connection.fetch(W1_ITEMS, first)
        category_ids = list({row["category_id"] for row in items if row["category_id"]})
        categories = {
            row["id"]: {"name": row["name"]}
            for row in await connection.fetch(W1_CATEGORIES, category_ids)
        }
        levels: dict[int, list[dict[str, Any]]] = {row["id"]: [] for row in items}
        for row in await connection.fetch(W1_LEVELS, list(levels)):
            levels[row["item_id"]].append(
                {
                    "onHand": row["on_hand"],
                    "available": row["available"],
                    "warehouse": {"code": row["code"]},
                }
            )
    edges = [
        {
            "node": {
                "sku": row["sku"],
                "name": row["name"],
                "unitPrice": row["unit_price"],
                "category": categories.get(row["category_id"]),
                "stockLevels": levels[row["id"]],
            }
        }
        for row in items
    ]
    return Response(orjson.dumps({"data": {"items": {"edges": edges}}}), media_type=JSON)


async def w2(request: Request) -> Response:
    item = int((await _arguments(request))["id"])
    return Response(await _pool(request).fetchval(W2, item), media_type=JSON)


async def w3(request: Request) -> Response:
    level = int((await _arguments(request))["level"])
    on_hand = await _pool(request).fetchval(W3, level)
    return Response(orjson.dumps({"data": {"onHand": on_hand}}), media_type=JSON)


async def ready(_: Request) -> Response:
    return Response(b"ok")


def create_app(dsn: str) -> Starlette:
    app = Starlette(
        routes=[
            Route("/w1", w1_json, methods=["POST"]),
            Route("/w1-3q", w1_three, methods=["POST"]),
            Route("/w2", w2, methods=["POST"]),
            Route("/w3", w3, methods=["POST"]),
            Route("/readyz", ready),
        ],
        lifespan=lifespan,
    )
    app.state.dsn = dsn
    return app


if __name__ == "__main__":
    serve(__doc__, "dsn", create_app)
