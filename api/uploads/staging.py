"""The ``uploadImage`` mutation's file checks (``schema.context.ImageUploads``)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile

from api.uploads.receive import UploadError, store_upload_file
from api.uploads.storage import Storage
from db.errors import ErrorCode, ServiceError
from db.uploads import ImageFile


class ImageStager:
    """Checks a GraphQL ``Upload`` and stores its bytes; the caller records the row."""

    def __init__(self, storage: Storage, max_bytes: int, max_pixels: int) -> None:
        self.storage = storage
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels

    async def stage(self, upload: Any) -> ImageFile:
        if not isinstance(upload, UploadFile):
            raise ServiceError(ErrorCode.INVALID, "Expected a file", ["file"])
        try:
            stored = await store_upload_file(upload, self.storage, self.max_bytes, self.max_pixels)
        except UploadError as error:
            raise ServiceError(ErrorCode.INVALID, error.message, ["file"]) from None
        return stored.image_file()
