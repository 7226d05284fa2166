"""Rows for tests of the ``db/`` services, written straight to a session (no service runs).

Each factory adds one row with plain defaults and a unique natural key; a test passes the
values it depends on. Stock arrives the way the seed writes it, with the ledger rows that
explain it: a level at a given on-hand has its opening RECEIPT, a reservation raises the
level's reserved units with its RESERVATION row. So every level a factory makes replays from
its ledger, as the services' own changes must.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.eventlog import Logged
from db.events import Event
from db.models import (
    Category,
    Item,
    MovementKind,
    Reservation,
    ReservationStatus,
    Role,
    StockLevel,
    StockMovement,
    User,
    Warehouse,
    utcnow,
)
from db.session import unit_of_work

P = ParamSpec("P")
T = TypeVar("T")

# Unique across the test run: a test makes rows in several units of work, each its own Factory.
_serial = itertools.count(1)


@dataclass
class Sessions:
    """Units of work over one test database; what they publish after commit is kept."""

    factory: async_sessionmaker[AsyncSession]
    published: list[Event] = field(default_factory=list)

    def unit_of_work(self) -> AbstractAsyncContextManager[AsyncSession]:
        """One transaction, as a request's: commits on success, then publishes its events."""
        return unit_of_work(self.factory, self._publish)

    async def run(
        self,
        service: Callable[Concatenate[AsyncSession, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Call ``service`` in a unit of work of its own, as one request would."""
        async with self.unit_of_work() as session:
            return await service(session, *args, **kwargs)

    async def _publish(self, logged: Sequence[Logged]) -> None:
        # The events as committed (the log's ids and times are tested in test_eventlog.py).
        self.published.extend(entry.event for entry in logged)


class Factory:
    """Adds rows to ``session`` and flushes, so each returned row has its id."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _added(self, *rows: object) -> None:
        self.session.add_all(rows)
        await self.session.flush()

    async def user(self, role: Role = Role.CLERK, email: str | None = None) -> User:
        user = User(
            email=email or f"user{next(_serial)}@example.com",
            password_hash="not a hash: factory users never log in",
            role=role,
        )
        await self._added(user)
        return user

    async def warehouse(self, code: str | None = None, name: str = "Warehouse") -> Warehouse:
        warehouse = Warehouse(code=code or f"WH-{next(_serial)}", name=name)
        await self._added(warehouse)
        return warehouse

    async def category(self, name: str | None = None, parent: Category | None = None) -> Category:
        category = Category(
            name=name or f"Category {next(_serial)}",
            parent_id=parent.id if parent is not None else None,
        )
        await self._added(category)
        return category

    async def item(
        self,
        sku: str | None = None,
        *,
        name: str | None = None,
        unit_price: Decimal = Decimal("10.00"),
        unit_cost: Decimal | None = Decimal("6.00"),
        reorder_point: int = 0,
        category: Category | None = None,
        archived: bool = False,
        created_at: datetime | None = None,
    ) -> Item:
        n = next(_serial)
        item = Item(
            sku=sku or f"ITEM-{n:05d}",
            name=name or f"Item {n:05d}",
            unit_price=unit_price,
            unit_cost=unit_cost,
            reorder_point=reorder_point,
            category_id=category.id if category is not None else None,
            archived=archived,
        )
        if created_at is not None:
            item.created_at = created_at
        await self._added(item)
        return item

    async def stock(
        self, item: Item, warehouse: Warehouse, on_hand: int, *, at: datetime | None = None
    ) -> StockLevel:
        """A level at ``on_hand``, with the opening RECEIPT that put it there (at ``at``)."""
        level = StockLevel(
            item_id=item.id, warehouse_id=warehouse.id, on_hand=on_hand, reserved=0
        )
        await self._added(level)
        if on_hand:
            await self._added(
                StockMovement(
                    item_id=item.id,
                    warehouse_id=warehouse.id,
                    kind=MovementKind.RECEIPT,
                    delta=on_hand,
                    on_hand_after=on_hand,
                    reserved_after=0,
                    reason="Opening stock",
                    created_at=at or utcnow(),
                )
            )
        return level

    async def stocked(self, on_hand: int, *, reorder_point: int = 0) -> StockLevel:
        """A new item stocked at ``on_hand`` in a new warehouse."""
        item = await self.item(reorder_point=reorder_point)
        return await self.stock(item, await self.warehouse(), on_hand)

    async def reservation(
        self,
        level: StockLevel,
        quantity: int,
        *,
        expires_at: datetime | None = None,
        created_by: User | None = None,
    ) -> Reservation:
        """An ACTIVE reservation holding ``quantity`` of the level (``expires_at`` may be past).

        The service refuses expiry times in the past; tests of expiry need them, so the row is
        written directly, with the level change and the ledger row reserve_stock would write.
        """
        level = await self.session.get_one(StockLevel, level.id)  # this session's copy
        if quantity > level.available:
            raise ValueError(f"the level has only {level.available} units to reserve")
        reservation = Reservation(
            item_id=level.item_id,
            warehouse_id=level.warehouse_id,
            quantity=quantity,
            status=ReservationStatus.ACTIVE,
            expires_at=expires_at,
            created_by=created_by.id if created_by is not None else None,
        )
        await self._added(reservation)
        level.reserved += quantity
        await self._added(
            StockMovement(
                item_id=level.item_id,
                warehouse_id=level.warehouse_id,
                kind=MovementKind.RESERVATION,
                delta=quantity,
                on_hand_after=level.on_hand,
                reserved_after=level.reserved,
                reservation_id=reservation.id,
                actor_id=reservation.created_by,
                created_at=utcnow(),
            )
        )
        return reservation

