"""The ceilings of W2: what the frameworks cost per request before any work of ours.

- ``router``: Strawberry's stock ``GraphQLRouter`` on FastAPI with W2's types, its parser and
  validation caches on, answering W2's document; an ``on_execute`` extension supplies the
  result, so nothing resolves and no database is touched. Every cost left is the router's:
  routing, dependency injection, body parsing, the extension runner, variable coercion and
  the response.
- ``fastapi``: one FastAPI route with one async dependency that reads the JSON body and
  answers W2's JSON: the least a FastAPI endpoint costs.

``python -m bench.peers.ceiling --kind router|fastapi --port PORT``.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Annotated, Any

import orjson
import strawberry
from fastapi import Depends, FastAPI
from starlette.requests import Request
from starlette.responses import Response
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache
from strawberry.fastapi import GraphQLRouter
from strawberry.types import ExecutionResult

from bench.peers import serve

# What Stockroom answers for one item of the seeded data: the same shape and size.
ITEM = {"sku": "SKU-00001", "name": "Sturdy Bracket 1", "unitPrice": "123.45", "reorderPoint": 5}
W2_JSON = orjson.dumps({"data": {"item": ITEM}})


@strawberry.type
class Item:
    sku: str
    name: str
    unit_price: Decimal
    reorder_point: int


@strawberry.type
class Query:
    @strawberry.field
    def item(self, id: strawberry.ID) -> Item | None:
        raise AssertionError("execution is skipped by SkipExecution")


class SkipExecution(SchemaExtension):
    """Hand back W2's result without executing: the router's cost alone remains."""

    def on_execute(self) -> Iterator[None]:
        self.execution_context.result = ExecutionResult(data={"item": dict(ITEM)}, errors=None)
        yield


def router_app() -> FastAPI:
    schema = strawberry.Schema(
        Query, extensions=[ParserCache, ValidationCache, SkipExecution]
    )
    app = FastAPI()
    app.include_router(GraphQLRouter(schema, graphql_ide=None), prefix="/graphql")
    return app


async def arguments(request: Request) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(await request.body())
    return body


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.post("/w2")
    async def w2(body: Annotated[dict[str, Any], Depends(arguments)]) -> Response:
        assert "query" in body
        return Response(W2_JSON, media_type="application/json")

    return app


def create_app(kind: str) -> FastAPI:
    if kind == "router":
        return router_app()
    if kind == "fastapi":
        return fastapi_app()
    raise SystemExit(f"--kind must be router or fastapi, not {kind!r}")


if __name__ == "__main__":
    serve(__doc__, "kind", create_app)
