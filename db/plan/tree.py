"""The neutral fetch tree a plan hands to `db.plan.fetch`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from db.pagination import Page, PageArgs


class NestedPageError(Exception):
    """A nested connection's page arguments are invalid (a bad cursor, say)."""


@dataclass(frozen=True, slots=True)
class NestedPage:
    """One page per parent of a nested connection (``db.plan.nested.SOURCES``)."""

    source: str
    args: PageArgs
    total: bool
    below: Relations
    options: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Relations:
    """What to load below a row: model relationships by name, each with what it needs
    below it, and nested connection pages by the key their records will hold them under."""

    below: Mapping[str, Relations] = field(default_factory=dict)
    pages: Mapping[str, NestedPage] = field(default_factory=dict)
    # Columns the rows of this relationship must carry (keys are added by the fetch).
    columns: frozenset[str] = frozenset()


NOTHING = Relations()


@dataclass(slots=True)
class PageResult:
    """A page of records, with the total when it was asked for."""

    page: Page[Record]
    total: int | None


@dataclass(slots=True)
class Record:
    """One fetched row and the related records loaded for it (by relationship name)."""

    row: Any
    rel: dict[str, Any] = field(default_factory=dict)
