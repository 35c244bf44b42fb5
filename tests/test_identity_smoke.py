from __future__ import annotations

from typing import Any

from tests.conftest import auth, signup


async def test_signup_gives_ten_coins_and_me_shows_them(client: Any) -> None:
    body = await signup(client)
    assert body["user"]["coins"] == 10
    assert body["token_type"] == "bearer"
    resp = await client.get("/api/auth/me", headers=auth(body["access_token"]))
    me = await resp.json()
    assert resp.status == 200, me
    assert me["coins"] == 10
    assert me["role"] == "user"
