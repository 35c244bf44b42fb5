"""The OpenAPI document is complete: bodies, parameters, headers, every status with its schema,
standard keywords only; and the answer check of the test run catches a route that lies."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.support import conformance
from tests.support.accounts import auth, signup
from truebond import bootstrap
from truebond.api import openapi
from truebond.api.app import all_routes, create_app
from truebond.api.routing import Req, Route, json_response
from truebond.api.shapes import INT, obj

STANDARD_FORMATS = {"date-time", "date", "binary", "email", "uri"}


def _doc() -> dict[str, Any]:
    return openapi.build(all_routes())


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_every_operation_declares_a_success_schema_and_no_default() -> None:
    doc = _doc()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert "default" not in op["responses"], (method, path)
            success = [s for s in op["responses"] if s.startswith("2")]
            assert success, (method, path)
            for status in success:
                assert op["responses"][status]["content"], (method, path, status)
            assert "500" in op["responses"], (method, path)


def test_only_standard_formats_and_keywords() -> None:
    doc = _doc()
    formats = {node["format"] for node in _walk(doc) if isinstance(node.get("format"), str)}
    assert formats <= STANDARD_FORMATS, formats
    # What the dropped "strip" format meant is said in words.
    name = doc["paths"]["/api/auth/signup"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]["name"]
    assert "whitespace is removed" in name["description"]
    assert "nullable" not in json.dumps(doc)


def test_signup_answers_201_and_every_error_it_can_give() -> None:
    op = _doc()["paths"]["/api/auth/signup"]["post"]
    assert set(op["responses"]) == {"201", "400", "403", "409", "413", "415", "422", "429", "500", "503"}
    body = op["responses"]["201"]["content"]["application/json"]["schema"]
    assert {"access_token", "refresh_token", "user"} <= set(body["required"])
    assert "Retry-After" in _doc()["components"]["responses"]["E429"]["headers"]


def test_request_body_is_required_only_where_an_empty_body_is_refused() -> None:
    paths = _doc()["paths"]
    assert paths["/api/auth/signup"]["post"]["requestBody"]["required"] is True
    assert paths["/api/auth/refresh"]["post"]["requestBody"]["required"] is False
    assert paths["/api/settings"]["post"]["requestBody"]["required"] is False
    assert paths["/api/users/fcm-token"]["delete"]["requestBody"]["required"] is False
    # A route that takes no body documents none (and refuses one: 422).
    assert "requestBody" not in paths["/api/auth/logout"]["post"]
    assert "422" in paths["/api/auth/logout"]["post"]["responses"]


def test_uploads_are_multipart_and_the_webhook_is_a_signed_raw_body() -> None:
    paths = _doc()["paths"]
    photo = paths["/api/users/upload-photo"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert photo["properties"]["file"] == {"type": "string", "format": "binary"} and photo["required"] == ["file"]
    image = paths["/api/messages/upload"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert image["oneOf"] == [{"required": ["image"]}, {"required": ["file"]}]
    assert "receiver_id" in image["required"] and image["additionalProperties"] is False
    hook = paths["/api/webhooks/stripe"]["post"]
    assert {"name": "Stripe-Signature", "in": "header", "required": True}.items() <= hook["parameters"][0].items()
    assert "application/json" in hook["requestBody"]["content"]
    confirm = paths["/api/admin/users/{user_id}/suspend"]["post"]["parameters"]
    assert any(p["name"] == "X-Confirm-Token" and p["in"] == "header" for p in confirm)
    assert any(p["in"] == "cookie" for p in paths["/api/auth/refresh"]["post"]["parameters"])


def test_cross_field_rules_are_described() -> None:
    paths = _doc()["paths"]
    for path, method in (("/api/auth/signup", "post"), ("/api/users/preferences", "put")):
        schema = paths[path][method]["requestBody"]["content"]["application/json"]["schema"]
        assert "min_age" in schema["description"] and "max_age" in schema["description"], path


async def _lying(req: Req) -> web.StreamResponse:
    return json_response({"count": "three"}, status=200 if req.request.query.get("as") != "created" else 201)


async def test_the_answer_check_catches_an_undeclared_status_and_a_wrong_shape(runtime: bootstrap.Runtime) -> None:
    route = Route("GET", "/api/test/lying", _lying, responses={200: obj({"count": INT})})
    app = create_app(runtime.unit, runtime.bus, routes=[*all_routes(), route])
    failures: list[str] = []
    conformance.attach(app, failures)
    async with TestClient(TestServer(app)) as client:
        await client.get("/api/test/lying")
        await client.get("/api/test/lying?as=created")
        person = await signup(client)
        await client.get("/api/auth/me", headers=auth(person["access_token"]))
        await client.get("/api/auth/me")
    assert len(failures) == 2, failures
    assert "'three' is not of type 'integer'" in failures[0]
    assert "status 201 is not declared" in failures[1]
