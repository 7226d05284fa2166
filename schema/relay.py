"""The Node interface, cursor connections and their shared arguments."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Generic, TypeVar

import strawberry

from db.pagination import Page, PageArgs, PaginationError, encode_cursor
from schema.errors import bad_input
from schema.ids import to_global_id

T = TypeVar("T")
R = TypeVar("R")


@strawberry.interface(description="An object with a globally unique, opaque ID.")
class Node:
    id: strawberry.ID = strawberry.field(description="Global ID; pass it to `node(id:)`.")


def global_id(type_name: str, description: str = "Global ID.") -> Any:
    """A Node's `id` field, encoded from its private ``pk`` only when selected: lists build
    hundreds of objects per request and most selections never ask for their IDs."""

    def resolve(root: Any) -> strawberry.ID:
        return strawberry.ID(to_global_id(type_name, root.pk))

    return strawberry.field(resolver=resolve, description=description)


@strawberry.type(description="Where a page sits in its connection.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More items follow `endCursor`.")
    has_previous_page: bool = strawberry.field(description="Items precede `startCursor`.")
    start_cursor: str | None = strawberry.field(description="Cursor of the first edge.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last edge.")


def _edge_cursor(root: Any) -> str:
    # Encoded on demand: most clients select nodes only.
    return encode_cursor(root.position)


@strawberry.type(description="One node of a connection and its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(
        resolver=_edge_cursor, description="Opaque position; pass to `after`/`before`."
    )
    node: T = strawberry.field(description="The object at this position.")
    position: strawberry.Private[list[Any]]


@strawberry.type(description="A page of a list, with cursors to move forward and back.")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The objects of this page.")
    page_info: PageInfo = strawberry.field(description="Cursors and whether more pages exist.")
    count_total: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="Number of objects in the whole list, across all pages.")
    async def total_count(self) -> int:
        return await self.count_total()


First = Annotated[
    int | None, strawberry.argument(description="Return the first n objects (0-100; default 20).")
]
After = Annotated[str | None, strawberry.argument(description="Return objects after this cursor.")]
Last = Annotated[int | None, strawberry.argument(description="Return the last n objects (0-100).")]
Before = Annotated[
    str | None, strawberry.argument(description="Return objects before this cursor.")
]


def page_args(
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> PageArgs:
    try:
        return PageArgs(first=first, after=after, last=last, before=before).validated()
    except PaginationError as exc:
        raise bad_input(str(exc)) from None


async def paged(
    fetch: Callable[[], Awaitable[Page[R]]],
    convert: Callable[[R], T],
    count_total: Callable[[], Awaitable[int]],
    prefetch: Callable[[list[R]], Awaitable[None]] | None = None,
) -> Connection[T]:
    """Run a page query and wrap it as a connection; bad cursors become input errors.

    ``prefetch`` loads what the selection will need for the whole page up front, so nested
    resolvers find it in their loaders and stay synchronous.
    """
    try:
        page = await fetch()
    except PaginationError as exc:
        raise bad_input(str(exc)) from None
    if prefetch is not None and page.nodes:
        await prefetch(page.nodes)
    edges = [
        Edge(position=position, node=convert(row))
        for row, position in zip(page.nodes, page.positions, strict=True)
    ]
    info = PageInfo(
        has_next_page=page.has_next_page,
        has_previous_page=page.has_previous_page,
        start_cursor=page.cursor(0) if page.positions else None,
        end_cursor=page.cursor(-1) if page.positions else None,
    )
    return Connection(edges=edges, page_info=info, count_total=count_total)
