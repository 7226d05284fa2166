"""The naive peer: Stockroom's W1/W2 types in Strawberry with plain resolvers and no loaders.

What a first version on this stack looks like: every relation is its own query (N+1), one
SQLAlchemy session per request, Strawberry's own ASGI app. No auth, so it carries less than
Stockroom does. ``python -m bench.peers.naive --url SQLALCHEMY_URL --port PORT``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry.asgi import GraphQL

from bench.peers import serve
from db.models import Category as CategoryRow
from db.models import Item as ItemRow
from db.models import StockLevel as StockLevelRow
from db.models import Warehouse as WarehouseRow
from schema.ids import decode_id


def _session(info: strawberry.Info) -> AsyncSession:
    session: AsyncSession = info.context["session"]
    return session


@strawberry.type
class Warehouse:
    code: str
    name: str


@strawberry.type
class Category:
    name: str


@strawberry.type
class StockLevel:
    on_hand: int
    available: int
    warehouse_id: strawberry.Private[int]

    @strawberry.field
    async def warehouse(self, info: strawberry.Info) -> Warehouse:
        row = await _session(info).get_one(WarehouseRow, self.warehouse_id)
        return Warehouse(code=row.code, name=row.name)


@strawberry.type
class Item:
    id: strawberry.Private[int]
    sku: str
    name: str
    unit_price: Decimal
    reorder_point: int
    category_id: strawberry.Private[int | None]

    @strawberry.field
    async def category(self, info: strawberry.Info) -> Category | None:
        if self.category_id is None:
            return None
        row = await _session(info).get_one(CategoryRow, self.category_id)
        return Category(name=row.name)

    @strawberry.field
    async def stock_levels(self, info: strawberry.Info) -> list[StockLevel]:
        query = select(StockLevelRow).where(StockLevelRow.item_id == self.id)
        return [
            StockLevel(
                on_hand=r.on_hand, available=r.available, warehouse_id=r.warehouse_id
            )
            for r in await _session(info).scalars(query.order_by(StockLevelRow.warehouse_id))
        ]


def _item(row: ItemRow) -> Item:
    return Item(
        id=row.id,
        sku=row.sku,
        name=row.name,
        unit_price=row.unit_price,
        reorder_point=row.reorder_point,
        category_id=row.category_id,
    )


@strawberry.type
class ItemEdge:
    node: Item


@strawberry.type
class ItemConnection:
    edges: list[ItemEdge]


@strawberry.type
class Query:
    @strawberry.field
    async def items(self, info: strawberry.Info, first: int = 100) -> ItemConnection:
        query = select(ItemRow).where(ItemRow.archived.is_(False))
        rows = await _session(info).scalars(query.order_by(ItemRow.name, ItemRow.id).limit(first))
        return ItemConnection(edges=[ItemEdge(node=_item(row)) for row in rows])

    @strawberry.field
    async def item(self, info: strawberry.Info, id: strawberry.ID) -> Item | None:
        row = await _session(info).get(ItemRow, decode_id(id, "Item"))
        return _item(row) if row is not None else None


class NaiveGraphQL(GraphQL[dict[str, Any], None]):
    def __init__(self, schema: strawberry.Schema, sessions: async_sessionmaker[AsyncSession]):
        super().__init__(schema, graphql_ide=None)
        self.sessions = sessions

    async def execute_operation(self, **kwargs: Any) -> Any:  # type: ignore[override]
        # One session per operation, closed when it is done.
        async with self.sessions() as session:
            kwargs["context"]["session"] = session
            return await super().execute_operation(**kwargs)

    async def get_context(self, request: Any, response: Any) -> dict[str, Any]:
        return {}


async def ready(_: Request) -> Response:
    return Response(b"ok")


def create_app(url: str) -> Starlette:
    engine = create_async_engine(url, pool_size=10)
    graphql = NaiveGraphQL(strawberry.Schema(Query), async_sessionmaker(engine))
    return Starlette(routes=[Route("/readyz", ready), Route("/graphql", graphql)])


if __name__ == "__main__":
    serve(__doc__, "url", create_app)
