"""Validation at the edge: body size, malformed JSON, unknown fields, mass assignment, bounds."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.accounts import auth, signup, signup_body
from truebond import bootstrap

LIMIT = 64 * 1024
CANARY = "CANARY-VALUE-7f3a9"


def assert_422(body: dict[str, Any], *field: str) -> None:
    """A 422 envelope whose errors name `field` (loc) and carry a message, never a value."""
    assert body["code"] == "validation_error", body
    assert body["detail"] and body["request_id"]
    assert isinstance(body["errors"], list) and body["errors"]
    for err in body["errors"]:
        assert set(err) == {"loc", "msg"}, err
        assert err["loc"][0] == "body"
        assert isinstance(err["msg"], str) and err["msg"]
    if field:
        assert [*field] in [err["loc"][1:] for err in body["errors"]], body["errors"]


async def post_signup(client: Any, **overrides: Any) -> tuple[int, dict[str, Any]]:
    resp = await client.post("/api/auth/signup", json=signup_body(**overrides))
    body: dict[str, Any] = await resp.json()
    return resp.status, body


async def users_count(runtime: bootstrap.Runtime) -> int:
    count: int = await runtime.unit.db["users"].count_documents({})
    return count


# --------------------------------------------------------------------------- size and shape


async def test_body_over_64_kib_is_413(client: Any, runtime: bootstrap.Runtime) -> None:
    payload = json.dumps(signup_body(bio="x" * LIMIT))
    assert len(payload) > LIMIT
    resp = await client.post("/api/auth/signup", data=payload, headers={"Content-Type": "application/json"})
    body = await resp.json()
    assert resp.status == 413, body
    assert body["code"] == "payload_too_large"
    assert body["request_id"]
    assert await users_count(runtime) == 0


async def test_body_over_64_kib_without_content_length_is_413(client: Any) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "'
        for _ in range(20):
            yield b"a" * 4096
        yield b'@example.com", "password": "x"}'

    resp = await client.post("/api/auth/login", data=chunks(), headers={"Content-Type": "application/json"})
    body = await resp.json()
    assert resp.status == 413, body
    assert body["code"] == "payload_too_large"


async def test_body_of_exactly_64_kib_is_read(client: Any) -> None:
    raw = json.dumps(signup_body())
    padded = raw[:-1] + " " * (LIMIT - len(raw)) + "}"
    assert len(padded.encode()) == LIMIT
    resp = await client.post("/api/auth/signup", data=padded, headers={"Content-Type": "application/json"})
    assert resp.status == 201, await resp.json()


@pytest.mark.parametrize(
    "raw",
    [
        b'{"email": "a@example.com", "password": ',
        b"not json",
        b"{'email': 'single-quotes@example.com'}",
        b'{"email": "AB\xed\xb2\x80C@example.com", "password": "x"}',
        b"\xff\xfe{}",
        b"[" * 30_000 + b"]" * 30_000,
    ],
    ids=["truncated", "not-json", "single-quotes", "invalid-utf8", "bad-bytes", "deeply-nested"],
)
async def test_malformed_json_is_400(client: Any, raw: bytes) -> None:
    resp = await client.post("/api/auth/login", data=raw, headers={"Content-Type": "application/json"})
    body = await resp.json()
    assert resp.status == 400, body
    assert body["code"] == "bad_request"
    assert set(body) == {"detail", "code", "request_id"}


async def test_escaped_lone_surrogate_is_400_not_a_crash(client: Any, runtime: bootstrap.Runtime) -> None:
    raw = json.dumps(signup_body(name="Kiran")).replace("Kiran", "Ki\\ud800ran")
    assert "\\ud800" in raw
    resp = await client.post("/api/auth/signup", data=raw, headers={"Content-Type": "application/json"})
    body = await resp.json()
    assert resp.status == 400, body
    assert body["code"] == "bad_request"
    assert await users_count(runtime) == 0


async def test_utf8_names_are_kept(client: Any) -> None:
    status, body = await post_signup(client, name="Anaïs Ñúñez 李")
    assert status == 201, body
    assert body["user"]["name"] == "Anaïs Ñúñez 李"


async def test_json_that_is_not_an_object_is_422(client: Any) -> None:
    for payload in ([1, 2, 3], "just a string", 42, None):
        resp = await client.post("/api/auth/login", data=json.dumps(payload), headers={"Content-Type": "application/json"})
        assert resp.status == 422, payload
        assert (await resp.json())["code"] == "validation_error"


async def test_form_encoded_body_is_415(client: Any) -> None:
    resp = await client.post("/api/auth/login", data={"email": "a@example.com", "password": "pw"})
    body = await resp.json()
    assert resp.status == 415, body
    assert body["code"] == "unsupported_media_type"


async def test_a_route_without_a_body_refuses_one(client: Any) -> None:
    account = await signup(client)
    resp = await client.post("/api/auth/logout", json={"user_id": "someone-else"}, headers=auth(account["access_token"]))
    body = await resp.json()
    assert resp.status == 422, body
    assert body["code"] == "validation_error"
    # Nothing happened: the session still works.
    assert (await client.get("/api/auth/me", headers=auth(account["access_token"]))).status == 200


# --------------------------------------------------------------------------- unknown fields


async def test_unknown_field_is_422_and_the_value_is_not_echoed(client: Any, runtime: bootstrap.Runtime) -> None:
    status, body = await post_signup(client, favourite_colour=CANARY)
    assert status == 422
    assert_422(body, "favourite_colour")
    assert CANARY not in json.dumps(body)
    assert await users_count(runtime) == 0


@pytest.mark.parametrize(("field", "value"), [("role", "super_admin"), ("coins", 1_000_000), ("is_verified", True)])
async def test_mass_assignment_at_signup_is_422(client: Any, runtime: bootstrap.Runtime, field: str, value: Any) -> None:
    status, body = await post_signup(client, **{field: value})
    assert status == 422, body
    assert_422(body, field)
    assert "super_admin" not in json.dumps(body) and "1000000" not in json.dumps(body)
    assert await users_count(runtime) == 0


async def test_unknown_field_at_login_is_422(client: Any) -> None:
    account = await signup(client)
    resp = await client.post("/api/auth/login", json={"email": account["user"]["email"], "password": "correct-horse-1", "role": "admin"})
    body = await resp.json()
    assert resp.status == 422
    assert_422(body, "role")
    assert "access_token" not in body


async def test_rejected_values_are_never_echoed(client: Any) -> None:
    cases: list[dict[str, Any]] = [
        {"gender": CANARY},
        {"intent": CANARY},
        {"email": CANARY},
        {"mobile_number": CANARY},
        {"age": CANARY},
        {"name": CANARY * 10},
        {"password": CANARY[:5]},
    ]
    for overrides in cases:
        status, body = await post_signup(client, **overrides)
        assert status == 422, (overrides, body)
        assert_422(body, next(iter(overrides)))
        assert "CANARY" not in json.dumps(body), body


# --------------------------------------------------------------------------- bounds


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"age": 17}, "age"),
        ({"age": 101}, "age"),
        ({"age": True}, "age"),
        ({"age": 27.5}, "age"),
        ({"min_age": 17}, "min_age"),
        ({"max_age": 101}, "max_age"),
        ({"max_distance_km": 0}, "max_distance_km"),
        ({"max_distance_km": 501}, "max_distance_km"),
        # True is 1 to Python and inside 1..500: only the boolean guard refuses it.
        ({"max_distance_km": True}, "max_distance_km"),
        ({"min_age": 18, "max_age": 35, "age": 27, "max_distance_km": False}, "max_distance_km"),
        ({"name": "A"}, "name"),
        ({"name": "  A  "}, "name"),
        ({"name": "N" * 51}, "name"),
        ({"password": "short"}, "password"),
        ({"email": "not-an-email"}, "email"),
        ({"gender": "robot"}, "gender"),
        ({"mobile_number": "12"}, "mobile_number"),
    ],
)
async def test_out_of_bounds_signup_fields_are_422(client: Any, runtime: bootstrap.Runtime, overrides: dict[str, Any], field: str) -> None:
    status, body = await post_signup(client, **overrides)
    assert status == 422, body
    assert_422(body, field)
    assert await users_count(runtime) == 0


async def test_min_age_above_max_age_is_422(client: Any, runtime: bootstrap.Runtime) -> None:
    status, body = await post_signup(client, min_age=40, max_age=30)
    assert status == 422, body
    assert_422(body, "min_age")
    assert await users_count(runtime) == 0


async def test_missing_required_field_is_422(client: Any) -> None:
    body = signup_body()
    del body["age"]
    resp = await client.post("/api/auth/signup", json=body)
    assert resp.status == 422
    assert_422(await resp.json(), "age")


@pytest.mark.parametrize(
    "overrides",
    [
        {"age": 18, "min_age": 18, "max_age": 18, "max_distance_km": 1},
        {"age": 100, "min_age": 100, "max_age": 100, "max_distance_km": 500, "name": "Al"},
        {"address_line": None, "city": "Pune", "device_id": "device-1"},
    ],
)
async def test_boundary_values_are_accepted(client: Any, overrides: dict[str, Any]) -> None:
    status, body = await post_signup(client, **overrides)
    assert status == 201, body
    assert body["user"]["coins"] == 10


async def test_surrounding_whitespace_is_stripped(client: Any) -> None:
    status, body = await post_signup(client, name="   Kiran Das   ")
    assert status == 201, body
    assert body["user"]["name"] == "Kiran Das"


@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream", None])
@pytest.mark.parametrize("path", ["/api/auth/login", "/api/auth/signup", "/api/auth/otp/send-for-login", "/api/auth/forgot-password"])
async def test_json_routes_refuse_bodies_that_are_not_declared_json(client: Any, path: str, content_type: str | None) -> None:
    """A page on any origin can post text/plain without a CORS preflight: such a body is never parsed."""
    body = json.dumps({"email": "someone@example.com", "password": "correct-horse-1"}).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    resp = await client.post(path, data=body, headers=headers, skip_auto_headers=["Content-Type"])
    answer = await resp.json()
    assert resp.status == 415, answer
    assert answer["code"] == "unsupported_media_type"
