"""Compile a validated operation's selection into root plans: fetch trees plus writers.

Compilation depends on the document, the operation, the viewer's role and the values of the
`@skip`/`@include` variables (the shape); arguments are bound per request by the root plans
(`schema.plan.roots`), so one plan serves every page, filter and cursor.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import GraphQLNonNull

from db.models import Role
from schema.plan import output
from schema.plan.output import Writer
from schema.plan.registry import Kind, entry
from schema.plan.relations import NOTHING, PagePlan, RelationPlan
from schema.plan.roots import (
    ConnectionRoot,
    ItemRoot,
    MeRoot,
    NodeRoot,
    RootPlan,
    SummaryRoot,
    TypenameRoot,
    bind_categories,
    bind_items,
    bind_movements,
    bind_reservations,
    bind_users,
    bind_warehouses,
)
from schema.selection import SelectedField, Selection


class Unplannable(Exception):
    """The operation selects something the planner does not reproduce exactly."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Compiled:
    """A writer for one position, the relationships its records need loaded, and the
    columns its own rows must carry."""

    write: Writer
    relations: RelationPlan
    columns: frozenset[str] = frozenset()


def _check_arguments(field: SelectedField, allowed: frozenset[str]) -> None:
    for node in field.nodes:
        for argument in node.arguments or ():
            if argument.name.value not in allowed:
                raise Unplannable(f"{field.parent_type.name}.{field.name}({argument.name.value})")


def compile_object(selection: Selection | None, type_name: str, role: Role | None) -> Compiled:
    """An object of ``type_name`` written from one record."""
    assert selection is not None
    fields: list[tuple[str, Writer]] = []
    relations = NOTHING
    columns: set[str] = set()
    for key, field in selection.fields_for(type_name).items():
        if field.name == "__typename":
            fields.append((key, output.constant(type_name)))
            continue
        found = entry(type_name, field.name)
        if found is None:
            raise Unplannable(f"{type_name}.{field.name}")
        _check_arguments(field, found.arguments)
        if found.role is not None and (role is None or not role.includes(found.role)):
            message = f"Requires the {found.role.value} role"
            fields.append((key, output.forbidden(field.nodes, message)))
            continue
        serialize = output.serializer(field.named_type)
        columns.update(found.needs)
        if found.kind is Kind.COLUMN:
            columns.add(found.source)
            fields.append((key, output.column(found.source, serialize)))
        elif found.kind is Kind.GLOBAL_ID:
            columns.add("id")
            fields.append((key, output.global_id(found.source)))
        elif found.kind is Kind.COMPUTED:
            assert found.compute is not None
            fields.append((key, output.computed(found.compute, serialize)))
            if found.source:
                reads = RelationPlan(columns=frozenset(found.below))
                relations = relations.merged(RelationPlan({found.source: reads}))
        elif found.kind in (Kind.TO_ONE, Kind.TO_MANY):
            child = compile_object(field.selection, field.named_type.name, role)
            child_columns = child.columns
            if found.only is not None:
                child_columns |= {found.only.attribute}
            loaded = child.relations.reading(child_columns)
            relations = relations.merged(RelationPlan({found.source: loaded}))
            if found.kind is Kind.TO_ONE:
                nullable = not isinstance(field.definition.type, GraphQLNonNull)
                write = output.to_one(found.source, child.write, nullable)
            elif found.only is not None:
                only = found.only
                write = output.to_many_only(
                    found.source,
                    child.write,
                    field,
                    only.argument,
                    only.type_name,
                    only.attribute,
                )
            else:
                write = output.to_many(found.source, child.write)
            fields.append((key, output.deferred(write) if found.deferred else write))
        elif found.kind is Kind.CONNECTION:
            connection = field.named_type.name
            node = connection.removesuffix("Connection")
            conn = compile_connection(field.selection, connection, f"{node}Edge", node, role)
            assert field.selection is not None
            total = any(f.name == "totalCount" for f in field.selection.all_fields())
            page_key = f"{found.source}@{id(field)}"  # one per position
            page = PagePlan(found.source, field, total, conn.relations)
            relations = relations.merged(RelationPlan(pages={page_key: page}))
            fields.append((key, output.deferred(output.nested(page_key, conn.write))))
        else:
            raise Unplannable(f"{type_name}.{field.name} outside a connection")
    return Compiled(output.obj(fields), relations, frozenset(columns))


def compile_connection(
    selection: Selection | None, connection: str, edge: str, node: str, role: Role | None
) -> Compiled:
    """A connection of ``node`` objects written from a `PageResult`."""
    assert selection is not None
    fields: list[tuple[str, Writer]] = []
    relations = NOTHING
    for key, field in selection.fields_for(connection).items():
        if field.name == "__typename":
            fields.append((key, output.constant(connection)))
            continue
        found = entry(connection, field.name)
        if found is None:
            raise Unplannable(f"{connection}.{field.name}")
        if found.kind is Kind.TOTAL_COUNT:
            fields.append((key, output.total_count))
        elif found.kind is Kind.PAGE_INFO:
            fields.append((key, output.page_info(_page_info(field.selection))))
        elif found.kind is Kind.EDGES:
            compiled = _compile_edge(field.selection, edge, node, role)
            relations = relations.merged(compiled.relations)
            fields.append((key, output.edges(compiled.write)))
        else:
            raise Unplannable(f"{connection}.{field.name}")
    return Compiled(output.obj(fields), relations)


def _compile_edge(selection: Selection | None, edge: str, node: str, role: Role | None) -> Compiled:
    assert selection is not None
    fields: list[tuple[str, Writer]] = []
    relations = NOTHING
    for key, field in selection.fields_for(edge).items():
        if field.name == "__typename":
            fields.append((key, output.constant(edge)))
        elif field.name == "cursor":
            fields.append((key, output.edge_cursor))
        elif field.name == "node":
            compiled = compile_object(field.selection, node, role)
            relations = relations.merged(compiled.relations)
            fields.append((key, output.edge_node(compiled.write)))
        else:
            raise Unplannable(f"{edge}.{field.name}")
    return Compiled(output.obj(fields), relations)


def _page_info(selection: Selection | None) -> list[tuple[str, Writer]]:
    assert selection is not None
    fields: list[tuple[str, Writer]] = []
    for key, field in selection.fields_for("PageInfo").items():
        if field.name == "__typename":
            fields.append((key, output.constant("PageInfo")))
            continue
        found = entry("PageInfo", field.name)
        if found is None:
            raise Unplannable(f"PageInfo.{field.name}")
        fields.append((key, output.page_flag(found.source)))
    return fields


@dataclass(frozen=True, slots=True)
class Plan:
    """A compiled query: its root plans in response order."""

    roots: tuple[RootPlan, ...]


def compile_operation(root: Selection, role: Role | None) -> Plan:
    """The plan of a query operation for a viewer of ``role`` (None: anonymous)."""
    roots: list[RootPlan] = []
    for key, field in root.fields_for("Query").items():
        if field.name == "__typename":
            roots.append(TypenameRoot(key))
            continue
        if field.name.startswith("__"):
            raise Unplannable("introspection")
        connection = _CONNECTIONS.get(field.name)
        if connection is not None:
            bind, type_name, arguments, required = connection
            _check_arguments(field, arguments)
            conn = compile_connection(
                field.selection, f"{type_name}Connection", f"{type_name}Edge", type_name, role
            )
            assert field.selection is not None
            total = any(f.name == "totalCount" for f in field.selection.all_fields())
            roots.append(
                ConnectionRoot(
                    key, field, conn.write, conn.relations, bind, total, required=required
                )
            )
        elif field.name == "me":
            _check_arguments(field, frozenset())
            user = compile_object(field.selection, "User", role)
            roots.append(MeRoot(key, field, user.write, user.relations))
        elif field.name == "inventorySummary":
            _check_arguments(field, frozenset({"warehouseId"}))
            summary = compile_object(field.selection, "InventorySummary", role)
            roots.append(SummaryRoot(key, field, summary.write, summary.relations))
        elif field.name in ("item", "node"):
            _check_arguments(field, frozenset({"id", "sku"}))
            item = compile_object(field.selection, "Item", role)
            plan_type = ItemRoot if field.name == "item" else NodeRoot
            roots.append(plan_type(key, field, item.write, item.relations))
        else:
            raise Unplannable(f"Query.{field.name}")
    return Plan(tuple(roots))


_PAGE = frozenset({"first", "after", "last", "before"})
# Connection roots: how each binds its arguments, its node type, the arguments it takes.
_CONNECTIONS = {
    "items": (bind_items, "Item", _PAGE | {"filter", "orderBy"}, Role.VIEWER),
    "categories": (bind_categories, "Category", _PAGE | {"parentId"}, Role.VIEWER),
    "warehouses": (bind_warehouses, "Warehouse", _PAGE, Role.VIEWER),
    "movements": (bind_movements, "StockMovement", _PAGE | {"filter"}, Role.VIEWER),
    "reservations": (bind_reservations, "Reservation", _PAGE | {"status"}, Role.VIEWER),
    "users": (bind_users, "User", _PAGE, Role.ADMIN),
}
