"""Access tokens: a token is only as good as the policy that issued it."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from tests.support.accounts import auth, signup
from tests.support.secrets import TEST_JWT_SECRET
from truebond.adapters.tokens import ACCESS_TTL_SECONDS, AccessTokens, InvalidToken


def _claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def test_a_token_claiming_a_longer_life_than_the_policy_is_refused() -> None:
    tokens = AccessTokens(TEST_JWT_SECRET)
    now = time.time()
    genuine = tokens.issue("u1", "s1", "user", now)
    claims = _claims(genuine)
    assert claims["exp"] - claims["iat"] == ACCESS_TTL_SECONDS
    assert tokens.verify(genuine, now).user_id == "u1"
    for lifetime in (ACCESS_TTL_SECONDS + 1, 7 * 24 * 3600):
        forged = jwt.encode({**claims, "exp": claims["iat"] + lifetime}, TEST_JWT_SECRET, algorithm="HS256")
        with pytest.raises(InvalidToken):
            tokens.verify(forged, now)


async def test_a_week_long_token_signed_with_the_right_key_is_401_over_http(client: Any) -> None:
    account = await signup(client)
    claims = _claims(account["access_token"])
    week = jwt.encode({**claims, "exp": claims["iat"] + 7 * 24 * 3600}, TEST_JWT_SECRET, algorithm="HS256")
    resp = await client.get("/api/auth/me", headers=auth(week))
    assert resp.status == 401
    assert (await client.get("/api/auth/me", headers=auth(account["access_token"]))).status == 200
