"""Both read paths over one database: the planner's and the resolvers', compared byte for byte.

``Paths.same`` sends a request to an app with the planner on and to one with it off, requires
the two response bodies to be identical bytes, and requires the planner's app to have counted
it as planned, so a silent fallback cannot pass for parity.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from api.app import create_app
from db.engine import create_engine, write_sessionmaker
from db.models import Category, Item, StockLevel, Warehouse
from db.session import unit_of_work
from tests.conftest import make_settings
from tests.queries import LOGIN

ROLES = ("viewer", "clerk", "manager", "admin")


class Paths:
    def __init__(self, planned: httpx.AsyncClient, resolvers: httpx.AsyncClient, app: FastAPI):
        self.planned = planned
        self.resolvers = resolvers
        self.app = app
        self.tokens: dict[str, str] = {}

    def count(self, outcome: str, reason: str = "") -> float:
        count: float = self.app.state.stockroom.metrics.planner_count(outcome, reason)
        return count

    def fallbacks(self) -> dict[str, float]:
        """Fallback counts so far by reason."""
        registry = self.app.state.stockroom.metrics.registry
        return {
            sample.labels["reason"]: sample.value
            for metric in registry.collect()
            for sample in metric.samples
            if sample.name == "stockroom_planner_operations_total"
            and sample.labels["outcome"] == "fallback"
        }

    async def token(self, role: str) -> str:
        if role not in self.tokens:
            body = {"query": LOGIN, "variables": {"e": f"{role}@example.com", "p": role}}
            response = await self.resolvers.post("/graphql", json=body)
            self.tokens[role] = response.json()["data"]["login"]["accessToken"]
        return self.tokens[role]

    async def both(
        self, query: str, variables: dict[str, Any] | None, role: str | None
    ) -> tuple[bytes, bytes]:
        headers = {"Authorization": f"Bearer {await self.token(role)}"} if role else {}
        body = {"query": query, "variables": variables or {}}
        planned = await self.planned.post("/graphql", json=body, headers=headers)
        resolvers = await self.resolvers.post("/graphql", json=body, headers=headers)
        assert planned.status_code == resolvers.status_code
        return planned.content, resolvers.content

    async def same(
        self, query: str, variables: dict[str, Any] | None = None, role: str | None = "viewer"
    ) -> Any:
        """The response, after checking both paths gave the same bytes and the plan ran."""
        before = self.count("planned")
        planned, resolvers = await self.both(query, variables, role)
        assert planned == resolvers, f"\nplanned:   {planned!r}\nresolvers: {resolvers!r}"
        assert self.count("planned") == before + 1, f"not planned: {self.fallbacks()}"
        return httpx.Response(200, content=planned).json()


@asynccontextmanager
async def paths(url: str) -> AsyncIterator[Paths]:
    planned_app = create_app(make_settings(url))
    resolver_app = create_app(make_settings(url, planner=False))
    async with (
        planned_app.router.lifespan_context(planned_app),
        resolver_app.router.lifespan_context(resolver_app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=planned_app), base_url="http://test"
        ) as planned,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=resolver_app), base_url="http://test"
        ) as resolvers,
    ):
        yield Paths(planned, resolvers, planned_app)


EDGE_SKUS = ("EDGE-TEN", "EDGE-TWELVE", "EDGE-TIE-A", "EDGE-TIE-B", "EDGE-BARE", "EDGE-ARCH")


async def add_edge_rows(url: str) -> None:
    """Rows that break serialisers: round prices, whole-second times, ties, no relations."""
    engine = create_engine(url)
    whole = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    try:
        async with unit_of_work(write_sessionmaker(engine)) as session:
            category = (await session.scalars(select(Category).limit(1))).one()
            warehouse = (await session.scalars(select(Warehouse).order_by(Warehouse.id))).first()
            assert warehouse is not None
            rows = [
                Item(
                    sku="EDGE-TEN",
                    name="Ärger 日本 ten",
                    unit_price=Decimal("10.00"),
                    unit_cost=Decimal("12.50"),
                    category_id=category.id,
                    created_at=whole,
                    updated_at=whole,
                ),
                Item(
                    sku="EDGE-TWELVE",
                    name="Twelve fifty",
                    unit_price=Decimal("12.50"),
                    unit_cost=None,
                    category_id=category.id,
                    created_at=whole,
                    updated_at=whole,
                ),
                Item(
                    sku="EDGE-TIE-A",
                    name="Tied name",
                    unit_price=Decimal("10.00"),
                    category_id=category.id,
                    created_at=whole,
                    updated_at=whole,
                ),
                Item(
                    sku="EDGE-TIE-B",
                    name="Tied name",
                    unit_price=Decimal("10.00"),
                    category_id=category.id,
                    created_at=whole,
                    updated_at=whole,
                ),
                Item(
                    sku="EDGE-BARE",
                    name="Bare: no category, no stock",
                    unit_price=Decimal("0.00"),
                    description="ünïcode ✓",
                ),
                Item(
                    sku="EDGE-ARCH", name="Archived one", unit_price=Decimal("1.10"), archived=True
                ),
            ]
            session.add_all(rows)
            await session.flush()
            session.add_all(
                [
                    StockLevel(
                        item_id=rows[0].id,
                        warehouse_id=warehouse.id,
                        on_hand=5,
                        reserved=2,
                        updated_at=whole,
                    ),
                    StockLevel(
                        item_id=rows[2].id,
                        warehouse_id=warehouse.id,
                        on_hand=0,
                        reserved=0,
                        updated_at=whole,
                    ),
                ]
            )
    finally:
        await engine.dispose()
