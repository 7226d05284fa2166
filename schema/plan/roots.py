"""Root plans: bind a request's arguments, check the root's role, fetch, write.

Each mirrors its resolver's checks in the resolver's order (role, page arguments, filter,
order, IDs) and raises the same coded errors, located at the root field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from graphql import GraphQLError

from db.items import ItemFilterSpec, ItemOrderSpec
from db.pagination import PageArgs, PaginationError
from db.plan import fetch
from db.plan.tree import Relations
from schema.context import Context
from schema.errors import CodedError, bad_input, unauthenticated
from schema.ids import decode_id, from_global_id
from schema.plan.output import Fallback, Output, Writer, located
from schema.selection import SelectedField


class RootError(Exception):
    """The root field failed as its resolver would have: one located error, a null value."""

    def __init__(self, error: GraphQLError) -> None:
        super().__init__(error.message)
        self.error = error


class RootPlan(Protocol):
    @property
    def key(self) -> str: ...

    @property
    def nullable(self) -> bool: ...

    async def run(self, context: Context, variables: Mapping[str, Any], out: Output) -> Any:
        """The root's value written for the response; RootError or Fallback otherwise."""
        ...


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


@dataclass(frozen=True, slots=True)
class _Root:
    key: str
    field: SelectedField
    write: Writer
    relations: Relations

    def fail(self, error: CodedError) -> RootError:
        return RootError(located(error, self.field.nodes, (None, self.key)))

    def authorize(self, context: Context) -> None:
        # Every planned root needs a signed-in viewer (IsViewer); all roles include VIEWER.
        if context.user is None:
            raise self.fail(unauthenticated(context.auth_error or "Authentication required"))


@dataclass(frozen=True, slots=True)
class ItemsRoot(_Root):
    total: bool
    nullable: bool = False

    async def run(self, context: Context, variables: Mapping[str, Any], out: Output) -> Any:
        from schema.items.queries import ItemFilter, ItemOrder

        self.authorize(context)
        args = self.field.arguments_with(variables)
        try:
            page = PageArgs(
                first=args.get("first"),
                after=args.get("after"),
                last=args.get("last"),
                before=args.get("before"),
            ).validated()
            raw_filter, raw_order = args.get("filter"), args.get("orderBy")
            spec = (
                ItemFilterSpec()
                if raw_filter is None
                else ItemFilter(**{_snake(k): v for k, v in raw_filter.items()}).to_spec()
            )
            order = (
                ItemOrderSpec()
                if raw_order is None
                else ItemOrder(field=raw_order["field"], direction=raw_order["direction"]).to_spec()
            )
            result = await context.reader(
                fetch.item_page, spec, order, page, total=self.total, relations=self.relations
            )
        except PaginationError as exc:
            raise self.fail(bad_input(str(exc))) from None
        except CodedError as exc:
            raise self.fail(exc) from None
        return self.write(result, (None, self.key), out)


@dataclass(frozen=True, slots=True)
class ItemRoot(_Root):
    nullable: bool = True

    async def run(self, context: Context, variables: Mapping[str, Any], out: Output) -> Any:
        self.authorize(context)
        args = self.field.arguments_with(variables)
        id_, sku = args.get("id"), args.get("sku")
        if (id_ is None) == (sku is None):
            raise self.fail(bad_input("Pass exactly one of `id` and `sku`"))
        try:
            ids = [] if id_ is None else [decode_id(id_, "Item")]
        except CodedError as exc:
            raise self.fail(exc) from None
        skus = [] if sku is None else [sku]
        (record,) = await context.reader(fetch.items_by_key, ids, skus, self.relations)
        return None if record is None else self.write(record, (None, self.key), out)


@dataclass(frozen=True, slots=True)
class NodeRoot(_Root):
    nullable: bool = True

    async def run(self, context: Context, variables: Mapping[str, Any], out: Output) -> Any:
        from schema.node import NODE_TYPES

        self.authorize(context)
        id_ = self.field.arguments_with(variables)["id"]
        try:
            type_name, pk = from_global_id(id_)
        except ValueError:
            raise self.fail(bad_input(f"Malformed ID {id_!r}")) from None
        if type_name not in NODE_TYPES:
            raise self.fail(bad_input(f"ID {id_!r} names no known type"))
        if type_name != "Item":
            raise Fallback(f"node of type {type_name}")
        (record,) = await context.reader(fetch.items_by_key, [pk], [], self.relations)
        return None if record is None else self.write(record, (None, self.key), out)


@dataclass(frozen=True, slots=True)
class TypenameRoot:
    key: str
    nullable: bool = False

    async def run(self, context: Context, variables: Mapping[str, Any], out: Output) -> Any:
        return "Query"
