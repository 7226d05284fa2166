"""Generated read queries (hypothesis-graphql) give the same bytes on both paths, every role.

A generated document may hold what the planner deliberately leaves to the resolvers (a bad
argument on a nested connection, several root fields each with errors); it must then be
counted as a fallback with one of the run-time reasons below, never silently.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from graphql import StringValueNode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import queries as graphql_queries

from schema import build_schema
from schema.plan.registry import FALLBACK, FALLBACK_ARGUMENTS, PLANNED_ROOTS
from tests.conftest import Database
from tests.plan_paths import ROLES, Paths, add_edge_rows, paths

SCHEMA = build_schema()._schema
# The planned roots (the others are listed in FALLBACK and tested by the resolvers' suites).
ROOTS = sorted(PLANNED_ROOTS - {"__typename"})
# Run-time conditions the plan hands to the resolvers on purpose (schema/plan, "Fallback").
RUN_TIME_REASONS = {
    "nested page arguments",
    "errors below awaited fields",
    "errors in several root fields",
    "bad warehouseId",
}
NODE_FALLBACK = "node of type "  # node(id:) of another type than Item
# Fields and arguments the registry lists as falling back, as the planner names them.
LISTED = {f"{t}.{f}" for t, fields in FALLBACK.items() for f in fields} | set(FALLBACK_ARGUMENTS)
# The generator draws String, Int, Boolean and ID itself; these are the schema's own scalars.
SCALARS = {
    "DateTime": st.sampled_from(["2026-01-02T03:04:05+00:00", "2020-01-01T00:00:00"]).map(
        lambda v: StringValueNode(value=v)
    ),
    "Decimal": st.sampled_from(["10.00", "12.5"]).map(lambda v: StringValueNode(value=v)),
    "Upload": st.just(StringValueNode(value="x")),
}


@pytest.fixture
async def both(seeded_db: Database) -> AsyncIterator[Paths]:
    await add_edge_rows(seeded_db.url)
    async with paths(seeded_db.url) as p:
        for role in ROLES:
            await p.token(role)
        yield p


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_generated_queries_agree_byte_for_byte(both: Paths, data: st.DataObject) -> None:
    # given a generated query over one read root (several: each with its own errors would
    # race in graphql-core, a listed fallback) and a role (or none)
    root = data.draw(st.sampled_from(ROOTS))
    query = data.draw(
        graphql_queries(SCHEMA, fields=[root], custom_scalars=SCALARS, allow_x00=False)
    )
    role = data.draw(st.sampled_from([*ROLES, None]))
    planned_before, fallbacks_before = both.count("planned"), both.fallbacks()
    # when it runs down both paths, then the bytes agree
    planned, resolvers = await both.both(str(query), None, role)
    assert planned == resolvers, (query, role, planned[:2000], resolvers[:2000])
    # and it was planned, or left to the resolvers for a listed run-time reason
    if both.count("planned") == planned_before:
        grown = {
            reason
            for reason, count in both.fallbacks().items()
            if count > fallbacks_before.get(reason, 0)
        }
        unexpected = {
            r for r in grown - RUN_TIME_REASONS - LISTED if not r.startswith(NODE_FALLBACK)
        }
        assert not unexpected, (query, grown)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_generated_multi_root_queries_agree(both: Paths, data: st.DataObject) -> None:
    # given a generated query over several roots, then both paths agree byte for byte
    query = data.draw(
        graphql_queries(SCHEMA, fields=ROOTS, custom_scalars=SCALARS, allow_x00=False)
    )
    role = data.draw(st.sampled_from([*ROLES, None]))
    planned_before, fallbacks_before = both.count("planned"), both.fallbacks()
    planned, resolvers = await both.both(str(query), None, role)
    assert planned == resolvers, (query, role, planned[:2000], resolvers[:2000])
    if both.count("planned") == planned_before:
        grown = {
            reason
            for reason, count in both.fallbacks().items()
            if count > fallbacks_before.get(reason, 0)
        }
        unexpected = {
            r for r in grown - RUN_TIME_REASONS - LISTED if not r.startswith(NODE_FALLBACK)
        }
        assert not unexpected, (query, grown)
