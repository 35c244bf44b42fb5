"""Image makers and the upload call shared by the photo, profile and local-storage tests."""

from __future__ import annotations

import io
import os
import struct
import zlib
from typing import Any

import aiohttp
from PIL import ExifTags, Image

from tests.support.accounts import auth

UPLOAD = "/api/users/upload-photo"


def png_bytes(size: tuple[int, int] = (40, 30), color: tuple[int, int, int] = (10, 120, 200), mode: str = "RGB") -> bytes:
    """A small PNG."""
    buf = io.BytesIO()
    Image.new(mode, size, color if mode != "L" else 128).save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes(size: tuple[int, int] = (64, 48), **save: Any) -> bytes:
    """A small JPEG (extra keyword arguments go to Image.save, e.g. exif=...)."""
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, "JPEG", **save)
    return buf.getvalue()


def webp_bytes(size: tuple[int, int] = (32, 32)) -> bytes:
    """A small WebP."""
    buf = io.BytesIO()
    Image.new("RGB", size, (0, 200, 0)).save(buf, "WEBP")
    return buf.getvalue()


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_bomb(side: int = 20000) -> bytes:
    """A valid 1-bit PNG of side x side pixels, written chunk by chunk: all-zero rows compress to ~50 KB."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    rows_per_block = 200
    parts = [comp.compress(row * rows_per_block) for _ in range(side // rows_per_block)]
    parts.append(comp.compress(row * (side % rows_per_block)))
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def noise_png(min_bytes: int) -> bytes:
    """A PNG of random pixels (incompressible) of at least `min_bytes`."""
    side = int((min_bytes / 3) ** 0.5) + 16
    img = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=1)
    data = buf.getvalue()
    assert len(data) >= min_bytes
    return data


def gps_jpeg() -> bytes:
    """A JPEG whose EXIF carries a camera make and a GPS position, plus a comment."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (12.0, 58.0, 17.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (77.0, 35.0, 40.0),
    }
    data = jpeg_bytes(exif=exif, comment=b"home address here")
    check = Image.open(io.BytesIO(data))
    assert check.getexif().get_ifd(ExifTags.IFD.GPSInfo), "the test image must really carry GPS data"
    return data


def form(data: bytes, filename: str = "photo.jpg", content_type: str = "image/jpeg", field: str = "file") -> aiohttp.FormData:
    """A multipart body with one file field."""
    body = aiohttp.FormData()
    body.add_field(field, data, filename=filename, content_type=content_type)
    return body


async def upload(client: Any, token: str, data: bytes, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """Upload one file; returns (status, JSON body)."""
    resp = await client.post(UPLOAD, data=form(data, **kwargs), headers=auth(token))
    return resp.status, await resp.json()
