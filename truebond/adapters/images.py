"""Photo checks with Pillow: type by content, size and dimension caps, bomb guard, clean re-encode.

Policy (DESIGN.md "images"): JPEG, PNG or WebP decided from the bytes (never the file name or a
header), at most 5 MiB, at most 4096x4096 pixels, re-encoded in the detected format without any
metadata (EXIF incl. GPS, XMP, ICC profiles, comments, text chunks). Rejections:
- `NotAnImage` (415): not one of the three formats, or undecodable;
- `ImageTooLarge` (413): over 5 MiB, or over 4096 pixels on a side (a decompression bomb is just
  an image whose header claims too many pixels: it is refused from the header, before any pixel
  data is decoded).
"""

from __future__ import annotations

import asyncio
import io
import weakref

import attrs
from PIL import Image, ImageOps, UnidentifiedImageError

from truebond.errors import DomainError

MAX_BYTES = 5 * 1024 * 1024
MAX_SIDE = 4096
MAX_PIXELS = MAX_SIDE * MAX_SIDE
MAX_CONCURRENT = 2

# Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that; nothing over 4096x4096 is ever
# accepted, so this only makes Pillow's own guard as strict as ours (the header check runs first).
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}


class ImageRejected(DomainError):
    """The upload is not an acceptable photo; `reason` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotAnImage(ImageRejected):
    """Not a JPEG, PNG or WebP by content, or not decodable (answer 415)."""


class ImageTooLarge(ImageRejected):
    """Over 5 MiB, or over 4096 pixels wide or high, or a decompression bomb (answer 413)."""


@attrs.frozen
class CleanImage:
    """A re-encoded photo without metadata, in the format its content was detected as."""

    data: bytes = attrs.field(repr=False)
    format: str
    content_type: str
    extension: str
    width: int
    height: int


def sniff(data: bytes) -> str | None:
    """The format the leading bytes show (JPEG, PNG or WEBP), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def clean(data: bytes) -> CleanImage:
    """Check and re-encode one photo (blocking: CPU-bound; use `clean_async` from a coroutine)."""
    if len(data) > MAX_BYTES:
        raise ImageTooLarge("The photo is larger than 5 MiB")
    fmt = sniff(data)
    if fmt is None:
        raise NotAnImage("Only JPEG, PNG or WebP photos are accepted")
    try:
        # `formats` pins the one decoder the bytes announced; open() reads only the header.
        img = Image.open(io.BytesIO(data), formats=[fmt])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge("The photo is larger than 4096x4096 pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, TypeError):
        raise NotAnImage("The photo could not be read as JPEG, PNG or WebP") from None
    with img:
        width, height = img.size
        if width > MAX_SIDE or height > MAX_SIDE:
            raise ImageTooLarge("The photo is larger than 4096x4096 pixels")
        if width < 1 or height < 1 or img.format != fmt:
            raise NotAnImage("The photo could not be read as JPEG, PNG or WebP")
        try:
            img.seek(0)  # an animation keeps its first frame only
            img.load()
            return _reencode(img, fmt)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageTooLarge("The photo is larger than 4096x4096 pixels") from None
        except (OSError, SyntaxError, ValueError, EOFError, TypeError, IndexError, KeyError, MemoryError):
            raise NotAnImage("The photo could not be read as JPEG, PNG or WebP") from None


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation to the pixels, since the EXIF block itself is dropped."""
    try:
        return ImageOps.exif_transpose(img) or img
    except Exception:  # noqa: BLE001 - a malformed EXIF block only loses its rotation
        return img


def _reencode(img: Image.Image, fmt: str) -> CleanImage:
    alpha = _has_alpha(img)
    pixels = _upright(img)
    if fmt == "JPEG":
        target = "L" if pixels.mode == "L" else "RGB"
    else:
        target = "RGBA" if alpha else "RGB"
    if pixels.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        pixels = pixels.convert("L")
    out_img = pixels.convert(target) if pixels.mode != target else pixels.copy()
    out_img.info = {}  # no EXIF, XMP, ICC, comments, text chunks or dpi ever reach the encoder
    buffer = io.BytesIO()
    if fmt == "JPEG":
        out_img.save(buffer, format="JPEG", quality=88, optimize=True)
    elif fmt == "PNG":
        out_img.save(buffer, format="PNG", optimize=False, compress_level=6)
    else:
        out_img.save(buffer, format="WEBP", quality=85, method=4)
    content_type, extension = FORMATS[fmt]
    return CleanImage(buffer.getvalue(), fmt, content_type, extension, out_img.width, out_img.height)


_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


async def clean_async(data: bytes) -> CleanImage:
    """`clean` in a worker thread, at most MAX_CONCURRENT at once per process (bounds memory)."""
    loop = asyncio.get_running_loop()
    gate = _GATES.get(loop)
    if gate is None:
        gate = _GATES[loop] = asyncio.Semaphore(MAX_CONCURRENT)
    async with gate:
        return await asyncio.to_thread(clean, data)
