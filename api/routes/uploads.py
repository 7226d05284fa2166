"""``POST /uploads`` and ``GET /uploads/{id}``: images in, exact bytes out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, status
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from api.deps import CurrentUser, StateDep
from api.uploads.receive import UploadError, receive_upload
from db import uploads
from db.models import Image, Role
from db.session import unit_of_work
from schema.ids import from_global_id, to_global_id

router = APIRouter(tags=["uploads"])
CACHE_FOREVER = "public, max-age=31536000, immutable"
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


class UploadResponse(BaseModel):
    id: str = Field(examples=["SW1hZ2U6MQ=="], description="Pass to `setItemImage`.")
    url: str = Field(examples=["/uploads/SW1hZ2U6MQ=="])
    contentType: str = Field(examples=["image/png"])
    size: int = Field(examples=[20480])
    width: int | None = Field(examples=[640])
    height: int | None = Field(examples=[480])
    sha256: str = Field(examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd1"])

    @classmethod
    def of(cls, image: Image) -> UploadResponse:
        gid = to_global_id("Image", image.id)
        return cls(id=gid, url=f"/uploads/{gid}", contentType=image.content_type,
                   size=image.size, width=image.width, height=image.height, sha256=image.sha256)


@router.post(
    "/uploads",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadResponse,
    summary="Upload an image (CLERK and above)",
    description="multipart/form-data with a `file` field; PNG, JPEG, WebP or GIF, decided "
    "from the content. The same bytes uploaded twice are stored once.",
    responses={
        400: {"description": "Malformed request"},
        401: {"description": "No or bad token"},
        403: {"description": "Role below CLERK"},
        413: {"description": "Over STOCKROOM_MAX_UPLOAD_BYTES, or absurd pixel dimensions"},
        415: {"description": "Not a PNG, JPEG, WebP or GIF image"},
    },
    openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {
        "schema": {"type": "object", "required": ["file"],
                   "properties": {"file": {"type": "string", "format": "binary"}}}}}}},
)
async def upload(request: Request, user: CurrentUser, state: StateDep) -> UploadResponse:
    if not user.role.includes(Role.CLERK):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Uploading needs the CLERK role")
    settings = state.settings
    try:
        stored = await receive_upload(
            request, state.storage, settings.max_upload_bytes, settings.max_image_pixels
        )
    except UploadError as error:
        raise HTTPException(error.status_code, error.message) from None
    async with unit_of_work(state.write_factory) as session:
        image = await uploads.record_image(session, stored.image_file(), user.id)
    return UploadResponse.of(image)


@router.get(
    "/uploads/{upload_id}",
    summary="The bytes of an upload",
    response_class=FileResponse,
    responses={304: {"description": "Not modified (If-None-Match)"},
               404: {"description": "No such upload"}},
)
async def download(
    upload_id: str,
    state: StateDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    try:
        type_name, pk = from_global_id(upload_id)
    except ValueError:
        type_name, pk = "", 0
    image = None
    if type_name == "Image":
        async with state.read_factory() as session:
            (image,) = await uploads.images_by_id(session, [pk])
    if image is None or not await state.storage.exists(image.sha256):
        return JSONResponse({"detail": "No such upload"}, status_code=404)
    etag = f'"{image.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": CACHE_FOREVER,
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'inline; filename="{image.sha256[:16]}.'
        f'{EXTENSIONS.get(image.content_type, "bin")}"',
    }
    if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    return FileResponse(state.storage.path(image.sha256), media_type=image.content_type,
                        headers=headers)
