"""Decide what an upload is from its bytes, with Pillow; refuse anything but safe images.

The stored bytes are exactly the uploaded ones (ETag = sha256 of what the client sent), so
JPEG EXIF metadata, GPS included, is kept: strip it client-side if it matters.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile

ImageFile.LOAD_TRUNCATED_IMAGES = False

FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


class UnsupportedImage(Exception):
    pass


class ImageTooLarge(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ImageInfo:
    content_type: str
    width: int
    height: int


def sniff_image(path: Path, max_pixels: int) -> ImageInfo:
    """Open, verify and fully decode; raise for anything not a sound PNG/JPEG/WebP/GIF."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path, formats=list(FORMATS)) as probe:
                fmt = probe.format or ""
                width, height = probe.size
                if width * height > max_pixels:
                    raise ImageTooLarge(f"{width}x{height} pixels is more than {max_pixels}")
                probe.verify()
            with Image.open(path, formats=list(FORMATS)) as image:
                image.load()  # truncated or corrupt data fails here
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageTooLarge(str(exc)) from None
        except ImageTooLarge:
            raise
        except Exception as exc:  # Pillow raises many types for bad input
            raise UnsupportedImage("not a PNG, JPEG, WebP or GIF image") from exc
    if fmt not in FORMATS:
        raise UnsupportedImage("not a PNG, JPEG, WebP or GIF image")
    return ImageInfo(FORMATS[fmt], width, height)
