"""JSON Schema pieces for the answers routes declare (`Route.responses`), and the error envelope.

The OpenAPI document carries these as they are, and the test run validates every answer against
them, so a route's documented shape and its real one cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "format": "date-time"}
DATE: Schema = {"type": "string", "format": "date"}
FREE: Schema = {"type": "object"}
NULL: Schema = {"type": "null"}


def header(name: str, description: str, schema: Schema = STR, *, required: bool = False) -> Schema:
    """An OpenAPI header parameter a route reads."""
    return {"name": name, "in": "header", "required": required, "description": description, "schema": schema}


def nullable(schema: Schema) -> Schema:
    """`schema` or null (the OpenAPI 3.1 way)."""
    return {"anyOf": [schema, NULL]}


def arr(items: Schema) -> Schema:
    """An array of `items`."""
    return {"type": "array", "items": items}


def const(value: Any) -> Schema:
    """Exactly `value`."""
    return {"const": value}


def enum(*values: Any) -> Schema:
    """One of `values`."""
    return {"enum": list(values)}


def counts(*keys: str) -> Schema:
    """An object of integer counts under exactly `keys` (any of them may be absent)."""
    return obj({key: INT for key in keys}, optional=keys)


def obj(props: dict[str, Schema], optional: Iterable[str] = (), *, closed: bool = True) -> Schema:
    """An object with `props`, all required but `optional`; `closed` refuses other keys."""
    skip = set(optional)
    schema: Schema = {"type": "object", "properties": props, "required": [k for k in props if k not in skip]}
    if closed:
        schema["additionalProperties"] = False
    return schema


def extend(base: Schema, props: dict[str, Schema], optional: Iterable[str] = ()) -> Schema:
    """`base` (an `obj`) with more properties."""
    skip = set(optional)
    return {
        **base,
        "properties": {**base["properties"], **props},
        "required": [*base["required"], *(k for k in props if k not in skip)],
    }


def map_of(values: Schema) -> Schema:
    """An object whose keys are data (dates, package ids) and whose values are `values`."""
    return {"type": "object", "additionalProperties": values}


def binary(*types: str) -> Schema:
    """A binary answer of one of `types` (not JSON)."""
    return {"$content": {kind: {"schema": {"type": "string", "format": "binary"}} for kind in types}}


MESSAGE = obj({"message": STR})
SUCCESS = obj({"success": const(True), "message": STR})

LOC = arr({"anyOf": [STR, INT]})
ERROR: Schema = {
    "type": "object",
    "description": "The one error envelope. A 422 lists the failing fields in `errors` (never the rejected values); a 409 "
    "`confirmation_required` carries `confirm_token`, `expires_in`, `action` and `target_id`.",
    "properties": {
        "detail": STR,
        "code": STR,
        "request_id": STR,
        "errors": arr(obj({"loc": LOC, "msg": STR})),
    },
    "required": ["detail", "code", "request_id"],
}

# What each error status means wherever it is declared.
ERROR_MEANING = {
    400: "Malformed request (JSON, multipart, signature or token)",
    401: "Missing, invalid or expired token, revoked session or unavailable account",
    402: "Not enough coins",
    403: "Not allowed for this caller",
    404: "Not found (or not visible to this caller)",
    409: "Conflicts with the current state",
    413: "Body too large",
    415: "Unsupported media type",
    422: "Validation failed; `errors` lists [{loc, msg}]",
    429: "Rate limited; retry after `Retry-After` seconds",
    500: "Unexpected failure (the body never says why; the log has the traceback)",
    503: "A dependency (MongoDB, Redis, mail, storage, Stripe) is unavailable; try again",
}
