"""The fetch tree of a plan, with nested connection pages bound per request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from db.pagination import PageArgs, PaginationError
from db.plan.tree import NestedPage, Relations
from schema.plan.output import Fallback
from schema.selection import SelectedField


@dataclass(frozen=True, slots=True)
class PagePlan:
    """A nested connection's page, bound to the request's arguments at run time."""

    source: str
    field: SelectedField
    total: bool
    below: RelationPlan

    def bind(self, variables: Mapping[str, Any]) -> NestedPage:
        args = self.field.arguments_with(variables)
        try:
            page = PageArgs(first=args.get("first"), after=args.get("after")).validated()
        except PaginationError:
            # Every parent raises it concurrently in the resolvers: the errors' order is I/O's.
            raise Fallback("nested page arguments") from None
        options = (bool(args.get("lowStockOnly")),) if "lowStockOnly" in args else ()
        return NestedPage(self.source, page, self.total, self.below.bind(variables), options)


@dataclass(frozen=True)
class RelationPlan:
    """`db.plan.tree.Relations` with nested pages still to bind to a request's arguments."""

    below: Mapping[str, RelationPlan] = field(default_factory=dict)
    pages: Mapping[str, PagePlan] = field(default_factory=dict)
    columns: frozenset[str] = frozenset()

    def merged(self, other: RelationPlan) -> RelationPlan:
        names = dict(self.below)
        for name, child in other.below.items():
            names[name] = names[name].merged(child) if name in names else child
        return RelationPlan(names, {**self.pages, **other.pages}, self.columns | other.columns)

    def reading(self, columns: frozenset[str]) -> RelationPlan:
        """The same tree whose rows must carry ``columns`` too."""
        return RelationPlan(self.below, self.pages, self.columns | columns)

    @cached_property
    def _static(self) -> Relations | None:
        if self.pages or any(child._static is None for child in self.below.values()):
            return None
        below = {name: child._static for name, child in self.below.items()}
        return Relations(below, columns=self.columns)  # type: ignore[arg-type]

    def bind(self, variables: Mapping[str, Any]) -> Relations:
        """The fetch tree for one request (the same object each time when nothing binds)."""
        static = self._static
        if static is not None:
            return static
        return Relations(
            {name: child.bind(variables) for name, child in self.below.items()},
            {key: page.bind(variables) for key, page in self.pages.items()},
            self.columns,
        )


NOTHING = RelationPlan()
