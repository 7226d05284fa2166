"""Bounded caches of compiled plans, keyed as Grafast keys its operation plans."""

from __future__ import annotations

from typing import Any, TypeAlias

from graphql import DocumentNode

from db.models import Role
from schema.cache import LRU
from schema.plan.build import Plan
from schema.selection import shape_variables

# (document text, operation name, role, values of the @skip/@include variables)
PlanKey: TypeAlias = tuple[str, str | None, Role | None, tuple[Any, ...]]


class PlanCache:
    """Plans, and the reasons operations could not be planned, for the recent documents."""

    def __init__(self, size: int = 500) -> None:
        self._shapes: LRU[str, tuple[str, ...]] = LRU(size)
        self._plans: LRU[PlanKey, Plan | str] = LRU(size)

    def key(
        self,
        query: str,
        document: DocumentNode,
        operation: str | None,
        role: Role | None,
        variables: dict[str, Any],
    ) -> PlanKey:
        names = self._shapes.get(query)
        if names is None:
            names = tuple(sorted(shape_variables(document)))
            self._shapes.put(query, names)
        # Only the shape variables split a plan: other arguments are bound per request.
        return (query, operation, role, tuple(_hashable(variables.get(n)) for n in names))

    def get(self, key: PlanKey) -> Plan | str | None:
        return self._plans.get(key)

    def put(self, key: PlanKey, plan: Plan | str) -> None:
        self._plans.put(key, plan)

    def __len__(self) -> int:
        return len(self._plans)


def _hashable(value: Any) -> Any:
    # @skip/@include take Boolean!; anything else is only a key component.
    return value if isinstance(value, bool | None) else repr(value)
