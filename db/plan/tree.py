"""The neutral fetch tree a plan hands to `db.plan.fetch`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Relations:
    """The model relationships to load below a row, each with what it needs below it."""

    below: Mapping[str, Relations] = field(default_factory=dict)

    def merged(self, other: Relations) -> Relations:
        """Both trees' relationships, merged per name (two aliases of one relation)."""
        names = dict(self.below)
        for name, child in other.below.items():
            names[name] = names[name].merged(child) if name in names else child
        return Relations(names)


NOTHING = Relations()


@dataclass(slots=True)
class Record:
    """One fetched row and the related records loaded for it (by relationship name)."""

    row: Any
    rel: dict[str, Any] = field(default_factory=dict)
