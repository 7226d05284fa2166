"""Every field of the read schema is either planned or listed as falling back, with a reason."""

from __future__ import annotations

from graphql import GraphQLObjectType, get_named_type, is_abstract_type

from schema import build_schema
from schema.plan.registry import FALLBACK, PLANNED_ROOTS, REGISTRY


def _read_fields() -> set[tuple[str, str]]:
    """(type, field) for every object type reachable from Query."""
    schema = build_schema()._schema
    seen: set[str] = set()
    found: set[tuple[str, str]] = set()
    pending = [schema.query_type]
    while pending:
        current = pending.pop()
        if current.name in seen or current.name.startswith("__"):
            continue
        seen.add(current.name)
        for name, definition in current.fields.items():
            found.add((current.name, name))
            named = get_named_type(definition.type)
            if isinstance(named, GraphQLObjectType):
                pending.append(named)
            elif is_abstract_type(named):
                pending.extend(schema.get_possible_types(named))
    return found


def test_every_read_field_is_planned_or_falls_back_for_a_reason() -> None:
    # given every field reachable from Query
    fields = _read_fields()
    # then each is registered, a planned root, or listed with a reason to fall back
    unaccounted = sorted(
        f"{t}.{f}"
        for t, f in fields
        if f not in REGISTRY.get(t, {})
        and not (t == "Query" and f in PLANNED_ROOTS)
        and not FALLBACK.get(t, {}).get(f)
    )
    assert unaccounted == []


def test_the_lists_name_only_fields_that_exist() -> None:
    fields = _read_fields()
    listed = {(t, f) for t, entries in REGISTRY.items() for f in entries}
    listed |= {(t, f) for t, entries in FALLBACK.items() for f in entries}
    assert sorted(listed - fields) == []
