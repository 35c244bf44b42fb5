"""Behind reverse proxies: the client IP comes from X-Forwarded-For only as far as it is trusted."""

from __future__ import annotations

from typing import Any

import attrs

from tests.support.accounts import auth, signup_body
from truebond import bootstrap
from truebond.api.app import create_app


async def test_without_trusted_proxies_the_header_is_ignored(client: Any) -> None:
    account = await client.post(
        "/api/auth/signup",
        json=signup_body(),
        headers={"X-Forwarded-For": "203.0.113.7"},
    )
    token = (await account.json())["access_token"]
    resp = await client.get("/api/auth/sessions", headers=auth(token))
    assert [s["ip"] for s in (await resp.json())["sessions"]] == ["127.0.0.x"]


async def test_one_trusted_proxy_gives_the_address_it_appended(runtime: bootstrap.Runtime, aiohttp_client: Any) -> None:
    runtime.unit.settings = attrs.evolve(runtime.unit.settings, trusted_proxy_hops=1)
    client = await aiohttp_client(create_app(runtime.unit, runtime.bus))
    # The client forged the left entry; the proxy appended the address it really saw.
    resp = await client.post(
        "/api/auth/signup",
        json=signup_body(),
        headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.7"},
    )
    body = await resp.json()
    assert resp.status == 201, body
    resp = await client.get("/api/auth/sessions", headers=auth(body["access_token"]))
    assert [s["ip"] for s in (await resp.json())["sessions"]] == ["203.0.113.x"]


async def test_per_ip_limits_follow_the_forwarded_client(runtime: bootstrap.Runtime, aiohttp_client: Any) -> None:
    runtime.unit.settings = attrs.evolve(runtime.unit.settings, trusted_proxy_hops=1)
    client = await aiohttp_client(create_app(runtime.unit, runtime.bus))
    body = {"email": "nobody@example.com", "password": "wrong-password"}
    statuses = [(await client.post("/api/auth/login", json=body, headers={"X-Forwarded-For": "198.51.100.1"})).status for _ in range(11)]
    assert statuses[:10] == [401] * 10 and statuses[10] == 429
    # Another client behind the same proxy is not punished for the first one's tries.
    other = await client.post("/api/auth/login", json=body, headers={"X-Forwarded-For": "198.51.100.2"})
    assert other.status == 401
