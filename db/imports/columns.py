"""What each import reads: its columns, the header check, and the formula-injection guard.

Exports write the same column names, so an exported file re-imports unchanged. The stock
export's ``on_hand`` is read as ``counted``, and its read-only columns (reserved, available,
reorder point, low) are accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from db.models import ImportKind

ITEM_COLUMNS = (
    "sku",
    "name",
    "description",
    "category",
    "unit_price",
    "unit_cost",
    "reorder_point",
    "archived",
)
COUNT_COLUMNS = ("sku", "warehouse", "counted", "reason")
STOCK_EXPORT_COLUMNS = (
    "sku",
    "warehouse",
    "on_hand",
    "reserved",
    "available",
    "reorder_point",
    "low",
)
MOVEMENT_EXPORT_COLUMNS = (
    "id",
    "created_at",
    "sku",
    "warehouse",
    "kind",
    "delta",
    "on_hand_after",
    "reserved_after",
    "reason",
    "reference",
    "actor",
)

# How many names an error message lists before it says "and N more".
LISTED_NAMES = 10


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """The columns of one import kind."""

    columns: tuple[str, ...]
    required: frozenset[str]
    # Another name for a column (the stock export's on_hand is a count).
    aliases: Mapping[str, str] = field(default_factory=dict)
    # Columns an export writes that the import accepts and does not read.
    ignored: frozenset[str] = frozenset()

    def canonical(self, name: str) -> str | None:
        """The column a (normalised) header name stands for; None for an ignored one."""
        name = self.aliases.get(name, name)
        return None if name in self.ignored else name

    def known(self, name: str) -> bool:
        return name in self.columns or name in self.aliases or name in self.ignored


SPECS: Mapping[ImportKind, ColumnSpec] = {
    ImportKind.ITEMS: ColumnSpec(ITEM_COLUMNS, frozenset({"sku", "name", "unit_price"})),
    ImportKind.STOCK_COUNTS: ColumnSpec(
        COUNT_COLUMNS,
        frozenset({"sku", "warehouse", "counted"}),
        aliases={"on_hand": "counted"},
        ignored=frozenset({"reserved", "available", "reorder_point", "low"}),
    ),
}


class HeaderError(ValueError):
    """A header the import cannot read; names what is missing, unknown or repeated."""

    def __init__(
        self,
        message: str,
        *,
        missing: Sequence[str] = (),
        unknown: Sequence[str] = (),
        repeated: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.missing = list(missing)
        self.unknown = list(unknown)
        self.repeated = list(repeated)


def normalise(name: str) -> str:
    """``" Unit Price "`` -> ``unit_price``: header names as people type them."""
    return "_".join(name.strip().lower().replace("-", " ").split())


def listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:LISTED_NAMES])
    more = len(names) - LISTED_NAMES
    return f"{shown} and {more:,} more" if more > 0 else shown


def read_header(kind: ImportKind, names: Sequence[str]) -> list[str | None]:
    """The column each header position holds (None: ignored); HeaderError when unusable."""
    spec = SPECS[kind]
    normalised = [normalise(name) for name in names]
    unknown = [
        raw.strip() for raw, name in zip(names, normalised, strict=True) if not spec.known(name)
    ]
    columns = [spec.canonical(name) for name in normalised]
    seen: set[str] = set()
    repeated = []
    for column in columns:
        if column is not None:
            if column in seen and column not in repeated:
                repeated.append(column)
            seen.add(column)
    missing = [name for name in spec.columns if name in spec.required and name not in seen]
    problems = []
    if missing:
        problems.append(f"missing column{'s' if len(missing) > 1 else ''} {listed(missing)}")
    if unknown:
        problems.append(f"unknown column{'s' if len(unknown) > 1 else ''} {listed(unknown)}")
    if repeated:
        problems.append(f"repeated column{'s' if len(repeated) > 1 else ''} {listed(repeated)}")
    if problems:
        expected = ",".join(spec.columns)
        raise HeaderError(
            f"The header has {'; '.join(problems)}. Expected columns: {expected}",
            missing=missing,
            unknown=unknown,
            repeated=repeated,
        )
    return columns


# OWASP CSV injection: a spreadsheet runs a cell starting with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The guard's own mark is escaped as well, so every text survives the round trip exactly.
_GUARDED = (*FORMULA_STARTS, "'")


def guard(text: str) -> str:
    """A text cell as a CSV export writes it: a leading ``'`` keeps a formula inert."""
    return "'" + text if text.startswith(_GUARDED) else text


def unguard(text: str) -> str:
    """The text a guarded CSV cell stands for (what ``guard`` was given)."""
    if text[:1] == "'" and text.startswith(_GUARDED, 1):
        return text[1:]
    return text
