"""``GET /exports/{items,stock,movements}.{csv,jsonl}``: streamed in constant memory.

Rows come from ``db.exports`` in keyset batches and go out as each batch is encoded, so an
export of any size holds one batch. CSV exports start with a BOM (spreadsheets then read
them as UTF-8) and guard text cells against formula injection (OWASP: a leading ``'``
before ``= + - @``, tab or CR); the imports read them back exactly. ``unit_cost`` is in the
items export for MANAGER and above only.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import CurrentUser, StateDep
from api.state import AppState
from db import exports
from db.exports import MovementRange, Rows
from db.imports import guard
from db.models import MovementKind, Role

router = APIRouter(tags=["exports"])
CENT = Decimal("0.01")


class ExportFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


_MEDIA = {ExportFormat.csv: "text/csv; charset=utf-8",
          ExportFormat.jsonl: "application/x-ndjson"}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}, "application/x-ndjson": {}},
          "description": "The rows, streamed"},
    401: {"description": "No or bad token"},
}


def _other(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, str):  # a str subclass
        return guard(value)
    return str(value)


# What the csv module would not write as the imports read it, by exact type (ints and
# None it writes as they are). Only free text is guarded: numbers cannot carry a formula.
_CELLS: dict[type, Callable[[Any], Any]] = {
    str: guard,
    bool: lambda value: "true" if value else "false",
    Decimal: lambda value: f"{value:.2f}",
    datetime: lambda value: value.astimezone(UTC).isoformat(),
}
_convert = _CELLS.get


def _csv_row(row: Sequence[Any]) -> list[Any]:
    """A row's cells as the imports read them back."""
    cells = []
    for value in row:
        convert = _convert(type(value))
        if convert is not None:
            value = convert(value)
        elif value is not None and type(value) is not int:
            value = _other(value)
        cells.append(value)
    return cells


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value.quantize(CENT))
    raise TypeError(type(value).__name__)


async def _encoded(
    state: AppState, fmt: ExportFormat, columns: Sequence[str],
    rows: Callable[[AsyncSession], Rows],
) -> AsyncIterator[bytes]:
    async with state.read_factory() as session:
        if fmt is ExportFormat.csv:
            buffer = io.StringIO()
            writer = csv.writer(buffer)  # RFC 4180: quotes when needed, CRLF line ends
            buffer.write("\ufeff")
            writer.writerow(columns)
            async for batch in rows(session):
                writer.writerows(map(_csv_row, batch))
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
            if buffer.tell():
                yield buffer.getvalue().encode()
            return
        async for batch in rows(session):
            yield b"".join(
                orjson.dumps(dict(zip(columns, row, strict=True)), default=_json_default) + b"\n"
                for row in batch
            )


def _stream(
    state: AppState, fmt: ExportFormat, name: str, columns: Sequence[str],
    rows: Callable[[AsyncSession], Rows],
) -> StreamingResponse:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    headers = {
        "Content-Disposition": f'attachment; filename="stockroom-{name}-{stamp}.{fmt.value}"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(_encoded(state, fmt, columns, rows), media_type=_MEDIA[fmt],
                             headers=headers)


@router.get(
    "/exports/items.{fmt}",
    summary="Every item, in the columns the item import reads",
    response_class=StreamingResponse,
    responses=_RESPONSES,
)
async def export_items(fmt: ExportFormat, user: CurrentUser, state: StateDep
                       ) -> StreamingResponse:
    with_cost = user.role.includes(Role.MANAGER)
    return _stream(state, fmt, "items", exports.item_columns(with_cost),
                   lambda s: exports.items(s, with_cost=with_cost))


@router.get(
    "/exports/stock.{fmt}",
    summary="One row per stock level: sku, warehouse, on hand, reserved, available, "
    "reorder point, low",
    response_class=StreamingResponse,
    responses={**_RESPONSES, 404: {"description": "No warehouse with that code"}},
)
async def export_stock(
    fmt: ExportFormat, user: CurrentUser, state: StateDep,
    warehouse: Annotated[str | None, Query(description="Only this warehouse (its code).")] = None,
) -> StreamingResponse:
    del user  # any signed-in role
    warehouse_pk = None
    if warehouse is not None:
        async with state.read_factory() as session:
            warehouse_pk = await exports.warehouse_id(session, warehouse)
        if warehouse_pk is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"No warehouse with code {warehouse}")
    return _stream(state, fmt, "stock", exports.STOCK_EXPORT_COLUMNS,
                   lambda s: exports.stock(s, warehouse_pk))


@router.get(
    "/exports/movements.{fmt}",
    summary="The stock ledger, oldest first",
    response_class=StreamingResponse,
    responses={**_RESPONSES, 422: {"description": "A bad date or movement kind"}},
)
async def export_movements(
    fmt: ExportFormat, user: CurrentUser, state: StateDep,
    since: Annotated[datetime | None, Query(description="At or after (ISO 8601; UTC "
                                            "when no offset is given).")] = None,
    until: Annotated[datetime | None, Query(description="Before (ISO 8601).")] = None,
    kind: Annotated[list[str] | None, Query(description="Only these kinds: repeat the "
                                            "parameter or separate with commas.")] = None,
) -> StreamingResponse:
    del user
    kinds: list[MovementKind] = []
    for part in (p.strip().upper() for value in kind or () for p in value.split(",")):
        if not part:
            continue
        try:
            kinds.append(MovementKind(part))
        except ValueError:
            known = ", ".join(k.value for k in MovementKind)
            raise HTTPException(422,
                                f"Unknown movement kind {part!r}: one of {known}") from None
    wanted = MovementRange(since, until, tuple(kinds))
    return _stream(state, fmt, "movements", exports.MOVEMENT_EXPORT_COLUMNS,
                   lambda s: exports.movements(s, wanted))
