"""The multipart body of `POST /api/messages/upload`: one image (field `image`, or `file`) and short text fields."""

from __future__ import annotations

from typing import Any

from aiohttp import BodyPartReader, web

from truebond.adapters import images
from truebond.api.validation import check
from truebond.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, ValidationFailed

FILE_FIELDS = ("image", "file")
# The envelope around a 5 MiB image: boundaries, part headers and the short text fields.
MULTIPART_OVERHEAD = 64 * 1024
UPLOAD_BODY_LIMIT = images.MAX_BYTES + MULTIPART_OVERHEAD
FIELD_LIMIT = 8 * 1024
CHUNK = 64 * 1024


async def _read_part(part: BodyPartReader, limit: int, too_large: str) -> bytes:
    buffer = bytearray()
    while chunk := await part.read_chunk(CHUNK):
        if len(buffer) + len(chunk) > limit:
            raise PayloadTooLarge(too_large)
        buffer += chunk
    return bytes(buffer)


async def read_message_upload(request: web.Request, schema: Any) -> tuple[bytes, dict[str, Any]]:
    """The image bytes (≤ 5 MiB, else 413) and the validated text fields (unknown ones → 422)."""
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType("Expected multipart/form-data with an image field")
    if request.content_length is not None and request.content_length > UPLOAD_BODY_LIMIT:
        raise PayloadTooLarge("The image is larger than 5 MiB")
    data: bytes | None = None
    fields: dict[str, Any] = {}
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            name = str(getattr(part, "name", "") or "part")
            if not isinstance(part, BodyPartReader) or name in fields or (name in FILE_FIELDS and data is not None):
                raise ValidationFailed([{"loc": ["body", name], "msg": "unexpected or repeated field"}])
            if name in FILE_FIELDS:
                data = await _read_part(part, images.MAX_BYTES, "The image is larger than 5 MiB")
            else:
                raw = await _read_part(part, FIELD_LIMIT, "A form field is too large")
                fields[name] = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("Form fields must be UTF-8") from None
    except (ValueError, RuntimeError, AssertionError):
        raise BadRequest("Malformed multipart body") from None
    body = check(schema, fields)
    if not data:
        raise ValidationFailed([{"loc": ["body", "image"], "msg": "required"}])
    return data, body
