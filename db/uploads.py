"""Image rows: one per distinct content, garbage-collected once nothing points at them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from db import batch
from db.dialects import insert_ignoring_conflicts
from db.models import Image, Item, utcnow


@dataclass(frozen=True, slots=True)
class ImageFile:
    """What the upload checks established about a stored file."""

    sha256: str
    content_type: str
    size: int
    width: int | None
    height: int | None


async def record_image(session: AsyncSession, file: ImageFile, uploaded_by: int | None) -> Image:
    """The row for these bytes, created on first upload (the same bytes are one row)."""
    values = {
        "sha256": file.sha256,
        "content_type": file.content_type,
        "size": file.size,
        "width": file.width,
        "height": file.height,
        "uploaded_by": uploaded_by,
        "created_at": utcnow(),
    }
    await session.execute(insert_ignoring_conflicts(session, Image, values, ["sha256"]))
    return (await session.scalars(select(Image).where(Image.sha256 == file.sha256))).one()


async def images_by_id(session: AsyncSession, ids: Sequence[int]) -> list[Image | None]:
    return await batch.by_ids(session, Image, ids)


async def recorded_digests(session: AsyncSession, digests: Sequence[str]) -> set[str]:
    """Which of these blobs have an image row."""
    if not digests:
        return set()
    rows = await session.scalars(select(Image.sha256).where(Image.sha256.in_(set(digests))))
    return set(rows.all())


async def unreferenced_images(session: AsyncSession, older_than: datetime) -> list[Image]:
    used = select(Item.image_id).where(Item.image_id.is_not(None))
    stmt = select(Image).where(Image.created_at < older_than, Image.id.not_in(used))
    return list((await session.scalars(stmt)).all())


async def delete_images(session: AsyncSession, ids: list[int]) -> None:
    if ids:
        await session.execute(delete(Image).where(Image.id.in_(ids)))
