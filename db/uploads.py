"""Image rows: one per distinct content, garbage-collected once nothing points at them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Image, Item, utcnow


async def record_image(
    session: AsyncSession,
    *,
    sha256: str,
    content_type: str,
    size: int,
    width: int | None,
    height: int | None,
    uploaded_by: int | None,
) -> Image:
    """The row for these bytes, created on first upload (the same bytes are one row)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(
        insert(Image)
        .values(sha256=sha256, content_type=content_type, size=size, width=width,
                height=height, uploaded_by=uploaded_by, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["sha256"])
    )
    image = (await session.scalars(select(Image).where(Image.sha256 == sha256))).one()
    return image


async def image_by_id(session: AsyncSession, image_id: int) -> Image | None:
    return await session.get(Image, image_id)


async def unreferenced_images(session: AsyncSession, older_than: datetime) -> list[Image]:
    used = select(Item.image_id).where(Item.image_id.is_not(None))
    stmt = select(Image).where(Image.created_at < older_than, Image.id.not_in(used))
    return list((await session.scalars(stmt)).all())


async def delete_images(session: AsyncSession, ids: list[int]) -> None:
    if ids:
        await session.execute(delete(Image).where(Image.id.in_(ids)))
