"""Stock operations: every change to a level writes its ledger row in the same transaction.

Concurrency: level changes are single conditional UPDATEs (``… WHERE on_hand + :d >=
reserved RETURNING …``), so PostgreSQL re-checks the condition after waiting on the row
lock and no update is lost; operations touching two levels lock them in id order so
opposite transfers cannot deadlock. On SQLite every write transaction begins IMMEDIATE,
which serialises writers. CHECK constraints refuse anything that slips past.
Lock order everywhere: reservations before levels, levels by ascending id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from db.errors import ErrorCode, ServiceError, ServiceErrors
from db.models import (
    IdempotencyRecord,
    Item,
    MovementKind,
    Reservation,
    ReservationStatus,
    StockLevel,
    StockMovement,
    Warehouse,
    utcnow,
)
from db.session import pending_events, record_event

MAX_QUANTITY = 1_000_000_000
MAX_BULK_ROWS = 500
MAX_TEXT = 2_000

STOCK_CHANNEL = "stock"
LOW_STOCK_CHANNEL = "low_stock"


@dataclass(frozen=True, slots=True)
class StockResult:
    level: StockLevel
    movement: StockMovement


@dataclass(frozen=True, slots=True)
class TransferResult:
    source: StockLevel
    target: StockLevel
    movements: list[StockMovement]


@dataclass(frozen=True, slots=True)
class ReservationResult:
    reservation: Reservation
    level: StockLevel
    movement: StockMovement | None


@dataclass(frozen=True, slots=True)
class AdjustRequest:
    item_id: int | None
    warehouse_id: int | None
    delta: int
    kind: MovementKind
    reason: str | None = None
    reference: str | None = None
    idempotency_key: str | None = None


class ErrorPolicy(StrEnum):
    REJECT_EVERYTHING = "REJECT_EVERYTHING"
    REJECT_FAILED_ROWS = "REJECT_FAILED_ROWS"


@dataclass(slots=True)
class BulkRow:
    index: int
    result: StockResult | None
    errors: list[ServiceError]


class BulkRejected(ServiceErrors):
    """REJECT_EVERYTHING with a failed row: the whole batch rolls back."""

    def __init__(self, rows: list[BulkRow]) -> None:
        super().__init__([e for row in rows for e in row.errors])
        self.rows = rows


# ---------------------------------------------------------------- validation


def _field(prefix: Sequence[str], name: str) -> list[str]:
    return [*prefix, name]


def check_quantity(
    value: int, prefix: Sequence[str], name: str, *, allow_zero: bool = False
) -> None:
    if value == 0 and not allow_zero:
        raise ServiceError(ErrorCode.INVALID, f"{name} must not be zero", _field(prefix, name))
    if value < 0 or value > MAX_QUANTITY:
        raise ServiceError(
            ErrorCode.INVALID,
            f"{name} must be between {0 if allow_zero else 1} and {MAX_QUANTITY}",
            _field(prefix, name),
        )


def _check_text(value: str | None, prefix: Sequence[str], name: str) -> None:
    if value is not None and len(value) > MAX_TEXT:
        raise ServiceError(
            ErrorCode.INVALID, f"{name} is longer than {MAX_TEXT} characters", _field(prefix, name)
        )


async def _item(session: AsyncSession, item_id: int | None, prefix: Sequence[str]) -> Item:
    item = None if item_id is None else await session.get(Item, item_id)
    if item is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such item", _field(prefix, "itemId"))
    return item


async def _warehouse(
    session: AsyncSession, warehouse_id: int | None, prefix: Sequence[str], name: str
) -> Warehouse:
    warehouse = None if warehouse_id is None else await session.get(Warehouse, warehouse_id)
    if warehouse is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such warehouse", _field(prefix, name))
    return warehouse


# ---------------------------------------------------------------- levels and ledger


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def _level_id(session: AsyncSession, item_id: int, warehouse_id: int) -> int:
    """The level's id, creating an empty level on first use (race-free on both backends)."""
    find = select(StockLevel.id).where(
        StockLevel.item_id == item_id, StockLevel.warehouse_id == warehouse_id
    )
    found = await session.scalar(find)
    if found is not None:
        return found
    dialect_insert = postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert
    await session.execute(
        dialect_insert(StockLevel)
        .values(
            item_id=item_id, warehouse_id=warehouse_id, on_hand=0, reserved=0, updated_at=utcnow()
        )
        .on_conflict_do_nothing(index_elements=["item_id", "warehouse_id"])
    )
    level_id = await session.scalar(find)
    assert level_id is not None
    return level_id


async def _change_level(
    session: AsyncSession, level_id: int, *, on_hand: int = 0, reserved: int = 0
) -> StockLevel | None:
    """Apply deltas atomically; None when the result would break a stock rule."""
    new_on_hand = StockLevel.on_hand + on_hand
    new_reserved = StockLevel.reserved + reserved
    stmt = (
        update(StockLevel)
        .where(
            StockLevel.id == level_id,
            new_on_hand >= new_reserved,
            new_reserved >= 0,
        )
        .values(on_hand=new_on_hand, reserved=new_reserved, updated_at=utcnow())
        .returning(StockLevel)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return (await session.scalars(stmt)).first()


async def _locked_level(session: AsyncSession, level_id: int) -> StockLevel:
    stmt = (
        select(StockLevel)
        .where(StockLevel.id == level_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    level = (await session.scalars(stmt)).one()
    return level


async def _ledger(
    session: AsyncSession,
    level: StockLevel,
    kind: MovementKind,
    delta: int,
    *,
    actor_id: int | None,
    reason: str | None = None,
    reference: str | None = None,
    reservation_id: int | None = None,
    available_before: int,
    reorder_point: int,
) -> StockMovement:
    movement = StockMovement(
        item_id=level.item_id,
        warehouse_id=level.warehouse_id,
        kind=kind,
        delta=delta,
        on_hand_after=level.on_hand,
        reserved_after=level.reserved,
        reason=reason,
        reference=reference,
        actor_id=actor_id,
        reservation_id=reservation_id,
        created_at=utcnow(),
    )
    session.add(movement)
    await session.flush()
    available = level.on_hand - level.reserved
    record_event(
        session,
        {
            "channel": STOCK_CHANNEL,
            "itemId": level.item_id,
            "warehouseId": level.warehouse_id,
            "stockLevelId": level.id,
            "movementId": movement.id,
            "kind": kind.value,
            "delta": delta,
            "onHand": level.on_hand,
            "reserved": level.reserved,
            "available": available,
        },
    )
    # Fire on the crossing only, not on every change below the line.
    if available_before > reorder_point >= available:
        record_event(
            session,
            {
                "channel": LOW_STOCK_CHANNEL,
                "itemId": level.item_id,
                "warehouseId": level.warehouse_id,
                "available": available,
                "reorderPoint": reorder_point,
            },
        )
    return movement


async def _expire_for_level(
    session: AsyncSession, item_id: int, warehouse_id: int, reorder_point: int
) -> None:
    """Lazily release this level's ACTIVE reservations whose time is up."""
    now = utcnow()
    due = (
        await session.execute(
            update(Reservation)
            .where(
                Reservation.item_id == item_id,
                Reservation.warehouse_id == warehouse_id,
                Reservation.status == ReservationStatus.ACTIVE,
                Reservation.expires_at.is_not(None),
                Reservation.expires_at <= now,
            )
            .values(status=ReservationStatus.EXPIRED, updated_at=now)
            .returning(Reservation.id, Reservation.quantity)
            .execution_options(synchronize_session=False)
        )
    ).all()
    if not due:
        return
    level_id = await _level_id(session, item_id, warehouse_id)
    for reservation_id, quantity in sorted(due):
        before = await _locked_level(session, level_id)
        available_before = before.on_hand - before.reserved
        level = await _change_level(session, level_id, reserved=-quantity)
        assert level is not None, "reserved never exceeds on_hand"
        await _ledger(
            session,
            level,
            MovementKind.RELEASE,
            -quantity,
            actor_id=None,
            reason="Reservation expired",
            reservation_id=reservation_id,
            available_before=available_before,
            reorder_point=reorder_point,
        )
        await session.execute(
            update(Reservation).where(Reservation.id == reservation_id).values(updated_at=now)
        )


async def expire_due_reservations(session: AsyncSession, limit: int = 500) -> int:
    """The sweeper's pass: release every due reservation, level by level."""
    now = utcnow()
    pairs = (
        await session.execute(
            select(Reservation.item_id, Reservation.warehouse_id)
            .where(
                Reservation.status == ReservationStatus.ACTIVE,
                Reservation.expires_at.is_not(None),
                Reservation.expires_at <= now,
            )
            .distinct()
            .limit(limit)
        )
    ).all()
    for item_id, warehouse_id in pairs:
        item = await session.get(Item, item_id)
        await _expire_for_level(session, item_id, warehouse_id, item.reorder_point if item else 0)
    return len(pairs)


# ---------------------------------------------------------------- idempotency

Replay = Callable[[dict[str, Any]], Awaitable[Any]]


def request_hash(operation: str, payload: dict[str, Any]) -> str:
    return hashlib.sha256(
        orjson.dumps([operation, payload], option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


async def _claim_key(
    session: AsyncSession,
    user_id: int,
    key: str,
    operation: str,
    digest: str,
    prefix: Sequence[str],
) -> IdempotencyRecord | None:
    """Claim the key (None) or return the earlier record to replay.

    Concurrent copies block on the unique index until the first commits, then see it.
    """
    if not key or len(key) > 200:
        raise ServiceError(
            ErrorCode.INVALID,
            "idempotencyKey must be 1 to 200 characters",
            _field(prefix, "idempotencyKey"),
        )
    dialect_insert = postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert
    inserted = await session.execute(
        dialect_insert(IdempotencyRecord)
        .values(
            user_id=user_id,
            key=key,
            operation=operation,
            request_hash=digest,
            result={},
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
        .returning(IdempotencyRecord.id)
    )
    if inserted.first() is not None:
        return None
    record = (
        await session.scalars(
            select(IdempotencyRecord)
            .where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
            .execution_options(populate_existing=True)
        )
    ).one()
    if record.operation != operation or record.request_hash != digest:
        raise ServiceError(
            ErrorCode.INVALID,
            "This idempotencyKey was already used with different input",
            _field(prefix, "idempotencyKey"),
        )
    return record


async def _claim(
    session: AsyncSession,
    user_id: int,
    key: str | None,
    operation: str,
    payload: dict[str, Any],
    prefix: Sequence[str],
) -> IdempotencyRecord | None:
    """The earlier record to replay for this key, or None to go ahead (and no key: None)."""
    if key is None:
        return None
    digest = request_hash(operation, payload)
    return await _claim_key(session, user_id, key, operation, digest, prefix)


async def _remember(session: AsyncSession, user_id: int, key: str, result: dict[str, Any]) -> None:
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
        .values(result=result)
    )


async def _levels_and_movements(
    session: AsyncSession, result: dict[str, Any]
) -> tuple[list[StockLevel], list[StockMovement]]:
    levels = [await session.get_one(StockLevel, i) for i in result["levels"]]
    movements = [await session.get_one(StockMovement, i) for i in result["movements"]]
    return levels, movements


# ---------------------------------------------------------------- operations


async def adjust_stock(
    session: AsyncSession,
    request: AdjustRequest,
    *,
    actor_id: int,
    prefix: Sequence[str] = ("input",),
) -> StockResult:
    """RECEIPT (+), SHIPMENT (-) or ADJUSTMENT (either) of one level."""
    if request.kind not in (MovementKind.RECEIPT, MovementKind.SHIPMENT, MovementKind.ADJUSTMENT):
        raise ServiceError(
            ErrorCode.INVALID,
            "kind must be RECEIPT, SHIPMENT or ADJUSTMENT",
            _field(prefix, "kind"),
        )
    check_quantity(abs(request.delta), prefix, "delta")
    if request.kind is MovementKind.RECEIPT and request.delta < 0:
        raise ServiceError(
            ErrorCode.INVALID,
            "A RECEIPT adds stock: delta must be positive",
            _field(prefix, "delta"),
        )
    if request.kind is MovementKind.SHIPMENT and request.delta > 0:
        raise ServiceError(
            ErrorCode.INVALID,
            "A SHIPMENT removes stock: delta must be negative",
            _field(prefix, "delta"),
        )
    _check_text(request.reason, prefix, "reason")
    _check_text(request.reference, prefix, "reference")
    payload = {
        "item": request.item_id,
        "warehouse": request.warehouse_id,
        "delta": request.delta,
        "kind": request.kind.value,
        "reason": request.reason,
        "reference": request.reference,
    }
    key = request.idempotency_key
    record = await _claim(session, actor_id, key, "adjustStock", payload, prefix)
    if record is not None:
        levels, movements = await _levels_and_movements(session, record.result)
        return StockResult(levels[0], movements[0])
    item = await _item(session, request.item_id, prefix)
    warehouse = await _warehouse(session, request.warehouse_id, prefix, "warehouseId")
    await _expire_for_level(session, item.id, warehouse.id, item.reorder_point)
    level_id = await _level_id(session, item.id, warehouse.id)
    level = await _change_level(session, level_id, on_hand=request.delta)
    if level is None:
        current = await session.get_one(StockLevel, level_id, populate_existing=True)
        raise ServiceError(
            ErrorCode.INSUFFICIENT_STOCK,
            f"Only {current.on_hand - current.reserved} units available to remove",
            _field(prefix, "delta"),
        )
    before = level.on_hand - request.delta - level.reserved
    movement = await _ledger(
        session,
        level,
        request.kind,
        request.delta,
        actor_id=actor_id,
        reason=request.reason,
        reference=request.reference,
        available_before=before,
        reorder_point=item.reorder_point,
    )
    if request.idempotency_key is not None:
        await _remember(
            session,
            actor_id,
            request.idempotency_key,
            {"levels": [level.id], "movements": [movement.id]},
        )
    return StockResult(level, movement)


async def set_stock_count(
    session: AsyncSession,
    *,
    item_id: int | None,
    warehouse_id: int | None,
    counted: int,
    expected_on_hand: int | None,
    reason: str | None,
    idempotency_key: str | None,
    actor_id: int,
    prefix: Sequence[str] = ("input",),
) -> StockResult:
    """Record a physical count; ``expected_on_hand`` makes it a compare-and-swap."""
    check_quantity(counted, prefix, "counted", allow_zero=True)
    if expected_on_hand is not None:
        check_quantity(expected_on_hand, prefix, "expectedOnHand", allow_zero=True)
    _check_text(reason, prefix, "reason")
    payload = {
        "item": item_id,
        "warehouse": warehouse_id,
        "counted": counted,
        "expected": expected_on_hand,
        "reason": reason,
    }
    record = await _claim(session, actor_id, idempotency_key, "setStockCount", payload, prefix)
    if record is not None:
        levels, movements = await _levels_and_movements(session, record.result)
        return StockResult(levels[0], movements[0])
    item = await _item(session, item_id, prefix)
    warehouse = await _warehouse(session, warehouse_id, prefix, "warehouseId")
    await _expire_for_level(session, item.id, warehouse.id, item.reorder_point)
    level_id = await _level_id(session, item.id, warehouse.id)
    current = await _locked_level(session, level_id)
    if expected_on_hand is not None and current.on_hand != expected_on_hand:
        raise ServiceError(
            ErrorCode.VERSION_CONFLICT,
            f"On hand is {current.on_hand}, not the expected {expected_on_hand}: count again",
            _field(prefix, "expectedOnHand"),
        )
    if counted < current.reserved:
        raise ServiceError(
            ErrorCode.INSUFFICIENT_STOCK,
            f"{current.reserved} units are reserved: release reservations before counting lower",
            _field(prefix, "counted"),
        )
    available_before = current.on_hand - current.reserved
    delta = counted - current.on_hand
    level = await _change_level(session, level_id, on_hand=delta)
    assert level is not None, "the row is locked and the count is above reserved"
    movement = await _ledger(
        session,
        level,
        MovementKind.COUNT,
        delta,
        actor_id=actor_id,
        reason=reason,
        available_before=available_before,
        reorder_point=item.reorder_point,
    )
    if idempotency_key is not None:
        await _remember(
            session, actor_id, idempotency_key, {"levels": [level.id], "movements": [movement.id]}
        )
    return StockResult(level, movement)


async def transfer_stock(
    session: AsyncSession,
    *,
    item_id: int | None,
    from_warehouse_id: int | None,
    to_warehouse_id: int | None,
    quantity: int,
    reference: str | None,
    idempotency_key: str | None,
    actor_id: int,
    prefix: Sequence[str] = ("input",),
) -> TransferResult:
    """Move units between warehouses in one transaction: TRANSFER_OUT then TRANSFER_IN."""
    check_quantity(quantity, prefix, "quantity")
    _check_text(reference, prefix, "reference")
    if from_warehouse_id is not None and from_warehouse_id == to_warehouse_id:
        raise ServiceError(
            ErrorCode.INVALID, "Source and destination must differ", _field(prefix, "toWarehouseId")
        )
    payload = {
        "item": item_id,
        "from": from_warehouse_id,
        "to": to_warehouse_id,
        "quantity": quantity,
        "reference": reference,
    }
    record = await _claim(session, actor_id, idempotency_key, "transferStock", payload, prefix)
    if record is not None:
        levels, movements = await _levels_and_movements(session, record.result)
        return TransferResult(levels[0], levels[1], movements)
    item = await _item(session, item_id, prefix)
    source_wh = await _warehouse(session, from_warehouse_id, prefix, "fromWarehouseId")
    target_wh = await _warehouse(session, to_warehouse_id, prefix, "toWarehouseId")
    await _expire_for_level(session, item.id, source_wh.id, item.reorder_point)
    source_id = await _level_id(session, item.id, source_wh.id)
    target_id = await _level_id(session, item.id, target_wh.id)
    # Lock both rows in id order: two opposite transfers then queue instead of deadlocking.
    locked = {lid: await _locked_level(session, lid) for lid in sorted((source_id, target_id))}
    before = {lid: lv.on_hand - lv.reserved for lid, lv in locked.items()}
    if before[source_id] < quantity:
        raise ServiceError(
            ErrorCode.INSUFFICIENT_STOCK,
            f"Only {before[source_id]} units available in {source_wh.code}",
            _field(prefix, "quantity"),
        )
    source = await _change_level(session, source_id, on_hand=-quantity)
    assert source is not None
    out = await _ledger(
        session,
        source,
        MovementKind.TRANSFER_OUT,
        -quantity,
        actor_id=actor_id,
        reference=reference,
        reason=f"Transfer to {target_wh.code}",
        available_before=before[source_id],
        reorder_point=item.reorder_point,
    )
    target = await _change_level(session, target_id, on_hand=quantity)
    assert target is not None
    into = await _ledger(
        session,
        target,
        MovementKind.TRANSFER_IN,
        quantity,
        actor_id=actor_id,
        reference=reference,
        reason=f"Transfer from {source_wh.code}",
        available_before=before[target_id],
        reorder_point=item.reorder_point,
    )
    if idempotency_key is not None:
        await _remember(
            session,
            actor_id,
            idempotency_key,
            {"levels": [source.id, target.id], "movements": [out.id, into.id]},
        )
    return TransferResult(source, target, [out, into])


async def reserve_stock(
    session: AsyncSession,
    *,
    item_id: int | None,
    warehouse_id: int | None,
    quantity: int,
    reference: str | None,
    expires_at: datetime | None,
    idempotency_key: str | None,
    actor_id: int,
    prefix: Sequence[str] = ("input",),
) -> ReservationResult:
    """Hold units back: they stay on hand but are no longer available."""
    check_quantity(quantity, prefix, "quantity")
    _check_text(reference, prefix, "reference")
    if expires_at is not None and expires_at <= utcnow():
        raise ServiceError(
            ErrorCode.INVALID, "expiresAt must be in the future", _field(prefix, "expiresAt")
        )
    payload = {
        "item": item_id,
        "warehouse": warehouse_id,
        "quantity": quantity,
        "reference": reference,
        "expiresAt": expires_at.isoformat() if expires_at else None,
    }
    record = await _claim(session, actor_id, idempotency_key, "reserveStock", payload, prefix)
    if record is not None:
        reservation = await session.get_one(Reservation, record.result["reservation"])
        levels, movements = await _levels_and_movements(session, record.result)
        return ReservationResult(reservation, levels[0], movements[0])
    item = await _item(session, item_id, prefix)
    warehouse = await _warehouse(session, warehouse_id, prefix, "warehouseId")
    if item.archived:
        raise ServiceError(
            ErrorCode.INVALID, "Archived items cannot be reserved", _field(prefix, "itemId")
        )
    await _expire_for_level(session, item.id, warehouse.id, item.reorder_point)
    level_id = await _level_id(session, item.id, warehouse.id)
    level = await _change_level(session, level_id, reserved=quantity)
    if level is None:
        current = await session.get_one(StockLevel, level_id, populate_existing=True)
        raise ServiceError(
            ErrorCode.INSUFFICIENT_STOCK,
            f"Only {current.on_hand - current.reserved} units available to reserve",
            _field(prefix, "quantity"),
        )
    reservation = Reservation(
        item_id=item.id,
        warehouse_id=warehouse.id,
        quantity=quantity,
        reference=reference,
        expires_at=expires_at,
        created_by=actor_id,
        status=ReservationStatus.ACTIVE,
    )
    session.add(reservation)
    await session.flush()
    movement = await _ledger(
        session,
        level,
        MovementKind.RESERVATION,
        quantity,
        actor_id=actor_id,
        reference=reference,
        reservation_id=reservation.id,
        available_before=level.on_hand - level.reserved + quantity,
        reorder_point=item.reorder_point,
    )
    if idempotency_key is not None:
        await _remember(
            session,
            actor_id,
            idempotency_key,
            {
                "reservation": reservation.id,
                "levels": [level.id],
                "movements": [movement.id],
            },
        )
    return ReservationResult(reservation, level, movement)


async def _close_reservation(
    session: AsyncSession, reservation_id: int | None, *, fulfil: bool, actor_id: int
) -> ReservationResult:
    target = ReservationStatus.FULFILLED if fulfil else ReservationStatus.RELEASED
    reservation = None
    if reservation_id is not None:
        reservation = (
            await session.scalars(
                select(Reservation)
                .where(Reservation.id == reservation_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).first()
    if reservation is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "No such reservation", ["id"])
    item = await session.get_one(Item, reservation.item_id)
    now = utcnow()
    if (
        reservation.status is ReservationStatus.ACTIVE
        and reservation.expires_at is not None
        and reservation.expires_at <= now
    ):
        await _expire_for_level(session, item.id, reservation.warehouse_id, item.reorder_point)
        await session.refresh(reservation)
    if reservation.status is not ReservationStatus.ACTIVE:
        raise ServiceError(
            ErrorCode.INVALID,
            f"The reservation is {reservation.status.value}: it cannot change again",
            ["id"],
        )
    level_id = await _level_id(session, reservation.item_id, reservation.warehouse_id)
    before = await _locked_level(session, level_id)
    available_before = before.on_hand - before.reserved
    quantity = reservation.quantity
    if fulfil:
        level = await _change_level(session, level_id, on_hand=-quantity, reserved=-quantity)
    else:
        level = await _change_level(session, level_id, reserved=-quantity)
    assert level is not None, "an active reservation's units are on hand and reserved"
    reservation.status = target
    reservation.updated_at = now
    await session.flush()
    movement = await _ledger(
        session,
        level,
        MovementKind.FULFILLMENT if fulfil else MovementKind.RELEASE,
        -quantity,
        actor_id=actor_id,
        reference=reservation.reference,
        reservation_id=reservation.id,
        available_before=available_before,
        reorder_point=item.reorder_point,
    )
    return ReservationResult(reservation, level, movement)


async def release_reservation(
    session: AsyncSession, reservation_id: int | None, *, actor_id: int
) -> ReservationResult:
    return await _close_reservation(session, reservation_id, fulfil=False, actor_id=actor_id)


async def fulfill_reservation(
    session: AsyncSession, reservation_id: int | None, *, actor_id: int
) -> ReservationResult:
    """Ship reserved units: they leave on-hand and reserved together."""
    return await _close_reservation(session, reservation_id, fulfil=True, actor_id=actor_id)


async def bulk_adjust_stock(
    session: AsyncSession,
    requests: Sequence[AdjustRequest | ServiceError],
    policy: ErrorPolicy,
    *,
    actor_id: int,
) -> list[BulkRow]:
    """Adjust many levels in one transaction; rows that failed to parse arrive as errors."""
    if len(requests) > MAX_BULK_ROWS:
        raise ServiceError(ErrorCode.INVALID, f"At most {MAX_BULK_ROWS} rows per call", ["inputs"])
    rows: list[BulkRow] = []
    for index, request in enumerate(requests):
        prefix = ("inputs", str(index))
        if isinstance(request, ServiceError):
            rows.append(BulkRow(index, None, [request]))
            continue
        events = pending_events(session)
        mark = len(events)
        try:
            async with session.begin_nested():
                result = await adjust_stock(session, request, actor_id=actor_id, prefix=prefix)
            rows.append(BulkRow(index, result, []))
        except ServiceError as error:
            del events[mark:]  # the savepoint rolled back: announce nothing of it
            rows.append(BulkRow(index, None, [error]))
    if policy is ErrorPolicy.REJECT_EVERYTHING and any(row.errors for row in rows):
        raise BulkRejected(rows)
    return rows
