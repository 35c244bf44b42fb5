"""The OpenAPI 3.1 document, generated from the route table: the voluptuous schemas the routes
validate with, and the answers each route declares (`Route.responses`, `Route.errors`).

Every status a route can answer is listed: its own answers and handler errors, plus the ones its
edge declarations imply (a login answers 401, a body 400/413/415/422, a limit 429, Redis or
MongoDB down 503, anything unexpected 500). There is no `default` response, so an answer the
document lacks is a test failure (tests/support/conformance.py), not a silent pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import voluptuous as vol
import voluptuous_openapi
from aiohttp import web

from truebond.api.routing import Route
from truebond.api.shapes import ERROR, ERROR_MEANING, header

OPENAPI_KEY: web.AppKey[dict[str, Any]] = web.AppKey("openapi", dict)

_SECURITY: dict[str, list[dict[str, list[str]]]] = {"user": [{"bearer": []}], "admin": [{"bearer": []}], "super": [{"bearer": []}]}
_AUTH_NOTE = {
    "public": "No login.",
    "user": "A user's bearer token.",
    "admin": "An admin's bearer token (role admin or super_admin, matching the token).",
    "super": "A super_admin's bearer token.",
    "webhook": "No login: the Stripe-Signature header over the raw body.",
}
# Formats JSON Schema defines; the converter also writes its own ("strip", "lower"), dropped here.
_STANDARD_FORMATS = {"date-time", "date", "time", "duration", "email", "uri", "uuid", "ipv4", "ipv6", "binary", "byte", "regex"}
_WRITES = ("POST", "PUT", "PATCH", "DELETE")
# Read by the request_context middleware on every route.
_REQUEST_ID = header("X-Request-ID", "Correlation id: kept (and logged) when it is 8-64 letters, digits or dashes, else replaced")


_FORMAT_NOTES = {
    "strip": "Surrounding whitespace is removed first; the bounds apply to what remains.",
    "lower": "Read case-insensitively.",
}


def _standard(node: Any) -> Any:
    """A converted schema with only standard keywords: the converter's own formats ("strip",
    "lower") become a description of what the server does."""
    if isinstance(node, dict):
        out = {key: _standard(value) for key, value in node.items()}
        fmt = out.get("format")
        if isinstance(fmt, str) and fmt not in _STANDARD_FORMATS:
            del out["format"]
            if fmt in _FORMAT_NOTES:
                out["description"] = _FORMAT_NOTES[fmt]
        return out
    if isinstance(node, list):
        return [_standard(value) for value in node]
    return node


def _schema(schema: Any) -> dict[str, Any]:
    # The document says 3.1, so nullable fields are written the 3.1 way (anyOf with null).
    converted: dict[str, Any] = _standard(
        voluptuous_openapi.convert(schema, custom_serializer=_declared, openapi_version=voluptuous_openapi.OpenApiVersion.V3_1)
    )
    if converted.get("type") == "object" and "properties" in converted and _rejects_extra(schema):
        converted["additionalProperties"] = False
    rules = _cross_field_rules(schema)
    if rules:
        converted["description"] = " ".join(rules)
    return converted


def socket_schema(schema: Any) -> dict[str, Any]:
    """The JSON Schema of a socket route's payload, written as the document writes bodies."""
    return _schema(schema)


def _declared(validator: Any) -> Any:
    """The JSON Schema a custom validator function declares of itself (its `openapi` attribute)."""
    return getattr(validator, "openapi", voluptuous_openapi.UNSUPPORTED) if callable(validator) else voluptuous_openapi.UNSUPPORTED


def _rejects_extra(schema: Any) -> bool:
    """Whether the top-level mapping of a voluptuous schema refuses unknown keys."""
    extra = vol.PREVENT_EXTRA
    while True:
        if isinstance(schema, vol.Schema):
            extra = schema.extra
            schema = schema.schema
        elif isinstance(schema, vol.All) and schema.validators:
            schema = schema.validators[0]
        else:
            return isinstance(schema, dict) and extra == vol.PREVENT_EXTRA


def _cross_field_rules(schema: Any) -> list[str]:
    """The docstrings of the whole-body steps after the mapping (e.g. min_age <= max_age)."""
    while isinstance(schema, vol.Schema):
        schema = schema.schema
    if not isinstance(schema, vol.All):
        return []
    rules = []
    for step in schema.validators[1:]:
        doc = (getattr(step, "__doc__", None) or "").strip().splitlines()
        if callable(step) and not isinstance(step, vol.Schema) and doc:
            rules.append(doc[0].removeprefix("Schema step: ").rstrip(".") + ".")
    return rules


def _accepts_empty(schema: vol.Schema) -> bool:
    """Whether an empty body passes (it reads as {}): then the body is optional."""
    try:
        schema({})
    except vol.Invalid:
        return False
    return True


def multipart(fields: Any, files: Sequence[str]) -> dict[str, Any]:
    """The `multipart/form-data` body of an upload: text `fields` (a voluptuous schema) and exactly
    one of the binary `files` parts."""
    schema: dict[str, Any] = _schema(fields) if fields is not None else {"type": "object", "properties": {}, "additionalProperties": False}
    schema["properties"] = {**schema["properties"], **{name: {"type": "string", "format": "binary"} for name in files}}
    if len(files) == 1:
        schema["required"] = [*schema.get("required", []), files[0]]
    else:
        schema["oneOf"] = [{"required": [name]} for name in files]
    return {"multipart/form-data": schema}


def edge_statuses(route: Route) -> set[int]:
    """The error statuses a route's declarations imply, before its handler runs.

    Every route may answer 503: a MongoDB or Redis error that reaches the edge becomes one
    (`error_map.as_dependency_down`), wherever the handler met it.
    """
    statuses = {500, 503}
    limited = route.auth in ("user", "admin", "super") or bool(route.limits) or (route.auth == "public" and route.default_limit)
    if limited:
        statuses.add(429)
    if route.auth in ("user", "admin", "super"):
        statuses.add(401)
    if route.auth in ("admin", "super"):
        statuses.add(403)
    if route.query is not None:
        statuses.add(422)
    if route.body is not None or (route.method in _WRITES and not route.raw_body):
        statuses |= {400, 413, 415, 422}
    if route.raw_body:
        statuses.add(413)
    return statuses


def _answer(status: int, schema: Any) -> dict[str, Any]:
    if schema is None:
        return {"description": "No body"}
    if "$content" in schema:
        return {"description": "OK", "content": schema["$content"]}
    return {"description": "Created" if status == 201 else "OK", "content": {"application/json": {"schema": schema}}}


def operation(route: Route) -> dict[str, Any]:
    """The OpenAPI operation object of one route."""
    op: dict[str, Any] = {
        "summary": route.summary,
        "description": _AUTH_NOTE[route.auth],
        "tags": [route.tag],
        "operationId": f"{route.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', route.path.lower()).strip('_')}",
    }
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    if route.query is not None:
        query = _schema(route.query)
        for name, prop in query.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": name in query.get("required", []), "schema": prop})
    params.extend(dict(p) for p in route.params)
    params.append(dict(_REQUEST_ID))
    op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {"required": not _accepts_empty(route.body), "content": {"application/json": {"schema": _schema(route.body)}}}
    elif route.content is not None:
        op["requestBody"] = {"required": True, "content": {kind: {"schema": schema} for kind, schema in route.content.items()}}
    if route.auth in _SECURITY:
        op["security"] = _SECURITY[route.auth]
    op["x-auth"] = route.auth
    responses = {str(status): _answer(status, schema) for status, schema in sorted(route.responses.items())}
    for status in sorted(edge_statuses(route) | set(route.errors)):
        responses.setdefault(str(status), {"$ref": f"#/components/responses/E{status}"})
    op["responses"] = responses
    return op


def _error_response(status: int) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": ERROR_MEANING[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if status == 429:
        answer["headers"] = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer", "minimum": 1}}}
    return answer


def build(routes: Iterable[Route]) -> dict[str, Any]:
    """An OpenAPI 3.1 document listing every route."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "TrueBond API", "version": "1.0.0"},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {"Error": ERROR},
            "responses": {f"E{status}": _error_response(status) for status in ERROR_MEANING},
        },
    }
