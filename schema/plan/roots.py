"""Root plans: bind a request's arguments, check the root's role, fetch, write.

Each mirrors its resolver's checks in the resolver's order (role, page arguments, filter,
order, IDs) and raises the same coded errors, located at the root field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from graphql import GraphQLError

from db import categories, items, users, warehouses
from db.items import ItemFilterSpec, ItemOrderSpec
from db.models import (
    Category,
    Item,
    Reservation,
    ReservationStatus,
    Role,
    StockMovement,
    User,
    Warehouse,
)
from db.pagination import PageArgs, PaginationError
from db.plan import fetch
from db.plan.tree import Record
from db.stock import queries
from db.stock.queries import MovementFilterSpec
from schema.context import Context
from schema.errors import CodedError, bad_input, forbidden, unauthenticated
from schema.ids import decode_id, decode_optional, from_global_id
from schema.plan.output import Fallback, Output, Writer, located
from schema.plan.relations import RelationPlan
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
    relations: RelationPlan

    def fail(self, error: CodedError) -> RootError:
        return RootError(located(error, self.field.nodes, (None, self.key)))

    def authorize(self, context: Context, required: Role = Role.VIEWER) -> None:
        """The root's permission class (IsViewer unless told), as it raises."""
        if context.user is None:
            raise self.fail(unauthenticated(context.auth_error or "Authentication required"))
        if not context.user.role.includes(required):
            raise self.fail(forbidden(f"Requires the {required.value} role"))


# What a connection root fetches: the model, its db list function and count function, each
# with the arguments that follow the session.
Source = tuple[
    type[Any], tuple[fetch.ListFn, tuple[Any, ...]], tuple[fetch.CountFn, tuple[Any, ...]]
]
Binder = Callable[[dict[str, Any]], Source]


def _page_args(args: dict[str, Any]) -> PageArgs:
    return PageArgs(
        first=args.get("first"),
        after=args.get("after"),
        last=args.get("last"),
        before=args.get("before"),
    ).validated()


def bind_items(args: dict[str, Any]) -> Source:
    """``items``' arguments as its resolver reads them, in its order."""
    from schema.items.queries import ItemFilter, ItemOrder

    page = _page_args(args)
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
    return Item, (items.list_items, (spec, order, page)), (items.count_items, (spec,))


def bind_categories(args: dict[str, Any]) -> Source:
    page = _page_args(args)
    parent = decode_optional(args.get("parentId"), "Category")
    return (
        Category,
        (categories.list_categories, (parent, page)),
        (categories.count_categories, (parent,)),
    )


def bind_movements(args: dict[str, Any]) -> Source:
    from schema.stock.queries import MovementFilter

    page = _page_args(args)
    raw = args.get("filter")
    spec = (
        MovementFilterSpec()
        if raw is None
        else MovementFilter(**{_snake(k): v for k, v in raw.items()}).to_spec()
    )
    return StockMovement, (queries.list_movements, (spec, page)), (queries.count_movements, (spec,))


def bind_reservations(args: dict[str, Any]) -> Source:
    page = _page_args(args)
    status = args.get("status")
    wanted = None if status is None else ReservationStatus(status)
    return (
        Reservation,
        (queries.list_reservations, (wanted, page)),
        (queries.count_reservations, (wanted,)),
    )


def bind_users(args: dict[str, Any]) -> Source:
    page = _page_args(args)
    return User, (users.list_users, (page,)), (users.count_users, ())


def bind_warehouses(args: dict[str, Any]) -> Source:
    page = _page_args(args)
    return (
        Warehouse,
        (warehouses.list_warehouses, (page,)),
        (warehouses.count_warehouses, ()),
    )


@dataclass(frozen=True, slots=True)
class ConnectionRoot(_Root):
    bind: Binder
    total: bool
    nullable: bool = False
    required: Role = Role.VIEWER

    async def run(self, context: Context, variables: Mapping[str, Any], out: Output) -> Any:
        self.authorize(context, self.required)
        args = self.field.arguments_with(variables)
        try:
            model, rows, count = self.bind(args)
            result = await context.reader(
                fetch.page,
                model,
                rows,
                count,
                total=self.total,
                relations=self.relations.bind(variables),
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
        (record,) = await context.reader(
            fetch.items_by_key, ids, skus, self.relations.bind(variables)
        )
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
        (record,) = await context.reader(
            fetch.items_by_key, [pk], [], self.relations.bind(variables)
        )
        return None if record is None else self.write(record, (None, self.key), out)


@dataclass(frozen=True, slots=True)
class MeRoot(_Root):
    nullable: bool = True

    async def run(self, context: Context, variables: Mapping[str, Any], out: Output) -> Any:
        self.authorize(context)
        assert context.user is not None
        (record,) = await context.reader(
            fetch.users_by_id, [context.user.id], self.relations.bind(variables)
        )
        return None if record is None else self.write(record, (None, self.key), out)


@dataclass(frozen=True, slots=True)
class SummaryRoot(_Root):
    nullable: bool = False

    async def run(self, context: Context, variables: Mapping[str, Any], out: Output) -> Any:
        self.authorize(context)
        try:
            pk = decode_optional(
                self.field.arguments_with(variables).get("warehouseId"), "Warehouse"
            )
        except CodedError as exc:
            raise self.fail(exc) from None
        row = await context.reader(queries.inventory_summary, pk)
        return self.write(Record(row), (None, self.key), out)


@dataclass(frozen=True, slots=True)
class TypenameRoot:
    key: str
    nullable: bool = False

    async def run(self, context: Context, variables: Mapping[str, Any], out: Output) -> Any:
        return "Query"
