"""Output closures: each writes one position of the response from fetched records.

Writers are built once per plan and called per request; they produce exactly what
graphql-core's completion would: keys in request order, values serialised as the schema's
scalars serialise them, per-field errors with their path and locations. Paths are passed as
linked pairs ``(parent, key)`` and flattened only when an error needs one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import methodcaller
from typing import Any, TypeAlias

from graphql import FieldNode, GraphQLEnumType, GraphQLError, GraphQLNamedType

from db.pagination import encode_cursor
from db.plan.tree import PageResult, Record
from schema.errors import CodedError
from schema.ids import from_global_id, to_global_id
from schema.selection import SelectedField

Path: TypeAlias = tuple[Any, str | int] | None
Writer: TypeAlias = Callable[[Any, Path, "Output"], Any]
Fields: TypeAlias = Sequence[tuple[str, Writer]]


class Fallback(Exception):
    """A run-time condition the plan does not reproduce: run the resolvers instead."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def flatten(path: Path) -> list[str | int]:
    keys: list[str | int] = []
    while path is not None:
        path, key = path
        keys.append(key)
    keys.reverse()
    return keys


def located(error: CodedError, nodes: Sequence[FieldNode], path: Path) -> GraphQLError:
    """The error as graphql-core's ``located_error`` reports a resolver's raised error."""
    return GraphQLError(error.message, nodes=list(nodes), path=flatten(path), original_error=error)


class Output:
    """What one response collects while it is written."""

    __slots__ = ("errors", "memo", "unordered", "variables")

    def __init__(self, variables: Mapping[str, Any]) -> None:
        self.variables = variables
        # Per-request values that writers compute once (an argument decoded, say).
        self.memo: dict[int, Any] = {}
        self.errors: list[GraphQLError] = []
        # Errors were raised below a field the resolvers await: their order is the I/O's.
        self.unordered = False


def serializer(named: GraphQLNamedType) -> Callable[[Any], Any] | None:
    """How a leaf value is serialised (None: as it is), as the schema's scalars do."""
    if named.name == "Decimal":
        return str
    if named.name == "DateTime":
        return methodcaller("isoformat")
    if isinstance(named, GraphQLEnumType):
        return lambda value: value.name
    return None


def constant(value: Any) -> Writer:
    return lambda _source, _path, _out: value


def column(attribute: str, serialize: Callable[[Any], Any] | None) -> Writer:
    if serialize is None:
        return lambda record, _path, _out: getattr(record.row, attribute)

    def write(record: Record, _path: Path, _out: Output) -> Any:
        value = getattr(record.row, attribute)
        return None if value is None else serialize(value)

    return write


def computed(compute: Callable[[Record], Any], serialize: Callable[[Any], Any] | None) -> Writer:
    if serialize is None:
        return lambda record, _path, _out: compute(record)
    return lambda record, _path, _out: serialize(compute(record))


def global_id(type_name: str) -> Writer:
    return lambda record, _path, _out: to_global_id(type_name, record.row.id)


def forbidden(nodes: Sequence[FieldNode], message: str) -> Writer:
    """Null plus the FORBIDDEN error the field's permission class raises, once per object."""

    def write(_record: Record, path: Path, out: Output) -> None:
        out.errors.append(located(CodedError(message, "FORBIDDEN"), nodes, path))

    return write


def obj(fields: Fields) -> Writer:
    """An object: each selected key written in request order."""

    def write(source: Any, path: Path, out: Output) -> dict[str, Any]:
        return {key: field(source, (path, key), out) for key, field in fields}

    return write


def to_one(relationship: str, child: Writer, nullable: bool) -> Writer:
    def write(record: Record, path: Path, out: Output) -> Any:
        related = record.rel[relationship]
        if related is None:
            if not nullable:
                raise Fallback(f"missing {relationship} row")
            return None
        return child(related, path, out)

    return write


def to_many_only(
    relationship: str,
    child: Writer,
    field: SelectedField,
    argument: str,
    type_name: str,
    attribute: str,
) -> Writer:
    """A to-many field narrowed by an ID argument, e.g. ``stockLevels(warehouseId:)``."""
    memo_key = id(field)

    def wanted(out: Output) -> int | None:
        if memo_key in out.memo:
            found: int | None = out.memo[memo_key]
            return found
        raw = field.arguments_with(out.variables).get(argument)
        pk = None
        if raw is not None:
            try:
                named, pk = from_global_id(raw)
            except ValueError:
                named = ""
            if named != type_name:
                # The resolver raises for every parent: the errors' bubbling is its own.
                raise Fallback(f"bad {argument}")
        out.memo[memo_key] = pk
        return pk

    def write(record: Record, path: Path, out: Output) -> list[Any]:
        pk = wanted(out)
        rows = record.rel[relationship]
        if pk is not None:
            rows = [r for r in rows if getattr(r.row, attribute) == pk]
        return [child(r, (path, i), out) for i, r in enumerate(rows)]

    return write


def to_many(relationship: str, child: Writer) -> Writer:
    def write(record: Record, path: Path, out: Output) -> list[Any]:
        return [child(r, (path, i), out) for i, r in enumerate(record.rel[relationship])]

    return write


def nested(key: str, connection: Writer) -> Writer:
    """A nested connection: its page was fetched for all parents under ``key``."""
    return lambda record, path, out: connection(record.rel[key], path, out)


def deferred(inner: Writer) -> Writer:
    """A field the resolvers await: errors below it are marked as of unknown order."""

    def write(record: Record, path: Path, out: Output) -> Any:
        before = len(out.errors)
        value = inner(record, path, out)
        if len(out.errors) != before:
            out.unordered = True
        return value

    return write


# ---------------------------------------------------------------- connections
# A connection writer's source is a `PageResult`; an edge's is a (record, position) pair.


def edges(edge: Writer) -> Writer:
    def write(result: PageResult, path: Path, out: Output) -> list[Any]:
        page = result.page
        pairs = zip(page.nodes, page.positions, strict=True)
        return [edge(pair, (path, i), out) for i, pair in enumerate(pairs)]

    return write


def edge_cursor(pair: tuple[Record, list[Any]], _path: Path, _out: Output) -> str:
    return encode_cursor(pair[1])


def edge_node(node: Writer) -> Writer:
    return lambda pair, path, out: node(pair[0], path, out)


def page_info(fields: Fields) -> Writer:
    inner = obj(fields)
    return lambda result, path, out: inner(result.page, path, out)


def page_flag(name: str) -> Writer:
    if name == "start_cursor":
        return lambda page, _p, _o: page.cursor(0) if page.positions else None
    if name == "end_cursor":
        return lambda page, _p, _o: page.cursor(-1) if page.positions else None
    return lambda page, _p, _o: getattr(page, name)


def total_count(result: PageResult, _path: Path, _out: Output) -> int | None:
    return result.total
