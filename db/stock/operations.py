"""Changes to stock on hand: adjust, count, transfer, and bulk adjustments.

Every change writes one ledger row per level it touches, in the same transaction. Keyed
requests go through ``run_keyed``; the locking rules are in ``db.stock.levels``.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from db import events
from db.errors import ErrorCode, ServiceError
from db.models import MovementKind
from db.stock.idempotency import run_keyed
from db.stock.levels import (
    change_level,
    current_level,
    get_warehouse,
    level_id,
    locked_level,
    open_level,
    write_ledger,
)
from db.stock.requests import AdjustRequest, CountRequest, ErrorPolicy, TransferRequest
from db.stock.results import BulkRejected, BulkRow, StockResult, TransferResult

MAX_BULK_ROWS = 500


async def adjust_stock(
    session: AsyncSession, request: AdjustRequest, *, actor_id: int
) -> StockResult:
    """RECEIPT (+), SHIPMENT (-) or ADJUSTMENT (either) of one level."""

    async def perform() -> StockResult:
        target = await open_level(session, request.item_id, request.warehouse_id)
        level = await change_level(session, target.level_id, on_hand=request.delta)
        if level is None:
            current = await current_level(session, target.level_id)
            raise ServiceError(
                ErrorCode.INSUFFICIENT_STOCK,
                f"Only {current.available} units available to remove",
                ["delta"],
            )
        movement = await write_ledger(
            session,
            level,
            request.kind,
            request.delta,
            actor_id=actor_id,
            reason=request.reason,
            reference=request.reference,
            available_before=level.available - request.delta,
            reorder_point=target.item.reorder_point,
        )
        return StockResult(level, movement)

    return await run_keyed(
        session, request, actor_id=actor_id, result_type=StockResult, perform=perform
    )


async def set_stock_count(
    session: AsyncSession, request: CountRequest, *, actor_id: int
) -> StockResult:
    """Record a physical count; ``expected_on_hand`` makes it a compare-and-swap."""

    async def perform() -> StockResult:
        target = await open_level(session, request.item_id, request.warehouse_id)
        current = await locked_level(session, target.level_id)
        expected = request.expected_on_hand
        if expected is not None and current.on_hand != expected:
            raise ServiceError(
                ErrorCode.VERSION_CONFLICT,
                f"On hand is {current.on_hand}, not the expected {expected}: count again",
                ["expected_on_hand"],
            )
        held = current.reserved + current.damaged + current.quality_control
        if request.counted < held:
            raise ServiceError(
                ErrorCode.INSUFFICIENT_STOCK,
                f"{held} units are reserved, damaged or in quality control: release or move "
                "them before counting lower",
                ["counted"],
            )
        available_before = current.available
        delta = request.counted - current.on_hand
        # A count is a fact: it may leave nothing available above the safety stock.
        level = await change_level(session, target.level_id, on_hand=delta, enforce_available=False)
        assert level is not None, "the row is locked and the count covers every held unit"
        movement = await write_ledger(
            session,
            level,
            MovementKind.COUNT,
            delta,
            actor_id=actor_id,
            reason=request.reason,
            reference=request.reference,
            available_before=available_before,
            reorder_point=target.item.reorder_point,
        )
        return StockResult(level, movement)

    return await run_keyed(
        session, request, actor_id=actor_id, result_type=StockResult, perform=perform
    )


async def transfer_stock(
    session: AsyncSession, request: TransferRequest, *, actor_id: int
) -> TransferResult:
    """Move units between warehouses in one transaction: TRANSFER_OUT then TRANSFER_IN."""

    async def perform() -> TransferResult:
        source = await open_level(
            session, request.item_id, request.from_warehouse_id, "from_warehouse_id"
        )
        target_wh = await get_warehouse(session, request.to_warehouse_id, "to_warehouse_id")
        target_id = await level_id(session, source.item.id, target_wh.id)
        source_id = source.level_id
        # Both rows locked in id order: opposite transfers then queue instead of deadlocking.
        locked = {lid: await locked_level(session, lid) for lid in sorted((source_id, target_id))}
        before = {lid: level.available for lid, level in locked.items()}
        quantity = request.quantity
        if before[source_id] < quantity:
            raise ServiceError(
                ErrorCode.INSUFFICIENT_STOCK,
                f"Only {before[source_id]} units available in {source.warehouse.code}",
                ["quantity"],
            )
        moves = []
        for lid, delta, kind, reason in (
            (source_id, -quantity, MovementKind.TRANSFER_OUT, f"Transfer to {target_wh.code}"),
            (
                target_id,
                quantity,
                MovementKind.TRANSFER_IN,
                f"Transfer from {source.warehouse.code}",
            ),
        ):
            level = await change_level(session, lid, on_hand=delta)
            assert level is not None, "the rows are locked and the source has the units"
            movement = await write_ledger(
                session,
                level,
                kind,
                delta,
                actor_id=actor_id,
                reference=request.reference,
                reason=reason,
                available_before=before[lid],
                reorder_point=source.item.reorder_point,
            )
            moves.append((level, movement))
        (out_level, out), (in_level, into) = moves
        return TransferResult(out_level, in_level, [out, into])

    return await run_keyed(
        session, request, actor_id=actor_id, result_type=TransferResult, perform=perform
    )


async def bulk_adjust_stock(
    session: AsyncSession,
    requests: Sequence[AdjustRequest | ServiceError],
    policy: ErrorPolicy,
    *,
    actor_id: int,
) -> list[BulkRow]:
    """Adjust many levels in one transaction; rows that failed to parse arrive as errors.

    Each row runs in a savepoint, so a failed row leaves nothing behind, events included.
    Rows are applied in (item, warehouse) order, keeping the given order among the rows of
    one level: two calls over the same levels then take their row locks in the same order
    and cannot deadlock, and each level sees its rows as sent. Results keep the input order.
    """
    if len(requests) > MAX_BULK_ROWS:
        raise ServiceError(ErrorCode.INVALID, f"At most {MAX_BULK_ROWS} rows per call", ["inputs"])
    rows: list[BulkRow] = []

    def lock_order(index: int) -> tuple[int, int]:
        request = requests[index]
        if isinstance(request, ServiceError):
            return (-1, -1)
        return (request.item_id, request.warehouse_id)

    for index in sorted(range(len(requests)), key=lock_order):
        request = requests[index]
        if isinstance(request, ServiceError):
            rows.append(BulkRow(index, None, [request]))
            continue
        pending = events.pending(session)
        mark = len(pending)
        try:
            async with session.begin_nested():
                result = await adjust_stock(session, request, actor_id=actor_id)
            rows.append(BulkRow(index, result, []))
        except ServiceError as error:
            del pending[mark:]  # the savepoint rolled back: announce nothing of it
            rows.append(BulkRow(index, None, [error]))
    rows.sort(key=lambda row: row.index)
    if policy is ErrorPolicy.REJECT_EVERYTHING and any(row.errors for row in rows):
        raise BulkRejected(rows)
    return rows
