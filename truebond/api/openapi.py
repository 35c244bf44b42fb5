"""The OpenAPI 3 document, generated from the same voluptuous schemas the routes validate with."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import voluptuous as vol
import voluptuous_openapi
from aiohttp import web

from truebond.api.routing import Route

OPENAPI_KEY: web.AppKey[dict[str, Any]] = web.AppKey("openapi", dict)

_SECURITY: dict[str, list[dict[str, list[str]]]] = {"user": [{"bearer": []}], "admin": [{"bearer": []}], "super": [{"bearer": []}]}


def _schema(schema: Any) -> dict[str, Any]:
    try:
        # The document says 3.1, so nullable fields are written the 3.1 way (anyOf with null).
        converted: dict[str, Any] = voluptuous_openapi.convert(schema, openapi_version=voluptuous_openapi.OpenApiVersion.V3_1)
    except Exception:  # noqa: BLE001 - a validator the converter cannot describe
        return {"type": "object"}
    if converted.get("type") == "object" and "properties" in converted and _rejects_extra(schema):
        converted["additionalProperties"] = False
    return converted


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


def build(routes: Iterable[Route]) -> dict[str, Any]:
    """An OpenAPI 3.1 document listing every route."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        op: dict[str, Any] = {
            "summary": route.summary,
            "tags": [route.tag],
            "operationId": f"{route.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', route.path.lower()).strip('_')}",
            "responses": {"200": {"description": "OK"}, "default": {"$ref": "#/components/responses/Error"}},
        }
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in re.findall(r"{(\w+)}", route.path)
        ]
        if route.query is not None:
            query = _schema(route.query)
            for name, prop in query.get("properties", {}).items():
                params.append({"name": name, "in": "query", "required": name in query.get("required", []), "schema": prop})
        if params:
            op["parameters"] = params
        if route.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _schema(route.body)}}}
        if route.auth in _SECURITY:
            op["security"] = _SECURITY[route.auth]
        op["x-auth"] = route.auth
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "TrueBond API", "version": "1.0.0"},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "responses": {
                "Error": {
                    "description": "Error envelope",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "detail": {"type": "string"},
                                    "code": {"type": "string"},
                                    "request_id": {"type": "string"},
                                    "errors": {"type": "array"},
                                },
                                "required": ["detail", "code", "request_id"],
                            }
                        }
                    },
                }
            },
        },
    }
