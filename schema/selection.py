"""One walk over what an operation selects, collected the way graphql-core's executor does.

A `Selection` is a position of composite type in a validated operation: the root, or the
sub-selection of one field. Its fields are collected per runtime object type as
`collect_fields`/`collect_subfields` collect them (fragments with type conditions, fields
merged by response key in first-seen order, a named fragment spread once per collection,
`@skip`/`@include` with literals or variables), so an interface such as `Node` answers for
each of its possible types. Each `SelectedField` carries what a consumer needs without
reading the AST again: response key, schema name, parent type, definition, the merged
FieldNodes (error locations) and its arguments coerced as graphql-core gives them to
resolvers (GraphQL names, variables and defaults applied, input objects as dicts).

Everything is lazy: a position collects its fields the first time it is asked for a type,
and a field coerces its arguments the first time they are read, so a resolver asking one
question pays for one level. The walk depends on the document, the operation and the values
of the variables; of those, only the `@skip`/`@include` variables (`shape_variables`) change
which fields exist, so a plan built from the shape can be cached on them and re-read the
arguments of a later request with `SelectedField.arguments_with`.

Used by the query limits (depth, aliases, cost), by the resolvers' prefetch
(`selection_of(info)`), and by anything that compiles an operation ahead of execution
(`operation_selection`). `@defer`/`@stream` are not enabled in the schema, so not handled.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, TypeAlias

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLCompositeType,
    GraphQLError,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    NamedTypeNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_argument_values,
    get_directive_values,
    get_named_type,
    get_operation_ast,
    get_variable_values,
    is_abstract_type,
    is_composite_type,
)
from graphql.execution import VariableValues

Fields: TypeAlias = Mapping[str, "SelectedField"]
_DIRECTIVES = (GraphQLSkipDirective.name, GraphQLIncludeDirective.name)


class OperationError(Exception):
    """The document has no operation to walk, or its variables do not coerce."""

    def __init__(self, errors: list[GraphQLError]) -> None:
        super().__init__("; ".join(error.message for error in errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class _Scope:
    """What every position of one walk shares: schema, fragments, coerced variables."""

    schema: GraphQLSchema
    fragments: Mapping[str, FragmentDefinitionNode]
    variables: VariableValues

    def includes(self, node: FieldNode | InlineFragmentNode | FragmentSpreadNode) -> bool:
        if not node.directives:
            return True
        # @skip wins over @include, as in graphql-core's should_include_node.
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip and skip["if"]:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return not (include and not include["if"])

    def matches(self, condition: NamedTypeNode | None, runtime: GraphQLObjectType) -> bool:
        if condition is None:
            return True
        conditional = self.schema.get_type(condition.name.value)
        if conditional is runtime:
            return True
        return is_abstract_type(conditional) and self.schema.is_sub_type(conditional, runtime)

    def visit(
        self,
        selection_set: SelectionSetNode,
        runtime: GraphQLObjectType,
        grouped: dict[str, list[FieldNode]],
        visited: set[str],
    ) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if self.includes(selection):
                    key = selection.alias.value if selection.alias else selection.name.value
                    grouped.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                if self.includes(selection) and self.matches(selection.type_condition, runtime):
                    self.visit(selection.selection_set, runtime, grouped, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if not self.includes(selection):
                    continue
                fragment = self.fragments.get(name)
                # A spread is marked visited only once it applies, as graphql-core does.
                if fragment is None or not self.matches(fragment.type_condition, runtime):
                    continue
                if name in visited:
                    continue
                visited.add(name)
                self.visit(fragment.selection_set, runtime, grouped, visited)

    def collect(
        self, runtime: GraphQLObjectType, selection_sets: tuple[SelectionSetNode, ...]
    ) -> dict[str, SelectedField]:
        grouped: dict[str, list[FieldNode]] = {}
        # One visited set across all merged field nodes, like collect_subfields.
        visited: set[str] = set()
        for selection_set in selection_sets:
            self.visit(selection_set, runtime, grouped, visited)
        fields: dict[str, SelectedField] = {}
        for key, nodes in grouped.items():
            name = nodes[0].name.value
            found = _definition(self.schema, runtime, name)
            if found is None:  # unknown to the type: the executor leaves it out too
                continue
            definition, named = found
            below = None
            if is_composite_type(named):
                sets = tuple(node.selection_set for node in nodes if node.selection_set)
                below = Selection(self, named, sets)
            fields[key] = SelectedField(
                key=key,
                name=name,
                parent_type=runtime,
                definition=definition,
                named_type=named,
                nodes=tuple(nodes),
                selection=below,
                scope=self,
            )
        return fields


@lru_cache(maxsize=4096)
def _definition(
    schema: GraphQLSchema, parent: GraphQLObjectType, name: str
) -> tuple[GraphQLField, GraphQLNamedType] | None:
    # Per request every field is looked up and unwrapped; the answers never change.
    definition = schema.get_field(parent, name)
    return None if definition is None else (definition, get_named_type(definition.type))


@dataclass(frozen=True, eq=False)
class SelectedField:
    """One response key of one runtime type: a field as the executor will resolve it."""

    key: str
    name: str
    parent_type: GraphQLObjectType
    definition: GraphQLField
    named_type: GraphQLNamedType  # the definition's type without list and non-null
    nodes: tuple[FieldNode, ...]
    selection: Selection | None
    scope: _Scope = field(repr=False)

    @cached_property
    def arguments(self) -> dict[str, Any]:
        """Arguments coerced with this walk's variables and the schema's defaults."""
        return self.arguments_with(self.scope.variables)

    def arguments_with(self, variables: VariableValues | Mapping[str, Any]) -> dict[str, Any]:
        """Arguments coerced with other (already coerced) variable values."""
        # Fields merge only with identical arguments (validation), so the first node speaks.
        return get_argument_values(self.definition, self.nodes[0], _variable_values(variables))

    @property
    def aliases(self) -> int:
        """How many of the merged nodes carry an alias."""
        return sum(1 for node in self.nodes if node.alias is not None)


class Selection:
    """The fields selected at one position of object, interface or union type."""

    __slots__ = ("_by_type", "_scope", "selection_sets", "type")

    def __init__(
        self,
        scope: _Scope,
        type_: GraphQLCompositeType,
        selection_sets: tuple[SelectionSetNode, ...],
    ) -> None:
        self._scope = scope
        self.type = type_
        self.selection_sets = selection_sets
        self._by_type: dict[str, dict[str, SelectedField]] = {}

    def __repr__(self) -> str:
        return f"Selection({self.type.name})"

    @property
    def schema(self) -> GraphQLSchema:
        return self._scope.schema

    @property
    def possible_types(self) -> tuple[GraphQLObjectType, ...]:
        """The object types a value at this position can have, in schema order."""
        if isinstance(self.type, GraphQLObjectType):
            return (self.type,)
        return tuple(self._scope.schema.get_possible_types(self.type))

    def fields_for(self, runtime_type: GraphQLObjectType | str) -> Fields:
        """Response key -> field, collected for a value of this runtime type, in order."""
        name = runtime_type if isinstance(runtime_type, str) else runtime_type.name
        fields = self._by_type.get(name)
        if fields is None:
            fields = self._scope.collect(self._runtime(name), self.selection_sets)
            self._by_type[name] = fields
        return fields

    def _runtime(self, name: str) -> GraphQLObjectType:
        runtime = self._scope.schema.get_type(name)
        if not isinstance(runtime, GraphQLObjectType) or not (
            runtime is self.type
            or (is_abstract_type(self.type) and self._scope.schema.is_sub_type(self.type, runtime))
        ):
            raise ValueError(f"{name} is not a possible type of {self.type.name}")
        return runtime

    @property
    def fields(self) -> Fields:
        """The fields of an object-typed position (for an abstract one, see `fields_for`)."""
        if not isinstance(self.type, GraphQLObjectType):
            raise TypeError(f"{self.type.name} is abstract: ask fields_for(<object type>)")
        return self.fields_for(self.type)

    def all_fields(self) -> Iterator[SelectedField]:
        """Every field collected, for every possible type in turn."""
        for runtime in self.possible_types:
            yield from self.fields_for(runtime).values()

    def child(self, key: str, on: GraphQLObjectType | str | None = None) -> SelectedField | None:
        """The field at response ``key`` (for ``on``, else the first possible type having it)."""
        types = self.possible_types if on is None else (on,)
        for runtime in types:
            found = self.fields_for(runtime).get(key)
            if found is not None:
                return found
        return None

    def path(self, *keys: str) -> SelectedField | None:
        """Follow response keys down, e.g. ``path("edges", "node")``."""
        current: Selection | None = self
        found: SelectedField | None = None
        for key in keys:
            if current is None:
                return None
            found = current.child(key)
            if found is None:
                return None
            current = found.selection
        return found

    def named(self, name: str) -> tuple[SelectedField, ...]:
        """Every field selected under the schema name ``name``, whatever its alias."""
        return tuple(f for f in self.all_fields() if f.name == name)

    def below(self, *names: str) -> tuple[Selection, ...]:
        """The selections reached by following schema field names, through every alias."""
        level: tuple[Selection, ...] = (self,)
        for name in names:
            level = tuple(
                f.selection for s in level for f in s.named(name) if f.selection is not None
            )
        return level

    def has(self, *names: str) -> bool:
        """Whether the path of schema field names is selected, e.g. ``has("stockLevels",
        "warehouse")``: a ``warehouse`` under ``stockLevels``, not one anywhere below."""
        *through, last = names
        return any(s.named(last) for s in self.below(*through))


_NO_VARIABLES = VariableValues(sources={}, coerced={})


def _variable_values(variables: VariableValues | Mapping[str, Any]) -> VariableValues:
    if isinstance(variables, VariableValues):
        return variables
    # Strawberry's executor hands resolvers the coerced dict; sources matter only for
    # fragment variables, which the schema does not enable.
    return VariableValues(sources={}, coerced=dict(variables))


def coerce_variables(
    schema: GraphQLSchema, operation: OperationDefinitionNode, raw: Mapping[str, Any] | None
) -> VariableValues:
    """The request's variables coerced as execution will coerce them, or OperationError."""
    if not operation.variable_definitions:
        return _NO_VARIABLES
    coerced = get_variable_values(schema, operation.variable_definitions or (), dict(raw or {}))
    if isinstance(coerced, list):
        raise OperationError(coerced)
    return coerced


def operation_selection(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
) -> Selection:
    """The root selection of a validated operation, given the request's raw variables."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        wanted = "an operation name" if operation_name is None else f"operation {operation_name}"
        raise OperationError([GraphQLError(f"The document has no single {wanted} to run")])
    root = schema.get_root_type(operation.operation)
    if root is None:
        raise OperationError([GraphQLError(f"The schema has no {operation.operation.value} type")])
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    scope = _Scope(schema, fragments, coerce_variables(schema, operation, variables))
    return Selection(scope, root, (operation.selection_set,))


def selection_of(info: strawberry.Info[Any, Any] | GraphQLResolveInfo) -> Selection:
    """The current field's sub-selection, from a resolver's ``info``."""
    # Strawberry keeps graphql-core's info (field nodes, fragments) on a private attribute.
    raw = info._raw_info if isinstance(info, strawberry.Info) else info
    named = get_named_type(raw.return_type)
    if not is_composite_type(named):
        raise ValueError(f"{raw.field_name} is a leaf: it has no selection")
    scope = _Scope(raw.schema, raw.fragments, _variable_values(raw.variable_values))
    sets = tuple(node.selection_set for node in raw.field_nodes if node.selection_set)
    return Selection(scope, named, sets)


def shape_variables(document: DocumentNode) -> frozenset[str]:
    """Variables whose values decide which fields exist: those of ``@skip``/``@include``.

    A walk's fields (not their arguments) are a function of the document, the operation and
    these values, so they are the cache key for anything built from the shape.
    """
    found: set[str] = set()

    def visit(selection_set: SelectionSetNode | None) -> None:
        for selection in selection_set.selections if selection_set else ():
            for directive in selection.directives or ():
                if directive.name.value in _DIRECTIVES:
                    for argument in directive.arguments or ():
                        if isinstance(argument.value, VariableNode):
                            found.add(argument.value.name.value)
            visit(getattr(selection, "selection_set", None))

    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
            visit(definition.selection_set)
    return frozenset(found)
