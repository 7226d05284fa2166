"""Refuse abusive operations before any resolver runs: tokens, depth, aliases and cost.

Cost follows Shopify's and Saleor's model: every field costs 1; a connection multiplies what
is selected under it by ``first``/``last`` (the default page size when absent); any other
list multiplies by an estimate declared per (type, field). All three measures come from one
pass over the selection walker (`schema.selection`), so they see what the executor will run:
fragments expanded, fields merged by response key, ``@skip``/``@include`` applied, and for
``node(id:)`` the widest of its possible types. A measure is remembered per (query text,
operation name, variable values), so a client repeating an operation pays for a lookup.
Each response reports ``extensions.cost = {requested, limit}``; refusals carry
``extensions.code = "QUERY_TOO_COMPLEX"``.

Which parts are Strawberry's:
- parsing is Strawberry's ``ParserCache`` with ``MaxTokensLimiter`` (graphql-core's
  ``max_tokens``); this extension only gives the token-limit syntax error our code.
- validation is cached here, keyed on the query text. Strawberry's ``ValidationCache``
  keys an ``lru_cache`` on the ``DocumentNode``, a frozen dataclass whose hash walks the
  whole tree on every lookup (about 25 µs for W1 and 5 ms near the token limit, per request).
- depth and aliases are measured here. ``QueryDepthLimiter`` and ``MaxAliasesLimiter`` are
  validation rules that report errors without our code, ignore ``@skip``/``@include`` and
  type conditions, and walk the document a second time; ours come from the walk that prices
  the operation. Aliases are those the executed operation collects (a fragment's count once
  per collection, as it runs once), not every alias written anywhere in the document.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeAlias

import orjson
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSyntaxError,
    get_named_type,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from db.pagination import DEFAULT_PAGE_SIZE
from schema.cache import LRU
from schema.errors import CodedError
from schema.selection import OperationError, SelectedField, Selection, operation_selection

TOO_COMPLEX = "QUERY_TOO_COMPLEX"

# Lists that are not connections: how many entries one usually holds.
LIST_ESTIMATES = {
    ("Item", "stockLevels"): 5,
    ("Category", "children"): 10,
    ("TransferPayload", "movements"): 2,
    ("BulkStockPayload", "results"): 50,
}
DEFAULT_LIST_ESTIMATE = 10


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int = 10
    max_aliases: int = 30
    max_tokens: int = 5_000
    max_cost: int = 50_000


@dataclass(frozen=True, slots=True)
class Measure:
    depth: int
    aliases: int
    cost: int


_NOTHING = Measure(depth=0, aliases=0, cost=0)


@lru_cache(maxsize=1024)
def is_connection(type_: GraphQLNamedType) -> bool:
    """A cursor connection by its shape: ``pageInfo`` and ``edges: [Edge]`` of ``cursor``
    and ``node``, whatever the type is called."""
    if not isinstance(type_, GraphQLObjectType) or "pageInfo" not in type_.fields:
        return False
    edges = type_.fields.get("edges")
    if edges is None:
        return False
    listed = edges.type.of_type if isinstance(edges.type, GraphQLNonNull) else edges.type
    edge = get_named_type(edges.type)
    return (
        isinstance(listed, GraphQLList)
        and isinstance(edge, GraphQLObjectType)
        and {"cursor", "node"} <= edge.fields.keys()
    )


@lru_cache(maxsize=4096)
def _list_estimate(parent: GraphQLObjectType, name: str) -> int:
    """Entries one value of ``parent.name`` holds: 1 for a single value or a connection (its
    page size applies instead), the declared estimate for any other list."""
    field_type = parent.fields[name].type
    inner = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
    # A connection's own list (`edges`) is already priced by the connection's page size.
    if not isinstance(inner, GraphQLList) or is_connection(parent):
        return 1
    if is_connection(get_named_type(field_type)):
        return 1
    return LIST_ESTIMATES.get((parent.name, name), DEFAULT_LIST_ESTIMATE)


def _multiplier(field: SelectedField) -> int:
    """How many times the field's sub-selection runs per parent value."""
    if is_connection(field.named_type):
        size = field.arguments.get("first")
        if size is None:
            size = field.arguments.get("last")
        # A negative size is refused by the resolver; it must not lower the sum meanwhile.
        return DEFAULT_PAGE_SIZE if size is None else max(size, 0)
    return _list_estimate(field.parent_type, field.name)


def measure_selection(selection: Selection) -> Measure:
    """Depth, aliases and cost below ``selection``: the widest of its possible types."""
    depth = aliases = cost = 0
    for runtime in selection.possible_types:
        type_depth = type_aliases = type_cost = 0
        for field in selection.fields_for(runtime).values():
            below = _NOTHING if field.selection is None else measure_selection(field.selection)
            type_aliases += field.aliases + below.aliases
            if field.name.startswith("__"):  # introspection: free and no deeper
                continue
            type_depth = max(type_depth, below.depth + 1)
            type_cost += 1 + _multiplier(field) * below.cost
        depth, aliases, cost = max(depth, type_depth), max(aliases, type_aliases), max(
            cost, type_cost
        )
    return Measure(depth=depth, aliases=aliases, cost=cost)


def measure(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
) -> Measure:
    """The measures of the operation that will run; OperationError when none can."""
    return measure_selection(operation_selection(schema, document, operation_name, variables))


MeasureKey: TypeAlias = tuple[str, str | None, bytes]


def _measure_key(
    query: str | None, operation_name: str | None, variables: dict[str, Any] | None
) -> MeasureKey | None:
    """What a measure depends on: the text, the operation and every variable's value."""
    if not query:
        return None
    try:
        encoded = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # e.g. multipart uploads: measure every time
        return None
    return query, operation_name, encoded


class QueryLimits(SchemaExtension):
    """Validate (cached) and measure every operation before it runs; name the token limit."""

    def __init__(
        self,
        limits: Limits,
        validations: LRU[str, list[GraphQLError]],
        measures: LRU[MeasureKey, Measure],
    ) -> None:
        self.limits = limits
        self.validations = validations
        self.measures = measures
        self.cost: int | None = None

    def on_operation(self) -> Iterator[None]:
        # ParserCache parses with MaxTokensLimiter's max_tokens; its error reaches us here.
        try:
            yield
        except GraphQLSyntaxError as error:
            if f"more than {self.limits.max_tokens} tokens" not in error.message:
                raise
            raise CodedError(
                f"The document has more than {self.limits.max_tokens} tokens", TOO_COMPLEX
            ) from None

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            schema = context.schema._schema
            errors = self.validations.get(context.query) if context.query else None
            if errors is None:
                errors = validate_document(schema, document, context.validation_rules)
                if context.query:
                    self.validations.put(context.query, errors)
            if not errors:
                errors = self._check(schema, document)
            context.pre_execution_errors = list(errors)
        yield

    def _check(self, schema: GraphQLSchema, document: DocumentNode) -> list[GraphQLError]:
        context = self.execution_context
        key = _measure_key(context.query, context.operation_name, context.variables)
        found = None if key is None else self.measures.get(key)
        if found is None:
            try:
                found = measure(schema, document, context.operation_name, context.variables)
            except (OperationError, GraphQLError):
                # No operation to run or variables that do not coerce: execution reports it
                # in its own words, before any resolver.
                return []
            if key is not None:
                self.measures.put(key, found)
        self.cost = found.cost
        limits = self.limits
        if found.depth > limits.max_depth:
            return [CodedError(f"Query depth {found.depth} exceeds {limits.max_depth}",
                               TOO_COMPLEX)]
        if found.aliases > limits.max_aliases:
            return [CodedError(f"{found.aliases} aliases exceed {limits.max_aliases}",
                               TOO_COMPLEX)]
        if found.cost > limits.max_cost:
            return [CodedError(f"Query cost {found.cost} exceeds {limits.max_cost}",
                               TOO_COMPLEX)]
        return []

    def get_results(self) -> dict[str, Any]:
        return {"cost": {"requested": self.cost, "limit": self.limits.max_cost}}
