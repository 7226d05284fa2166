"""The Image type: an upload attached to items."""

from __future__ import annotations

import strawberry

from db.models import Image as ImageRow
from schema.ids import to_global_id


@strawberry.type(description="An uploaded picture, stored once per distinct content.")
class Image:
    id: strawberry.ID = strawberry.field(description="Global ID of the upload.")
    url: str = strawberry.field(description="Where to GET the bytes (long-cacheable).")
    content_type: str = strawberry.field(description="MIME type sniffed from the content.")
    size: int = strawberry.field(description="Size in bytes.")
    width: int | None = strawberry.field(description="Width in pixels.")
    height: int | None = strawberry.field(description="Height in pixels.")
    sha256: str = strawberry.field(description="SHA-256 of the bytes, hex; also the ETag.")

    @classmethod
    def from_row(cls, row: ImageRow) -> Image:
        gid = to_global_id("Image", row.id)
        return cls(
            id=strawberry.ID(gid),
            url=f"/uploads/{gid}",
            content_type=row.content_type,
            size=row.size,
            width=row.width,
            height=row.height,
            sha256=row.sha256,
        )
