"""The benchmark's data: a throwaway PostgreSQL (the tests' fixture code), migrated and seeded."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass, field

import asyncpg

from tests.throwaway import PostgresServer, start_postgres

# pg_stat_statements counts the statements each peer sends per request.
PG_SETTINGS = (
    "shared_preload_libraries=pg_stat_statements",
    "pg_stat_statements.track=all",
    "pg_stat_statements.max=10000",
)


@dataclass(frozen=True)
class Shape:
    items: int
    categories: int
    warehouses: int
    movements_per_level: int


FULL = Shape(items=1000, categories=50, warehouses=5, movements_per_level=4)
QUICK = Shape(items=120, categories=8, warehouses=2, movements_per_level=2)


@dataclass
class Dataset:
    server: PostgresServer
    item_ids: list[int] = field(default_factory=list)
    warehouse_ids: list[int] = field(default_factory=list)
    # (level id, item id, warehouse id) of the hot levels W3 writes to.
    hot_levels: list[tuple[int, int, int]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def dsn(self) -> str:
        return self.server.dsn


async def _describe(dataset: Dataset, hot: int) -> None:
    connection = await asyncpg.connect(dataset.dsn)
    try:
        await connection.execute("create extension if not exists pg_stat_statements")
        await connection.execute("vacuum analyze")
        dataset.item_ids = [
            r[0] for r in await connection.fetch("select id from items order by id")
        ]
        dataset.warehouse_ids = [
            r[0] for r in await connection.fetch("select id from warehouses order by id")
        ]
        rows = await connection.fetch(
            "select id, item_id, warehouse_id from stock_levels order by id limit $1", hot
        )
        dataset.hot_levels = [(r[0], r[1], r[2]) for r in rows]
        for table in ("items", "categories", "warehouses", "stock_levels", "stock_movements"):
            dataset.counts[table] = await connection.fetchval(f"select count(*) from {table}")
    finally:
        await connection.close()


def prepare(shape: Shape, hot: int = 100) -> Dataset:
    """Start PostgreSQL, migrate and seed with the real CLI; the caller closes ``server``."""
    server = start_postgres(PG_SETTINGS)
    try:
        env = {**os.environ, "STOCKROOM_DATABASE_URL": server.url}
        seed = [
            "seed", "--demo", f"--items={shape.items}", f"--warehouses={shape.warehouses}",
            f"--categories={shape.categories}",
            f"--movements-per-level={shape.movements_per_level}",
        ]
        for args in (["migrate"], seed):
            subprocess.run(
                [sys.executable, "-m", "api.cli", *args], env=env, check=True, capture_output=True
            )
        dataset = Dataset(server)
        asyncio.run(_describe(dataset, hot))
    except BaseException:
        server.close()
        raise
    return dataset
