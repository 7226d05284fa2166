"""The Image type: an upload attached to items."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.file_uploads import Upload

from db.errors import ServiceError
from db.models import Image as ImageRow
from schema.context import Context
from schema.errors import UserError
from schema.ids import to_global_id
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
        images = info.context.images
        assert images is not None, "the app wires an image store"
        user = info.context.user
        assert user is not None
        try:
            row = await images.store(file, user.id)
        except ServiceError as error:
            return UploadPayload(image=None, errors=[UserError.from_service(error)])
        return UploadPayload(image=Image.from_row(row), errors=[])
