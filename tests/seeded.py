"""Relay IDs of seeded rows by their natural keys, so each test names the rows it uses.

``db.seed`` numbers its items ``SKU-00001``, ``SKU-00002``, … and its warehouses are
``BER-1``, ``HAM-1`` and ``MUC-1``. Lists are ordered by name, which the seed draws at random:
"the first item of the list" would tie a test to that draw.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from tests.queries import ITEM_ID, WAREHOUSE_IDS

# Runs a document with its variables and returns the response's `data` (GraphQLClient.data,
# Api.run, ``over_http``).
Run = Callable[[str, dict[str, Any]], Awaitable[Any]]


def over_http(http: httpx.AsyncClient, token: str) -> Run:
    """A ``Run`` posting to ``http``'s ``/graphql`` with a bearer token."""

    async def run(query: str, variables: dict[str, Any]) -> Any:
        body = {"query": query, "variables": variables}
        response = await http.post(
            "/graphql", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        return response.json()["data"]

    return run


async def seeded_ids(
    run: Run, skus: Sequence[str] = (), codes: Sequence[str] = ()
) -> tuple[list[str], list[str]]:
    """The IDs of the items with ``skus`` and of the warehouses with ``codes``, in that order."""
    items = []
    for sku in skus:
        item = (await run(ITEM_ID, {"sku": sku}))["item"]
        if item is None:
            raise LookupError(f"the seed has no item {sku}")
        items.append(item["id"])
    warehouses: dict[str, str] = {}
    if codes:
        edges = (await run(WAREHOUSE_IDS, {}))["warehouses"]["edges"]
        warehouses = {edge["node"]["code"]: edge["node"]["id"] for edge in edges}
    return items, [warehouses[code] for code in codes]
