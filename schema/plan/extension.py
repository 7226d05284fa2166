"""The SchemaExtension that answers planned queries before graphql-core executes them.

Strawberry skips graphql-core's execution when ``execution_context.result`` is set by the
time the innermost ``on_execute`` yields; parsing, validation, limits, persisted queries,
masking and metrics run around it as for any request. Whatever the plan cannot reproduce
byte for byte is left to the resolvers, and each outcome is reported by reason.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from graphql import DocumentNode, ExecutionResult, GraphQLError, GraphQLSchema, get_operation_ast
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from db.models import Role
from db.plan.tree import NestedPageError
from schema.context import Context
from schema.plan.build import Plan, Unplannable, compile_operation
from schema.plan.cache import PlanCache
from schema.plan.output import Fallback, Output
from schema.plan.roots import RootError
from schema.selection import OperationError, coerce_variables, operation_selection

log = logging.getLogger("stockroom.planner")

# Called once per operation: ("planned", "") or ("fallback", reason).
Recorder = Callable[[str, str], None]

PLANNED = "planned"
FALLBACK = "fallback"


def _ignore(outcome: str, reason: str) -> None:
    return None


class PlannedReads(SchemaExtension):
    """Runs a query through its cached plan when it has one; see the module docstring."""

    def __init__(self, plans: PlanCache, record: Recorder = _ignore) -> None:
        self.plans = plans
        self.record = record

    async def on_execute(self) -> AsyncIterator[None]:
        result = await self._planned()
        if result is not None:
            self.execution_context.result = result
        yield

    async def _planned(self) -> ExecutionResult | None:
        ec = self.execution_context
        if ec.operation_type is not OperationType.QUERY:
            self.record(FALLBACK, ec.operation_type.value)
            return None
        document, query, context = ec.graphql_document, ec.query, ec.context
        if document is None or query is None or not isinstance(context, Context):
            self.record(FALLBACK, "no document")
            return None
        operation = get_operation_ast(document, ec.operation_name)
        if operation is None:
            self.record(FALLBACK, "no operation")
            return None
        schema = ec.schema._schema
        try:
            variables = coerce_variables(schema, operation, ec.variables)
        except OperationError:
            # graphql-core reports variable coercion itself.
            self.record(FALLBACK, "variables")
            return None
        role = context.user.role if context.user is not None else None
        key = self.plans.key(query, document, ec.operation_name, role, variables.coerced)
        plan = self.plans.get(key)
        if plan is None:
            plan = self._compile(schema, document, ec.operation_name, ec.variables, role)
            self.plans.put(key, plan)
        if isinstance(plan, str):
            self.record(FALLBACK, plan)
            return None
        try:
            result = await _run(plan, context, variables.coerced)
        except Fallback as exc:
            self.record(FALLBACK, exc.reason)
            return None
        except NestedPageError:
            # A bad cursor on a nested connection: every parent raises it, in I/O order.
            self.record(FALLBACK, "nested page arguments")
            return None
        except Exception as exc:
            log.exception("planned read failed; running the resolvers instead")
            # The resolvers start on a clean session; if even that fails (the database is
            # down, say), they report it as they always do.
            with contextlib.suppress(Exception):
                await context.reader.reset()
            self.record(FALLBACK, f"error: {type(exc).__name__}")
            return None
        self.record(PLANNED, "")
        return result

    @staticmethod
    def _compile(
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: str | None,
        variables: dict[str, Any] | None,
        role: Role | None,
    ) -> Plan | str:
        try:
            root = operation_selection(schema, document, operation, variables)
            return compile_operation(root, role)
        except Unplannable as exc:
            return exc.reason


async def _run(plan: Plan, context: Context, variables: dict[str, Any]) -> ExecutionResult:
    out = Output(variables)
    data: dict[str, Any] | None = {}
    errors: list[GraphQLError] = []
    for root in plan.roots:
        try:
            value = await root.run(context, variables, out)
        except RootError as exc:
            errors.append(exc.error)
            if not root.nullable:
                data = None
                break
            value = None
        assert data is not None
        data[root.key] = value
    errors.extend(out.errors)
    if errors and len(plan.roots) > 1:
        # graphql-core runs root fields concurrently: their errors' order is the I/O's.
        raise Fallback("errors in several root fields")
    if out.unordered and len(errors) > 1:
        raise Fallback("errors below awaited fields")
    return ExecutionResult(data, errors or None)
