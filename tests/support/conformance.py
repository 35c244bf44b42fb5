"""Every answer an app gives in the test run is checked against its own OpenAPI document.

`attach(app, failures)` adds an `on_response_prepare` hook to an application before it serves:
each answer of a documented operation must have a status the operation declares and a JSON body
that validates against the schema declared for that status. A mismatch is appended to
`failures`; the `aiohttp_client` fixture of tests/conftest.py fails the test that caused it.
With TRUEBOND_RECORD_RESPONSES=<file>, answers are also appended to that file as JSON lines
(method, path, status, body), to see what the routes really say, and not checked.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jsonschema
from aiohttp import web
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012 as DRAFT2020_12

from truebond.api.openapi import OPENAPI_KEY

CHECKED: web.AppKey[list[str]] = web.AppKey("conformance_failures", list)


def operation_of(doc: dict[str, Any], request: web.Request) -> dict[str, Any] | None:
    """The documented operation a request was routed to, if any."""
    resource = request.match_info.route.resource
    if resource is None:
        return None
    item = doc["paths"].get(resource.canonical)
    if item is None:
        return None
    op: dict[str, Any] | None = item.get(request.method.lower())
    return op


def mismatch(doc: dict[str, Any], op: dict[str, Any], status: int, content_type: str, body: bytes | None) -> str | None:
    """Why an answer does not match its operation's document (None when it does)."""
    declared = op["responses"].get(str(status))
    if declared is None:
        return f"status {status} is not declared (declared: {sorted(op['responses'])})"
    if "$ref" in declared:
        declared = doc["components"]["responses"][declared["$ref"].rsplit("/", 1)[-1]]
    content = declared.get("content")
    if not content:
        return None if not body else f"status {status} declares no body but one was sent"
    media = content.get(content_type)
    if media is None:
        return f"status {status} answered {content_type!r}, declared {sorted(content)}"
    if content_type != "application/json" or "schema" not in media:
        return None
    try:
        data = json.loads(body or b"")
    except ValueError:
        return f"status {status} body is not JSON"
    validator = jsonschema.Draft202012Validator(_resolvable(media["schema"]), registry=_registry(doc))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        return f"status {status} body: {first.message[:300]} at {list(first.absolute_path)}"
    return None


def _registry(doc: dict[str, Any]) -> Registry[Any]:
    """The document as a resource, so a response schema's `#/components/...` references resolve."""
    resource: Resource[Any] = Resource.from_contents(doc, default_specification=DRAFT2020_12)
    return Registry().with_resource("urn:truebond:openapi", resource)


def _resolvable(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with its in-document references made absolute (#/components/... -> urn)."""
    text = json.dumps(schema).replace('"#/components/', '"urn:truebond:openapi#/components/')
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def attach(app: web.Application, failures: list[str]) -> None:
    """Check (and optionally record) every answer `app` gives against its OpenAPI document."""
    if OPENAPI_KEY not in app or app.frozen:
        return
    record = os.environ.get("TRUEBOND_RECORD_RESPONSES")

    async def check(request: web.Request, response: web.StreamResponse) -> None:
        doc = app[OPENAPI_KEY]
        op = operation_of(doc, request)
        if op is None:
            return
        body = response.body if isinstance(response, web.Response) and isinstance(response.body, bytes) else None
        content_type = response.content_type
        if record:
            with open(record, "a", encoding="utf-8") as out:
                sample = None
                if body is not None and content_type == "application/json":
                    sample = json.loads(body)
                line = {"method": request.method, "path": request.match_info.route.resource.canonical, "status": response.status}  # type: ignore[union-attr]
                out.write(json.dumps({**line, "type": content_type, "body": sample}) + "\n")
            return
        problem = mismatch(doc, op, response.status, content_type, body)
        if problem:
            failures.append(f"{request.method} {request.match_info.route.resource.canonical}: {problem}")  # type: ignore[union-attr]

    app.on_response_prepare.append(check)
