"""GET/POST /api/settings and POST/DELETE /api/users/fcm-token over real HTTP."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.support.accounts import auth, signup
from truebond import bootstrap
from truebond.commands.profile import DEFAULT_SETTINGS

FCM = "/api/users/fcm-token"


async def get_settings(client: Any, token: str) -> dict[str, Any]:
    """GET /api/settings (asserting 200 and success)."""
    resp = await client.get("/api/settings", headers=auth(token))
    body: dict[str, Any] = await resp.json()
    assert resp.status == 200, body
    assert body["success"] is True
    settings: dict[str, Any] = body["settings"]
    return settings


async def events_of(runtime: bootstrap.Runtime, user_id: str, type_name: str) -> list[Any]:
    """The events of one type on a user's stream."""
    return [r for r in await runtime.unit.store.load(f"user-{user_id}") if r.type == type_name]


async def fcm_tokens(runtime: bootstrap.Runtime, user_id: str) -> list[str]:
    """The stored push tokens of a user (read model)."""
    doc = await runtime.unit.db["users"].find_one({"_id": user_id})
    return list(doc.get("fcm_tokens", []))


async def test_new_account_gets_the_default_settings(client: Any) -> None:
    user = await signup(client)
    assert await get_settings(client, user["access_token"]) == DEFAULT_SETTINGS


async def test_partial_settings_merge_key_by_key(client: Any, runtime: bootstrap.Runtime) -> None:
    user = await signup(client)
    token, uid = user["access_token"], user["user"]["id"]
    change = {"notifications": {"marketing": True, "nearby": False}, "privacy": {"show_last_seen": False}, "dark_mode": True}
    resp = await client.post("/api/settings", json=change, headers=auth(token))
    body = await resp.json()
    assert resp.status == 200, body
    expected = copy.deepcopy(dict(DEFAULT_SETTINGS))
    expected["notifications"].update(marketing=True, nearby=False)
    expected["privacy"]["show_last_seen"] = False
    expected["dark_mode"] = True
    assert body == {"success": True, "settings": expected}
    assert await get_settings(client, token) == expected
    second = await client.post("/api/settings", json={"language": "pt-BR", "safety": {"block_screenshots": True}}, headers=auth(token))
    expected["language"] = "pt-BR"
    expected["safety"]["block_screenshots"] = True
    assert (await second.json())["settings"] == expected
    # Repeating a change appends nothing.
    await client.post("/api/settings", json={"dark_mode": True}, headers=auth(token))
    assert len(await events_of(runtime, uid, "SettingsUpdated")) == 2
    assert await runtime.unit.projections.diff(["users"]) == []


@pytest.mark.parametrize(
    "body",
    [
        {"theme": "dark"},
        {"dark_mode": "yes"},
        {"dark_mode": 1},
        {"notifications": {"messages": "on"}},
        {"notifications": {"unknown": True}},
        {"notifications": True},
        {"privacy": {"show_online": "world"}},
        {"privacy": {"show_online_status": False}},
        {"safety": {"hide_from_search": None}},
        {"language": "english please"},
        {"language": "x" * 300},
        {"role": "admin"},
    ],
)
async def test_bad_settings_are_refused_and_change_nothing(client: Any, runtime: bootstrap.Runtime, body: dict[str, Any]) -> None:
    user = await signup(client)
    resp = await client.post("/api/settings", json=body, headers=auth(user["access_token"]))
    answer = await resp.json()
    assert resp.status == 422, answer
    assert answer["code"] == "validation_error"
    assert await get_settings(client, user["access_token"]) == DEFAULT_SETTINGS
    assert await events_of(runtime, user["user"]["id"], "SettingsUpdated") == []


async def test_settings_and_tokens_need_a_login(client: Any) -> None:
    assert (await client.get("/api/settings")).status == 401
    assert (await client.post("/api/settings", json={"dark_mode": True})).status == 401
    assert (await client.post(FCM, json={"token": "t" * 20})).status == 401
    assert (await client.delete(FCM, json={"token": "t" * 20})).status == 401


async def test_fcm_token_is_stored_once_and_removed(client: Any, runtime: bootstrap.Runtime) -> None:
    user = await signup(client)
    token, uid = user["access_token"], user["user"]["id"]
    device = "fcm-token_abc:DEF-123.xyz" * 4
    for _ in range(2):
        resp = await client.post(FCM, json={"token": device}, headers=auth(token))
        assert resp.status == 200, await resp.json()
    assert await fcm_tokens(runtime, uid) == [device]
    registered = await events_of(runtime, uid, "FcmTokenRegistered")
    assert len(registered) == 1
    raw = await runtime.unit.db["events"].find_one({"_id": registered[0].id})
    assert device not in str(raw["data"])  # personal: encrypted with the user's key
    other = "another-device-token-1234567890"
    await client.post(FCM, json={"token": other}, headers=auth(token))
    resp = await client.delete(FCM, json={"token": device}, headers=auth(token))
    assert resp.status == 200
    assert await fcm_tokens(runtime, uid) == [other]
    # Removing an unknown token is fine and appends nothing.
    assert (await client.delete(FCM, json={"token": "never-registered-token"}, headers=auth(token))).status == 200
    assert len(await events_of(runtime, uid, "FcmTokenRemoved")) == 1
    # No body removes every token.
    assert (await client.delete(FCM, headers=auth(token))).status == 200
    assert await fcm_tokens(runtime, uid) == []
    assert await runtime.unit.projections.diff(["users"]) == []


async def test_only_the_newest_ten_tokens_are_kept(client: Any, runtime: bootstrap.Runtime) -> None:
    user = await signup(client)
    tokens = [f"device-token-number-{i:02d}" for i in range(12)]
    for t in tokens:
        assert (await client.post(FCM, json={"token": t}, headers=auth(user["access_token"]))).status == 200
    assert await fcm_tokens(runtime, user["user"]["id"]) == tokens[2:]


@pytest.mark.parametrize(
    "body",
    [{"token": "short"}, {"token": "x" * 501}, {"token": "has spaces in it!"}, {}, {"token": 12345678901}, {"token": "t" * 20, "x": 1}],
)
async def test_bad_fcm_tokens_are_refused(client: Any, body: dict[str, Any]) -> None:
    user = await signup(client)
    resp = await client.post(FCM, json=body, headers=auth(user["access_token"]))
    assert resp.status == 422, await resp.json()
