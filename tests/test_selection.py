"""The selection walker against graphql-core's own field collection."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import strawberry
from graphql import (
    ArgumentNode,
    BooleanValueNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    NamedTypeNode,
    NameNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    SelectionNode,
    SelectionSetNode,
    VariableDefinitionNode,
    VariableNode,
    get_argument_values,
    get_named_type,
    get_operation_ast,
    get_variable_values,
    is_composite_type,
    parse,
    print_ast,
    validate,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import queries as graphql_queries

from schema import build_schema
from schema.selection import (
    OperationError,
    Selection,
    operation_selection,
    selection_of,
    shape_variables,
)
from tests.strategies import CUSTOM_SCALARS

SCHEMA: GraphQLSchema = build_schema()._schema

Tree = dict[str, list[tuple[str, str, list[int], dict[str, Any], Any]]]


def _walked(selection: Selection) -> Tree:
    """Our walk as plain data: per possible type, (key, name, node ids, arguments, below)."""
    tree: Tree = {}
    for runtime in selection.possible_types:
        entries = []
        for field in selection.fields_for(runtime).values():
            assert field.parent_type is runtime
            below = None if field.selection is None else _walked(field.selection)
            entries.append((field.key, field.name, [id(n) for n in field.nodes],
                            field.arguments, below))
        tree[runtime.name] = entries
    return tree


def _reference(source: DocumentNode, operation_name: str | None,
               variables: dict[str, Any]) -> Tree:
    """The same data from graphql-core's collect_fields/collect_subfields."""
    operation = get_operation_ast(source, operation_name)
    assert operation is not None
    values = get_variable_values(SCHEMA, operation.variable_definitions or (), variables)
    assert not isinstance(values, list), values
    fragments = {d.name.value: FragmentDetails(d) for d in source.definitions
                 if isinstance(d, FragmentDefinitionNode)}

    def tree(runtime: GraphQLObjectType, grouped: dict[str, list[FieldDetails]]) -> Any:
        entries = []
        for key, details in grouped.items():
            nodes = [d.node for d in details]
            definition = SCHEMA.get_field(runtime, nodes[0].name.value)
            assert definition is not None
            named = get_named_type(definition.type)
            below = None
            if is_composite_type(named):
                types = ([named] if isinstance(named, GraphQLObjectType)
                         else SCHEMA.get_possible_types(named))  # type: ignore[arg-type]
                below = {t.name: tree(t, collect_subfields(SCHEMA, fragments, values, operation,
                                                           t, details).grouped_field_set)
                         for t in types}
            entries.append((key, nodes[0].name.value, [id(n) for n in nodes],
                            get_argument_values(definition, nodes[0], values), below))
        return entries

    root = SCHEMA.get_root_type(operation.operation)
    assert root is not None
    grouped = collect_fields(SCHEMA, fragments, values, root, operation).grouped_field_set
    return {root.name: tree(root, grouped)}


def _same_as_graphql_core(text: str | DocumentNode, variables: dict[str, Any] | None = None,
                          operation_name: str | None = None) -> Selection:
    source = parse(text) if isinstance(text, str) else text
    assert validate(SCHEMA, source) == []
    selection = operation_selection(SCHEMA, source, operation_name, variables)
    assert _walked(selection) == _reference(source, operation_name, variables or {})
    return selection


def test_fields_merge_by_response_key_in_first_seen_order():
    # given a root with repeated keys, aliases and a key first seen inside a fragment
    root = _same_as_graphql_core("""
        { ... { b: items(first: 1) { totalCount } }
          a: items(first: 1) { edges { node { sku } } }
          b: items(first: 1) { edges { cursor } }
          a: items(first: 1) { totalCount } }""")
    # then keys keep their first position and merge every node under them, in document order
    assert list(root.fields) == ["b", "a"]
    merged = root.fields["b"]
    assert merged.name == "items" and len(merged.nodes) == 2
    assert merged.aliases == 2
    assert merged.nodes[0].loc is not None and merged.nodes[1].loc is not None
    assert merged.nodes[0].loc.start < merged.nodes[1].loc.start
    assert merged.selection is not None
    assert list(merged.selection.fields) == ["totalCount", "edges"]


def test_named_fragments_nest_and_a_repeated_spread_collects_once():
    # given fragments that nest and a spread repeated at one position
    root = _same_as_graphql_core("""
        query { items(first: 2) { ...Page ...Page } }
        fragment Page on ItemConnection { totalCount edges { node { ...Row ...Row name } } }
        fragment Row on Item { sku category { ...Cat } name }
        fragment Cat on Category { name parent { ...Cat2 } }
        fragment Cat2 on Category { id }""")
    # then the item fields come once each, with each fragment's nodes merged under one key
    node = root.path("items", "edges", "node")
    assert node is not None and node.selection is not None
    assert list(node.selection.fields) == ["sku", "category", "name"]
    assert len(node.selection.fields["name"].nodes) == 2
    assert node.selection.has("category", "parent", "id")


def test_node_fields_are_collected_per_possible_type():
    # given type conditions on the Node interface, inline and through a fragment
    root = _same_as_graphql_core("""
        query($id: ID!) { node(id: $id) { id
            ... on Item { sku stockLevels { onHand } }
            ... on Warehouse { code }
            ...Named } }
        fragment Named on Node { __typename ... on Category { name } ... on Item { name } }""",
        {"id": "SXRlbTox"})
    node = root.child("node")
    assert node is not None and node.selection is not None
    below = node.selection
    # then each runtime type sees its own fields and the interface's
    assert {t.name for t in below.possible_types} >= {"Item", "Warehouse", "Category", "User"}
    assert list(below.fields_for("Item")) == ["id", "sku", "stockLevels", "__typename", "name"]
    assert list(below.fields_for("Warehouse")) == ["id", "code", "__typename"]
    assert list(below.fields_for("User")) == ["id", "__typename"]
    assert below.has("stockLevels", "onHand") and not below.has("code", "onHand")
    assert sorted(f.parent_type.name for f in below.named("name")) == ["Category", "Item"]
    with pytest.raises(TypeError):
        _ = below.fields
    with pytest.raises(ValueError, match="not a possible type"):
        below.fields_for("PageInfo")


@pytest.mark.parametrize(("variables", "keys"), [
    ({"a": True}, ["me", "items", "x"]),
    ({"a": False}, ["items", "x"]),
    ({"a": True, "b": True}, ["me", "categories", "x", "y"]),
])
def test_skip_and_include_follow_literals_and_variables(variables, keys):
    # given directives with literals, required variables and a variable with a default
    root = _same_as_graphql_core("""
        query($a: Boolean!, $b: Boolean = false) {
          me @include(if: $a) { email }
          items(first: 1) @skip(if: $b) { totalCount }
          ... @include(if: $b) { categories { totalCount } }
          never: me @skip(if: true) { email }
          x: me @include(if: true) @skip(if: false) { email }
          ...Y @include(if: $b)
          ...Y @skip(if: true) }
        fragment Y on Query { y: me { email } }""", variables)
    # then exactly what graphql-core would execute is there
    assert list(root.fields) == keys


def test_a_spread_skipped_first_is_collected_where_it_applies():
    root = _same_as_graphql_core("""
        { items(first: 1) { ...F @skip(if: true) pageInfo { hasNextPage } ...F } }
        fragment F on ItemConnection { totalCount }""")
    below = root.fields["items"].selection
    assert below is not None and list(below.fields) == ["pageInfo", "totalCount"]


def test_arguments_take_variables_then_defaults():
    text = """query($n: Int = 3, $f: ItemFilter, $w: ID) {
        items(first: $n, filter: $f) { edges { node { stockLevels(warehouseId: $w) { onHand } } } }
        warehouses { totalCount } }"""
    # given no variables: the variable's default, and the argument defaults where absent
    root = _same_as_graphql_core(text)
    assert root.fields["items"].arguments == {
        "first": 3, "after": None, "last": None, "before": None, "filter": None, "orderBy": None}
    warehouses = root.fields["warehouses"]
    assert warehouses.arguments == dict.fromkeys(warehouses.definition.args)
    # given values: they are coerced (input objects as dicts with their field defaults)
    root = _same_as_graphql_core(text, {"n": 7, "f": {"search": "x"}, "w": "V2FyZWhvdXNlOjE="})
    items = root.fields["items"]
    assert items.arguments["first"] == 7
    assert items.arguments["filter"]["search"] == "x"
    levels = root.path("items", "edges", "node", "stockLevels")
    assert levels is not None and levels.arguments == {"warehouseId": "V2FyZWhvdXNlOjE="}
    # and a plan cached on the shape re-reads them with another request's values
    assert items.arguments_with({"n": 50})["first"] == 50


def test_mutation_and_subscription_roots():
    mutation = _same_as_graphql_core("""
        mutation($i: AdjustStockInput!) { adjustStock(input: $i) { errors { code } }
          again: adjustStock(input: $i) { stockLevel { onHand } } }""",
        {"i": {"itemId": "x", "warehouseId": "y", "delta": 1, "kind": "RECEIPT"}})
    assert mutation.type.name == "Mutation"
    assert list(mutation.fields) == ["adjustStock", "again"]
    subscription = _same_as_graphql_core("subscription { stockChanged { movement { delta } } }")
    assert subscription.has("stockChanged", "movement", "delta")


def test_lookups_go_by_schema_name_through_aliases():
    root = _same_as_graphql_core("""
        { items(first: 2) { e: edges { n: node { totalOnHand
            movements(first: 2) { edges { node { warehouse { code } } } } } } }
          more: items(first: 1) { edges { node { levels: stockLevels { onHand } } } } }""")
    # by response key, the aliased path is found only under its aliases
    assert root.path("items", "edges") is None
    assert root.path("items", "e", "n", "totalOnHand") is not None
    # by schema name, every alias counts, and only the path asked for matches
    nodes = root.below("items", "edges", "node")
    assert len(nodes) == 2
    assert any(n.has("stockLevels") for n in nodes)
    assert not any(n.has("stockLevels", "warehouse") for n in nodes)
    assert any(n.has("movements", "edges", "node", "warehouse") for n in nodes)
    assert [f.key for f in root.named("items")] == ["items", "more"]


def test_shape_variables_are_those_of_skip_and_include():
    source = parse("""
        query($a: Boolean!, $b: Boolean!, $n: Int) { items(first: $n) @include(if: $a) {
          totalCount ...F } }
        fragment F on ItemConnection { edges @skip(if: $b) { cursor } pageInfo @skip(if: false)
          { hasNextPage } }""")
    assert shape_variables(source) == {"a", "b"}


def test_no_operation_or_bad_variables_are_operation_errors():
    two = parse("query A { me { email } } query B { me { role } }")
    with pytest.raises(OperationError):
        operation_selection(SCHEMA, two)
    with pytest.raises(OperationError):
        operation_selection(SCHEMA, two, "C")
    assert operation_selection(SCHEMA, two, "B").has("me", "role")
    typed = parse("query($n: Int!) { items(first: $n) { totalCount } }")
    with pytest.raises(OperationError) as raised:
        operation_selection(SCHEMA, typed, None, {"n": "ten"})
    assert raised.value.errors and "$n" in raised.value.errors[0].message


@strawberry.type
class Leaf:
    value: int

    @strawberry.field
    def twice(self, times: int = 2) -> int:
        return self.value * times


@strawberry.type
class ProbeQuery:
    """Resolvers that walk their own selection and keep what they saw in the context."""

    @strawberry.field
    def leaf(self, info: strawberry.Info) -> Leaf:
        info.context["seen"].append(selection_of(info))
        return Leaf(value=1)

    @strawberry.field
    def n(self, info: strawberry.Info) -> int:
        try:
            selection_of(info)
        except ValueError as refused:
            info.context["refused"].append(str(refused))
        return 1


PROBE = strawberry.Schema(ProbeQuery)


def test_selection_of_resolver_info_is_the_same_walk():
    # given a resolver that walks its own selection, with a fragment, directives and a variable
    context: dict[str, list[Any]] = {"seen": [], "refused": []}
    result = PROBE.execute_sync(
        "query($t: Int, $on: Boolean!) { leaf { ...L x: twice(times: $t) @include(if: $on) } } "
        "fragment L on Leaf { value twice }", {"t": 5, "on": True}, context_value=context)
    assert result.errors is None and result.data == {"leaf": {"value": 1, "twice": 2, "x": 5}}
    # then it sees what the executor collected, arguments coerced from the variables
    (walked,) = context["seen"]
    assert list(walked.fields) == ["value", "twice", "x"]
    assert walked.fields["x"].arguments == {"times": 5}
    assert walked.fields["twice"].arguments == {"times": 2}


def test_selection_of_a_leaf_is_refused():
    context: dict[str, list[Any]] = {"seen": [], "refused": []}
    result = PROBE.execute_sync("{ n }", context_value=context)
    assert result.errors is None and context["refused"] == ["n is a leaf: it has no selection"]


# ---------------------------------------------------------------- generated documents


def _named(type_: str) -> NamedTypeNode:
    return NamedTypeNode(name=NameNode(value=type_))


@st.composite
def _rewritten(draw: st.DrawFn) -> tuple[DocumentNode, dict[str, bool]]:
    """A generated query with its selections duplicated, wrapped in inline fragments and
    named fragments (new and reused), and put under @skip/@include."""
    base: DocumentNode = draw(graphql_queries(
        SCHEMA, print_ast=lambda d: d, allow_x00=False, custom_scalars=CUSTOM_SCALARS
    ))
    operation = base.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    fragments: dict[str, FragmentDefinitionNode] = {}
    values: dict[str, bool] = {}
    defaults: dict[str, bool] = {}

    def directives() -> tuple[DirectiveNode, ...]:
        kind = draw(st.sampled_from(["", "", "skip", "include"]))
        if not kind:
            return ()
        source = draw(st.sampled_from(["literal", "variable", "default"]))
        if source == "literal":
            value: Any = BooleanValueNode(value=draw(st.booleans()))
        else:
            name = f"v{len(values) + len(defaults)}"
            (values if source == "variable" else defaults)[name] = draw(st.booleans())
            value = VariableNode(name=NameNode(value=name))
        argument = ArgumentNode(name=NameNode(value="if"), value=value)
        return (DirectiveNode(name=NameNode(value=kind), arguments=(argument,)),)

    def rewrite(selection_set: SelectionSetNode, parent: str) -> SelectionSetNode:
        out: list[SelectionNode] = []
        for selection in selection_set.selections:
            for _ in range(draw(st.sampled_from([1, 1, 1, 2]))):  # sometimes twice: merging
                out.append(wrap(one(selection, parent), parent))
            reusable = [n for n, f in fragments.items() if f.type_condition.name.value == parent]
            if reusable and draw(st.booleans()):
                out.append(FragmentSpreadNode(name=NameNode(value=draw(st.sampled_from(
                    reusable))), directives=directives()))
        return SelectionSetNode(selections=tuple(out))

    def one(selection: SelectionNode, parent: str) -> SelectionNode:
        if isinstance(selection, FieldNode):
            if selection.selection_set is None:
                return dataclasses.replace(selection, directives=directives())
            owner = SCHEMA.get_type(parent)
            definition = SCHEMA.get_field(owner, selection.name.value)  # type: ignore[arg-type]
            assert definition is not None
            below = get_named_type(definition.type).name
            return dataclasses.replace(selection, directives=directives(),
                                       selection_set=rewrite(selection.selection_set, below))
        assert isinstance(selection, InlineFragmentNode)
        condition = selection.type_condition.name.value if selection.type_condition else parent
        return dataclasses.replace(selection, directives=directives(),
                                   selection_set=rewrite(selection.selection_set, condition))

    def wrap(selection: SelectionNode, parent: str) -> SelectionNode:
        how = draw(st.sampled_from(["as is", "as is", "inline", "typed inline", "fragment"]))
        inner = SelectionSetNode(selections=(selection,))
        if how == "inline":
            return InlineFragmentNode(directives=directives(), selection_set=inner)
        if how == "typed inline":
            return InlineFragmentNode(type_condition=_named(parent), directives=directives(),
                                      selection_set=inner)
        if how == "fragment":
            name = f"F{len(fragments)}"
            fragments[name] = FragmentDefinitionNode(
                name=NameNode(value=name), type_condition=_named(parent), selection_set=inner)
            return FragmentSpreadNode(name=NameNode(value=name), directives=directives())
        return selection

    root = rewrite(operation.selection_set, "Query")
    boolean = _named("Boolean")
    definitions = tuple(
        VariableDefinitionNode(variable=VariableNode(name=NameNode(value=name)),
                               type=NonNullTypeNode(type=boolean))
        for name in values
    ) + tuple(
        VariableDefinitionNode(variable=VariableNode(name=NameNode(value=name)), type=boolean,
                               default_value=BooleanValueNode(value=value))
        for name, value in defaults.items()
    )
    rewritten = dataclasses.replace(
        operation, selection_set=root,
        variable_definitions=(*(operation.variable_definitions or ()), *definitions))
    document = DocumentNode(definitions=(rewritten, *fragments.values()))
    return parse(print_ast(document)), values


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_rewritten())
def test_generated_documents_walk_as_graphql_core_collects(generated):
    source, variables = generated
    assume(validate(SCHEMA, source) == [])
    _same_as_graphql_core(source, variables)
