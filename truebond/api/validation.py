"""Validation at the edge with voluptuous: unknown keys rejected, bounds on everything."""

from __future__ import annotations

import json
from typing import Any

import voluptuous as vol
from aiohttp import web

from truebond.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, ValidationFailed

JSON_LIMIT = 64 * 1024


def strict(fields: dict[Any, Any]) -> vol.Schema:
    """A body schema that rejects unknown keys."""
    return vol.Schema(fields, extra=vol.PREVENT_EXTRA)


def text(min_len: int = 0, max_len: int = 255) -> Any:
    """A string with bounded length, surrounding whitespace removed."""
    return vol.All(str, vol.Strip, vol.Length(min=min_len, max=max_len))


def integer(low: int, high: int) -> Any:
    """An integer in [low, high] (booleans are not integers here)."""
    return vol.All(int, _not_bool, vol.Range(min=low, max=high))


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise vol.Invalid("expected an integer")
    return value


def query_int(low: int, high: int) -> Any:
    """An integer read from a query string, bounded."""
    return vol.All(vol.Coerce(int), vol.Range(min=low, max=high))


# No whitespace and no control characters in an email. Spelled out because `\s` alone differs
# between Python (which counts \x1c-\x1f and \x85 as space) and the ECMA-262 regex dialect the
# OpenAPI document's readers use (which counts \ufeff): with the controls and \ufeff listed, both
# read this pattern the same way.
_EMAIL_CHAR = r"[^@\s\x00-\x1f\x7f-\x9f\ufeff]"
EMAIL = vol.All(
    str, vol.Strip, vol.Length(min=3, max=254), vol.Match(rf"^{_EMAIL_CHAR}+@{_EMAIL_CHAR}+\.{_EMAIL_CHAR}+$", msg="invalid email")
)


def check(schema: vol.Schema, data: Any) -> Any:
    """Validate `data`; failures become a 422 with [{loc, msg}] (never the rejected value)."""
    try:
        return schema(data)
    except vol.MultipleInvalid as exc:
        errors = [{"loc": ["body", *[str(p) for p in err.path]], "msg": _message(err)} for err in exc.errors]
        raise ValidationFailed(errors) from None
    except vol.Invalid as exc:
        raise ValidationFailed([{"loc": ["body", *[str(p) for p in exc.path]], "msg": _message(exc)}]) from None


def _message(err: vol.Invalid) -> str:
    msg = err.error_message or err.msg
    if msg == "extra keys not allowed":
        return "unknown field"
    return str(msg)[:200]


async def read_json(request: web.Request, limit: int = JSON_LIMIT) -> Any:
    """The parsed JSON body (an empty body reads as {}), capped at `limit` bytes."""
    raw = await read_capped(request, limit)
    if not raw.strip():
        return {}
    # Only application/json: a browser may send text/plain (or no type) cross-origin without a
    # preflight, so accepting it would let any page post to login, signup or the OTP routes.
    if request.content_type != "application/json":
        raise UnsupportedMediaType("Expected application/json")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
        # JSON may spell lone surrogates as \ud800 escapes; no store or log can encode them.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError, RecursionError):
        raise BadRequest("Malformed JSON body") from None
    return data


async def read_capped(request: web.Request, limit: int) -> bytes:
    """The raw body, refusing more than `limit` bytes even without a Content-Length."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)
