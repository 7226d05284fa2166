"""The Image type: an upload attached to items."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.file_uploads import Upload

from db import uploads
from db.errors import ServiceError
from db.models import Image as ImageRow
from schema.context import Context
from schema.errors import ARGUMENTS, UserError
from schema.ids import to_global_id
from schema.mutations import run
from schema.permissions import IsClerk


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


@strawberry.type(description="Result of an upload.")
class UploadPayload:
    image: Image | None = strawberry.field(description="The stored image.")
    errors: list[UserError] = strawberry.field(description="Why it was refused.")


@strawberry.type
class UploadMutation:
    @strawberry.mutation(
        description="Upload an image through the GraphQL multipart request spec (CLERK). "
        "Send the `Apollo-Require-Preflight: true` header.",
        permission_classes=[IsClerk],
    )
    async def upload_image(
        self,
        info: strawberry.Info[Context],
        file: Annotated[Upload, strawberry.argument(description="The image file.")],
    ) -> UploadPayload:
        context = info.context
        user = context.user
        assert user is not None  # the permission class guarantees it
        try:
            # Checked and stored before the transaction opens: a slow upload holds no lock.
            staged = await context.services.images.stage(file)
        except ServiceError as error:
            return UploadPayload(image=None, errors=[UserError.from_service(error, ARGUMENTS)])
        row, errors = await run(context, lambda s: uploads.record_image(s, staged, user.id))
        return UploadPayload(image=None if row is None else Image.from_row(row), errors=errors)
