"""Profiles over real HTTP: the public view, edits, mass assignment, preferences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.accounts import auth, signup
from tests.support.photos import png_bytes, upload
from truebond import bootstrap
from truebond.adapters.storage import LocalStorage
from truebond.projections import blocks

PUBLIC_FIELDS = {"id", "name", "age", "gender", "bio", "photos", "profile_pictures", "intent", "is_verified", "is_online"}


@pytest.fixture(autouse=True)
def local_photos(runtime: bootstrap.Runtime, tmp_path: Path) -> LocalStorage:
    """Photos go to a temporary directory (the dev `local` provider)."""
    storage = LocalStorage(tmp_path / "media", runtime.unit.settings.backend_url)
    runtime.unit.storage = storage
    return storage


async def me(client: Any, token: str) -> dict[str, Any]:
    """GET /api/auth/me."""
    resp = await client.get("/api/auth/me", headers=auth(token))
    body: dict[str, Any] = await resp.json()
    assert resp.status == 200, body
    return body


async def stream_length(runtime: bootstrap.Runtime, user_id: str) -> int:
    """How many events the user's stream holds."""
    return len(await runtime.unit.store.load(f"user-{user_id}"))


async def test_public_profile_shows_only_public_fields(client: Any, runtime: bootstrap.Runtime) -> None:
    alice = await signup(client, name="Alice Example", address_line="12 Secret Lane", city="Pune")
    bob = await signup(client)
    await client.put("/api/users/profile", json={"bio": "Hiking and chai"}, headers=auth(alice["access_token"]))
    await client.post("/api/users/fcm-token", json={"token": "fcm-token-of-alice-0001"}, headers=auth(alice["access_token"]))
    # What later features keep on the account (exact position, presence details) must not leak either.
    exact = {"lat": 18.520431, "lng": 73.856743, "updated_at": "2026-01-01T00:00:00Z"}
    await runtime.unit.db["users"].update_one({"_id": alice["user"]["id"]}, {"$set": {"location": exact}})
    resp = await client.get(f"/api/users/profile/{alice['user']['id']}", headers=auth(bob["access_token"]))
    body = await resp.json()
    assert resp.status == 200, body
    assert set(body) == PUBLIC_FIELDS
    assert body["id"] == alice["user"]["id"]
    assert body["name"] == "Alice Example"
    assert body["bio"] == "Hiking and chai"
    assert body["age"] == 27 and body["gender"] == "female" and body["intent"] == "dating"
    assert body["photos"] == [] and body["is_verified"] is False and body["is_online"] is False
    text = str(body)
    values = (alice["user"]["email"], "Secret Lane", "Pune", "18.52", "73.85", "fcm-token")
    names = ("coins", "phone", "email", "location", "address", "password", "referral", "settings", "preferences")
    for secret in (*values, *names):
        assert secret not in text, secret


async def test_profile_needs_a_login(client: Any) -> None:
    alice = await signup(client)
    uid = alice["user"]["id"]
    assert (await client.get(f"/api/users/profile/{uid}")).status == 401
    assert (await client.get(f"/api/users/profile/{uid}", headers=auth("not-a-token"))).status == 401
    assert (await client.put("/api/users/profile", json={"bio": "x"})).status == 401
    assert (await client.put("/api/users/preferences", json={"min_age": 20})).status == 401


async def test_unknown_and_deleted_users_answer_404(client: Any, runtime: bootstrap.Runtime) -> None:
    viewer = await signup(client)
    gone = await signup(client)
    unknown = await client.get("/api/users/profile/" + "0" * 32, headers=auth(viewer["access_token"]))
    assert unknown.status == 404
    assert (await unknown.json())["code"] == "not_found"
    assert (await client.get("/api/users/profile/" + "x" * 200, headers=auth(viewer["access_token"]))).status == 404
    # Account deletion is its own command; what this route relies on is the read model's status.
    await runtime.unit.db["users"].update_one({"_id": gone["user"]["id"]}, {"$set": {"status": "deleted"}})
    resp = await client.get(f"/api/users/profile/{gone['user']['id']}", headers=auth(viewer["access_token"]))
    assert resp.status == 404


async def test_a_block_hides_a_profile(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = await signup(client)
    bob = await signup(client)

    async def blocked(db: Any, viewer: str, target: str) -> bool:
        return {viewer, target} == {alice["user"]["id"], bob["user"]["id"]}

    monkeypatch.setattr(blocks, "blocked_either_way", blocked)
    resp = await client.get(f"/api/users/profile/{alice['user']['id']}", headers=auth(bob["access_token"]))
    assert resp.status == 404
    own = await client.get(f"/api/users/profile/{alice['user']['id']}", headers=auth(alice["access_token"]))
    assert own.status == 200


async def test_update_profile_changes_fields_as_one_encrypted_event(client: Any, runtime: bootstrap.Runtime) -> None:
    alice = await signup(client)
    token, uid = alice["access_token"], alice["user"]["id"]
    before = await stream_length(runtime, uid)
    resp = await client.put(
        "/api/users/profile", json={"name": "  Alice B  ", "bio": "Line one\nline two", "intent": "serious"}, headers=auth(token)
    )
    body = await resp.json()
    assert resp.status == 200, body
    assert body["message"]
    assert body["user"]["name"] == "Alice B"
    assert body["user"]["bio"] == "Line one\nline two"
    assert body["user"]["intent"] == "serious"
    assert body["user"]["coins"] == 10
    assert (await me(client, token))["name"] == "Alice B"
    events = await runtime.unit.store.load(f"user-{uid}")
    assert len(events) == before + 1 and events[-1].type == "ProfileUpdated"
    raw = await runtime.unit.db["events"].find_one({"_id": events[-1].id})
    assert "Alice B" not in str(raw["data"]) and "Line one" not in str(raw["data"])
    assert raw["data"]["intent"] == "serious"
    # The same values again change nothing and append nothing.
    again = await client.put("/api/users/profile", json={"name": "Alice B", "intent": "serious"}, headers=auth(token))
    assert again.status == 200
    assert await stream_length(runtime, uid) == before + 1
    assert await runtime.unit.projections.diff(["users"]) == []


@pytest.mark.parametrize(
    "body",
    [
        {"role": "super_admin"},
        {"coins": 999999},
        {"email": "other@example.com"},
        {"is_verified": True},
        {"name": "Alice", "role": "admin"},
        {"profile_pictures": ["https://evil.example.com/x.png"]},
        {"name": "A"},
        {"name": "x" * 51},
        {"name": "Bad\x00Name"},
        {"bio": "b" * 501},
        {"intent": "hookup"},
        {"name": 42},
        {"profile_pictures": "not-a-list"},
    ],
)
async def test_mass_assignment_and_bad_fields_are_refused_and_change_nothing(
    client: Any, runtime: bootstrap.Runtime, body: dict[str, Any]
) -> None:
    alice = await signup(client)
    token, uid = alice["access_token"], alice["user"]["id"]
    before_me = await me(client, token)
    before_events = await stream_length(runtime, uid)
    resp = await client.put("/api/users/profile", json=body, headers=auth(token))
    answer = await resp.json()
    assert resp.status == 422, answer
    assert answer["code"] == "validation_error" and answer["errors"]
    assert await me(client, token) == before_me
    assert await stream_length(runtime, uid) == before_events


async def test_photos_can_be_reordered_or_dropped_but_never_foreign(client: Any, runtime: bootstrap.Runtime) -> None:
    alice = await signup(client)
    bob = await signup(client)
    token = alice["access_token"]
    urls = [(await upload(client, token, png_bytes(color=(c, 0, 0))))[1]["url"] for c in (1, 2, 3)]
    bob_url = (await upload(client, bob["access_token"], png_bytes()))[1]["url"]
    resp = await client.put("/api/users/profile", json={"profile_pictures": [urls[2], urls[0], urls[1]]}, headers=auth(token))
    assert resp.status == 200
    assert (await resp.json())["user"]["profile_pictures"] == [urls[2], urls[0], urls[1]]
    for bad in ([bob_url], [urls[0], bob_url], [urls[0], urls[0]], [urls[0] + "?x=1"]):
        refused = await client.put("/api/users/profile", json={"profile_pictures": bad, "name": "Changed"}, headers=auth(token))
        assert refused.status == 422, bad
    current = await me(client, token)
    assert current["profile_pictures"] == [urls[2], urls[0], urls[1]] and current["name"] == "Asha Rao"
    dropped = await client.put("/api/users/profile", json={"profile_pictures": [urls[1]]}, headers=auth(token))
    assert (await dropped.json())["user"]["profile_pictures"] == [urls[1]]
    public = await (await client.get(f"/api/users/profile/{alice['user']['id']}", headers=auth(bob["access_token"]))).json()
    assert public["photos"] == [urls[1]]
    assert await runtime.unit.projections.diff(["users"]) == []


async def test_preferences_update_merges_and_checks_min_le_max(client: Any, runtime: bootstrap.Runtime) -> None:
    alice = await signup(client)  # min_age 24, max_age 35, max_distance_km 25, interested_in male
    token, uid = alice["access_token"], alice["user"]["id"]
    resp = await client.put("/api/users/preferences", json={"max_age": 40, "max_distance_km": 100}, headers=auth(token))
    body = await resp.json()
    assert resp.status == 200, body
    assert body["preferences"] == {"interested_in": "male", "min_age": 24, "max_age": 40, "max_distance_km": 100}
    assert (await me(client, token))["preferences"]["max_age"] == 40
    before = await stream_length(runtime, uid)
    for bad in (
        {"min_age": 30, "max_age": 25},
        {"max_age": 20},  # below the stored min_age 24
        {"min_age": 41},  # above the stored max_age 40
        {"min_age": 17},
        {"max_age": 101},
        {"max_distance_km": 0},
        {"max_distance_km": 501},
        {"interested_in": "robots"},
        {"min_age": "20"},
        {"min_age": True},
        {"max_distance_km": True},  # 1 to Python, inside 1..500: only the boolean guard refuses it
        {"radius": 5},
    ):
        refused = await client.put("/api/users/preferences", json=bad, headers=auth(token))
        assert refused.status == 422, bad
    assert await stream_length(runtime, uid) == before
    assert (await me(client, token))["preferences"] == body["preferences"]
    ok = await client.put("/api/users/preferences", json={"min_age": 40, "interested_in": "everyone"}, headers=auth(token))
    assert (await ok.json())["preferences"]["min_age"] == 40
    assert await runtime.unit.projections.diff(["users"]) == []


async def test_concurrent_profile_edits_all_land(client: Any, runtime: bootstrap.Runtime) -> None:
    import asyncio

    alice = await signup(client)
    token, uid = alice["access_token"], alice["user"]["id"]
    before = await stream_length(runtime, uid)
    bodies = [{"bio": f"bio {i}"} for i in range(5)] + [{"max_distance_km": 100 + i} for i in range(5)]
    paths = ["/api/users/profile"] * 5 + ["/api/users/preferences"] * 5
    results = await asyncio.gather(*(client.put(p, json=b, headers=auth(token)) for p, b in zip(paths, bodies, strict=True)))
    assert [r.status for r in results] == [200] * 10
    assert await stream_length(runtime, uid) == before + 10
    assert await runtime.unit.projections.diff(["users"]) == []
