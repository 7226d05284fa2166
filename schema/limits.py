"""Refuse abusive operations before any resolver runs: tokens, depth, aliases and cost.

Cost follows Shopify's and Saleor's model: every field costs 1; a connection multiplies
what is selected under it by ``first``/``last`` (the default page size when absent); any
other list multiplies by a declared estimate. Each response reports
``extensions.cost = {requested, limit}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    parse,
)
from graphql.validation import validate
from strawberry.extensions import SchemaExtension

from db.pagination import DEFAULT_PAGE_SIZE
from schema.cache import LRU
from schema.errors import CodedError

TOO_COMPLEX = "QUERY_TOO_COMPLEX"

# Lists that are not connections: how many entries one usually holds.
LIST_ESTIMATES = {"stockLevels": 5, "children": 10, "movements": 2, "results": 50}
DEFAULT_LIST_ESTIMATE = 10


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int = 10
    max_aliases: int = 30
    max_tokens: int = 5_000
    max_cost: int = 50_000


@dataclass(slots=True)
class Measure:
    depth: int
    aliases: int
    cost: int


class _Walker:
    def __init__(
        self, schema: GraphQLSchema, document: DocumentNode, variables: dict[str, Any]
    ) -> None:
        self.schema = schema
        self.variables = variables
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.aliases = 0

    def _arg(self, node: FieldNode, name: str) -> int | None:
        for argument in node.arguments or ():
            if argument.name.value != name:
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode):
                raw = self.variables.get(value.name.value)
                return raw if isinstance(raw, int) and not isinstance(raw, bool) else None
        return None

    def _fields(
        self, selection_set: SelectionSetNode | None, seen: frozenset[str]
    ) -> Iterator[FieldNode]:
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                yield from self._fields(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is not None and name not in seen:
                    yield from self._fields(fragment.selection_set, seen | {name})

    def measure(
        self, selection_set: SelectionSetNode | None, parent: Any, seen: frozenset[str]
    ) -> tuple[int, int]:
        """(depth, cost) of a selection set under ``parent``."""
        depth, cost = 0, 0
        parent_is_connection = getattr(parent, "name", "").endswith("Connection")
        for field in self._fields(selection_set, seen):
            if field.alias is not None:
                self.aliases += 1
            name = field.name.value
            if name.startswith("__"):
                continue
            definition = getattr(parent, "fields", {}).get(name)
            if definition is None:
                continue
            field_type = definition.type
            named = get_named_type(field_type)
            inner = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
            multiplier = 1
            if named.name.endswith("Connection"):
                size = self._arg(field, "first")
                if size is None:
                    size = self._arg(field, "last")
                multiplier = DEFAULT_PAGE_SIZE if size is None else size
            elif isinstance(inner, GraphQLList) and not parent_is_connection:
                multiplier = LIST_ESTIMATES.get(name, DEFAULT_LIST_ESTIMATE)
            child_depth, child_cost = 0, 0
            if field.selection_set is not None:
                child_depth, child_cost = self.measure(field.selection_set, named, seen)
            depth = max(depth, child_depth + 1)
            cost += 1 + multiplier * child_cost
        return depth, cost


def measure(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
) -> Measure:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    walker = _Walker(schema, document, variables or {})
    depth, cost = 0, 0
    for operation in operations[:1]:
        root = schema.get_root_type(operation.operation)
        depth, cost = walker.measure(operation.selection_set, root, frozenset())
    # Aliases anywhere in the document count, executed or not.
    walker.aliases = 0
    for operation in operations:
        root = schema.get_root_type(operation.operation)
        walker.measure(operation.selection_set, root, frozenset())
    return Measure(depth=depth, aliases=walker.aliases, cost=cost)


class QueryLimits(SchemaExtension):
    """Parse (bounded tokens), validate (cached) and measure every operation up front."""

    def __init__(self, limits: Limits, documents: LRU, validations: LRU) -> None:
        self.limits = limits
        self.documents = documents
        self.validations = validations
        self.cost: int | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        if context.graphql_document is None and query:
            document = self.documents.get(query)
            if document is None:
                try:
                    document = parse(query, max_tokens=self.limits.max_tokens)
                except GraphQLSyntaxError as error:
                    if "tokens" in error.message:
                        raise CodedError(
                            f"The document has more than {self.limits.max_tokens} tokens",
                            TOO_COMPLEX,
                        ) from None
                    raise
                self.documents.put(query, document)
            context.graphql_document = document
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            schema = context.schema._schema
            errors = self.validations.get(context.query) if context.query else None
            if errors is None:
                errors = list(validate(schema, document, context.validation_rules))
                if context.query:
                    self.validations.put(context.query, errors)
            if not errors:
                errors = self._check(schema, document)
            context.pre_execution_errors = list(errors)
        yield

    def _check(self, schema: GraphQLSchema, document: DocumentNode) -> list[GraphQLError]:
        context = self.execution_context
        found = measure(schema, document, context.operation_name, context.variables)
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
