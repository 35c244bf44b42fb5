"""Accounts over HTTP: a valid signup body, a signup that must succeed, the Authorization header."""

from __future__ import annotations

import uuid
from typing import Any


def signup_body(**overrides: Any) -> dict[str, Any]:
    """A valid signup body with a unique email and phone."""
    n = uuid.uuid4().int % 10**10
    body: dict[str, Any] = {
        "name": "Asha Rao",
        "email": f"asha{n}@example.com",
        "mobile_number": f"9{n:09d}"[:10],
        "password": "correct-horse-1",
        "age": 27,
        "gender": "female",
        "interested_in": "male",
        "intent": "dating",
        "min_age": 24,
        "max_age": 35,
        "max_distance_km": 25,
    }
    body.update(overrides)
    return body


async def signup(client: Any, **overrides: Any) -> dict[str, Any]:
    """Create an account over HTTP and return the answer (asserting 201)."""
    resp = await client.post("/api/auth/signup", json=signup_body(**overrides))
    body: dict[str, Any] = await resp.json()
    assert resp.status == 201, body
    return body


def auth(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}
