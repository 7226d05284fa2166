"""Decide what an upload is from its bytes, with Pillow; refuse anything but sound images.

Only PNG, JPEG, WebP and GIF pass, judged from the content alone (never the filename or the
client's Content-Type), and only once the image has fully decoded (the first frame, for
animations). Dimensions are checked from the header before any pixel is decoded, so a
decompression bomb costs a header read.

Nothing is re-encoded and metadata is NOT stripped: the stored bytes are exactly the uploaded
ones (the sha256 is both the content address and the ETag). So JPEG/WebP EXIF metadata, GPS
position included, is served as uploaded; clients that care must strip it before uploading.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile

# Pillow's default, set explicitly: a truncated image must fail to load, not decode as grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False

# Pillow format name -> the Content-Type we serve. MPO is a multi-picture JPEG (what many
# phone cameras write); Pillow's JPEG opener reports it as MPO, browsers show it as JPEG.
CONTENT_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
# Only these openers are tried, so no other Pillow plugin ever parses untrusted bytes.
_OPENERS = ("PNG", "JPEG", "WEBP", "GIF")
_REFUSED = "not a PNG, JPEG, WebP or GIF image"


class UnsupportedImage(Exception):
    """Not one of the allowed formats, or corrupt, or truncated."""

    def __init__(self, message: str = _REFUSED) -> None:
        super().__init__(message)
        self.message = message


class ImageTooLarge(Exception):
    """More pixels than allowed (a decompression bomb): refused from the header alone."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class ImageInfo:
    content_type: str
    width: int
    height: int
    format: str  # Pillow's name: PNG, JPEG, MPO, WEBP or GIF


def pixel_limit(max_pixels: int) -> int:
    """Ours, or Pillow's bomb threshold when that is lower.

    Refusing at Pillow's threshold ourselves covers its DecompressionBombWarning without
    touching the process-wide warnings filters, which are not thread-safe (this runs in a
    worker thread).
    """
    pillow_limit = Image.MAX_IMAGE_PIXELS
    return max_pixels if pillow_limit is None else min(max_pixels, int(pillow_limit))


def sniff_image(path: Path, max_pixels: int) -> ImageInfo:
    """Open, check dimensions, verify, then decode; blocking, so call it from a thread.

    Raises ImageTooLarge for more than ``max_pixels`` pixels and UnsupportedImage for
    anything else that is not a sound PNG, JPEG, WebP or GIF.
    """
    limit = pixel_limit(max_pixels)
    try:
        # open() reads the header only: the dimensions are known before any pixel data.
        with Image.open(path, formats=_OPENERS) as probe:
            fmt = probe.format or ""
            width, height = probe.size
            if fmt not in CONTENT_TYPES:
                raise UnsupportedImage()
            if width <= 0 or height <= 0:
                raise UnsupportedImage("the image has no pixels")
            if width * height > limit:
                raise ImageTooLarge(f"{width}x{height} pixels is more than {limit}")
            probe.verify()  # structure and checksums (PNG CRCs) without decoding
        # verify() leaves the image unusable, so reopen and decode every pixel: truncated
        # or corrupt data fails here.
        with Image.open(path, formats=_OPENERS) as image:
            if image.size != (width, height) or image.format != fmt:
                raise UnsupportedImage()
            image.load()
    except (UnsupportedImage, ImageTooLarge):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # open() raises the error past twice Pillow's limit, and the warning past the limit
        # when warnings are errors; either way only the header was read.
        raise ImageTooLarge(f"too many pixels ({exc})") from None
    except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, ...) on bad input
        raise UnsupportedImage() from exc
    return ImageInfo(CONTENT_TYPES[fmt], width, height, fmt)
