"""GET /api/users/dashboard-stats and /api/users/streak from projections, as the client reads them."""

from __future__ import annotations

from typing import Any

from tests.support.accounts import auth, signup
from tests.support.chat import send
from truebond import bootstrap
from truebond.clock import OffsetClock


async def stats(client: Any, token: str) -> dict[str, Any]:
    resp = await client.get("/api/users/dashboard-stats", headers=auth(token))
    body: dict[str, Any] = await resp.json()
    assert resp.status == 200, body
    return body


async def test_a_new_account_has_its_coins_and_nothing_else(client: Any) -> None:
    user = await signup(client)
    assert await stats(client, user["access_token"]) == {"messages_sent": 0, "matches": 0, "profile_views": 0, "coins": 10}


async def test_profile_views_count_each_viewer_once_a_day(client: Any, clock: OffsetClock) -> None:
    target, alice, bob = await signup(client), await signup(client), await signup(client)
    url = f"/api/users/profile/{target['user']['id']}"
    for viewer in (alice, alice, bob, target):  # the owner looking at themselves does not count
        assert (await client.get(url, headers=auth(viewer["access_token"]))).status == 200
    assert (await stats(client, target["access_token"]))["profile_views"] == 2
    clock.advance(24 * 3600)
    again = await client.post("/api/auth/refresh", json={"refresh_token": alice["refresh_token"]})
    await client.get(url, headers=auth((await again.json())["access_token"]))
    fresh = await client.post("/api/auth/refresh", json={"refresh_token": target["refresh_token"]})
    assert (await stats(client, (await fresh.json())["access_token"]))["profile_views"] == 3


async def test_messages_and_matches_come_from_the_chat_read_models(client: Any, runtime: bootstrap.Runtime) -> None:
    user, other, third = await signup(client), await signup(client), await signup(client)
    assert (await send(client, user, other, "hello"))[0] == 200
    assert (await send(client, other, user, "hi back"))[0] == 200
    assert (await send(client, other, third, "and you?"))[0] == 200
    body = await stats(client, user["access_token"])
    assert (body["messages_sent"], body["matches"]) == (1, 1)
    body = await stats(client, other["access_token"])
    assert (body["messages_sent"], body["matches"]) == (2, 2)


async def test_streak_counts_consecutive_active_days(client: Any, clock: OffsetClock) -> None:
    user = await signup(client)
    token = user["access_token"]
    assert await (await client.get("/api/users/streak", headers=auth(token))).json() == {"streak_days": 1, "next_reward": 6}
    refresh = user["refresh_token"]
    for day in (2, 3):
        clock.advance(24 * 3600)
        body = await (await client.post("/api/auth/refresh", json={"refresh_token": refresh})).json()
        refresh, token = body["refresh_token"], body["access_token"]
        assert await (await client.get("/api/users/streak", headers=auth(token))).json() == {"streak_days": day, "next_reward": 7 - day}
    clock.advance(3 * 24 * 3600)  # days without activity end the run
    body = await (await client.post("/api/auth/refresh", json={"refresh_token": refresh})).json()
    assert (await (await client.get("/api/users/streak", headers=auth(body["access_token"]))).json())["streak_days"] == 1
