"""Discovery lists over real HTTP: who appears, preferences, search taken literally, paging bounds."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.accounts import auth
from tests.support.discovery import HOME, LISTS, every_list, listed_ids, person
from truebond import bootstrap
from truebond.projections import blocks


async def test_a_matching_person_appears_in_every_list_and_on_the_map(client: Any) -> None:
    viewer = await person(client)
    woman = await person(client, name="Meera Iyer", gender="female", interested_in="male")
    found = await every_list(client, viewer["access_token"], "meera")
    assert all(ids == [woman["user"]["id"]] for ids in found.values()), found


@pytest.mark.parametrize("kind", ["blocked", "shadow_banned", "suspended", "deleted", "hidden"])
async def test_excluded_people_never_appear_from_either_side(
    client: Any, runtime: bootstrap.Runtime, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    viewer = await person(client, name="Ravi Kumar")
    other = await person(client, name="Meera Iyer", gender="female", interested_in="male")
    bystander = await person(client, name="Meera Nair", gender="female", interested_in="male")
    vid, oid = viewer["user"]["id"], other["user"]["id"]
    if kind in ("blocked", "shadow_banned"):
        # The safety part answers these; a block hides the pair from each other, a shadow-ban hides
        # the banned user from everybody else.
        async def hidden_from(db: Any, viewer_id: str) -> set[str]:
            if kind == "blocked":
                return {vid: {oid}, oid: {vid}}.get(viewer_id, set())
            return {oid} if viewer_id != oid else set()

        monkeypatch.setattr(blocks, "hidden_from", hidden_from)
    elif kind == "suspended":
        # As the safety part's suspension leaves the users read model.
        await runtime.unit.db["users"].update_one({"_id": oid}, {"$set": {"status": "suspended"}})
    elif kind == "deleted":
        assert (await client.delete("/api/users/account", headers=auth(other["access_token"]))).status == 200
    else:
        resp = await client.post("/api/settings", json={"safety": {"hide_from_search": True}}, headers=auth(other["access_token"]))
        assert resp.status == 200
    found = await every_list(client, viewer["access_token"], "meera")
    assert all(ids == [bystander["user"]["id"]] for ids in found.values()), found
    if kind in ("blocked", "hidden"):
        # The other side (still able to look) does not see the viewer either when blocked; a hidden
        # user still sees others.
        back = await every_list(client, other["access_token"], "ravi")
        expected = [] if kind == "blocked" else [vid]
        assert all(ids == expected for ids in back.values()), back


async def test_preferences_gender_and_age_are_applied(client: Any) -> None:
    viewer = await person(client, min_age=25, max_age=35)
    young = await person(client, gender="female", age=22)
    fits = await person(client, gender="female", age=30)
    old = await person(client, gender="female", age=40)
    man = await person(client, gender="male", age=30)
    for path in LISTS:
        assert await listed_ids(client, viewer["access_token"], path) == [fits["user"]["id"]], path
    assert {young["user"]["id"], old["user"]["id"], man["user"]["id"]}.isdisjoint(
        await listed_ids(client, viewer["access_token"], LISTS[0])
    )
    everyone = await person(client, interested_in="everyone", min_age=18, max_age=100)
    seen = set(await listed_ids(client, everyone["access_token"], "/api/users/suggestions"))
    assert {young["user"]["id"], fits["user"]["id"], old["user"]["id"], man["user"]["id"], viewer["user"]["id"]} <= seen


async def test_nearby_uses_the_callers_max_distance(client: Any) -> None:
    viewer = await person(client, max_distance_km=10)
    near = await person(client, gender="female", at=(HOME[0] + 0.05, HOME[1]))  # ~5.6 km
    far = await person(client, gender="female", at=(HOME[0] + 0.3, HOME[1]))  # ~33 km
    resp = await client.get("/api/users/nearby", headers=auth(viewer["access_token"]))
    body = await resp.json()
    assert [u["id"] for u in body["users"]] == [near["user"]["id"]]
    assert body["users"][0]["distance_km"] == 10 and body["users"][0]["distance"] == "< 10 km"
    assert far["user"]["id"] not in [u["id"] for u in body["users"]]


async def test_nearby_without_a_location_is_empty(client: Any) -> None:
    viewer = await person(client, at=None)
    await person(client, gender="female")
    body = await (await client.get("/api/users/nearby", headers=auth(viewer["access_token"]))).json()
    assert body["users"] == [] and body["location_required"] is True


@pytest.mark.parametrize("q", [".*(", "^$", "\\", "a|b", "[", "(?i)", "$where", '{"$gt": ""}'])
async def test_search_with_regex_metacharacters_is_answered_and_literal(client: Any, q: str) -> None:
    viewer = await person(client)
    await person(client, name="Meera Iyer", gender="female")
    resp = await client.get("/api/users/search", params={"q": q}, headers=auth(viewer["access_token"]))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["users"] == []


async def test_search_matches_a_normalised_prefix_of_any_word(client: Any) -> None:
    viewer = await person(client)
    meera = await person(client, name="Méera Iyer", gender="female")
    other = await person(client, name="Ira Das", gender="female")
    token = viewer["access_token"]
    assert await listed_ids(client, token, "/api/users/search", q="  MEE ") == [meera["user"]["id"]]
    assert await listed_ids(client, token, "/api/users/search", q="iyer") == [meera["user"]["id"]]
    assert await listed_ids(client, token, "/api/users/search", q="i") == [other["user"]["id"], meera["user"]["id"]]
    assert await listed_ids(client, token, "/api/users/search", q="eera") == []
    # Search ignores preferences (it looks for a name), but never the viewer themselves.
    assert await listed_ids(client, token, "/api/users/search", q="asha") == []


async def test_renaming_updates_search(client: Any) -> None:
    viewer = await person(client)
    woman = await person(client, name="Meera Iyer", gender="female")
    await client.put("/api/users/profile", json={"name": "Tara Iyer"}, headers=auth(woman["access_token"]))
    assert await listed_ids(client, viewer["access_token"], "/api/users/search", q="meera") == []
    assert await listed_ids(client, viewer["access_token"], "/api/users/search", q="tara") == [woman["user"]["id"]]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/users/suggestions", {"limit": "51"}),
        ("/api/users/feed", {"limit": "0"}),
        ("/api/users/nearby", {"page": "21"}),
        ("/api/users/search", {"q": ""}),
        ("/api/users/search", {"q": "x" * 51}),
        ("/api/users/search", {}),
        ("/api/users/suggestions", {"sort": "name"}),
    ],
)
async def test_limits_and_paging_are_bounded(client: Any, path: str, params: dict[str, str]) -> None:
    viewer = await person(client, at=None)
    resp = await client.get(path, params=params, headers=auth(viewer["access_token"]))
    assert resp.status == 422, await resp.text()


async def test_pages_follow_each_other(client: Any) -> None:
    viewer = await person(client, at=None)
    women = [await person(client, gender="female", at=None) for _ in range(5)]
    token = viewer["access_token"]
    first = await (await client.get("/api/users/suggestions", params={"limit": "2"}, headers=auth(token))).json()
    second = await (await client.get("/api/users/suggestions", params={"limit": "2", "page": "2"}, headers=auth(token))).json()
    third = await (await client.get("/api/users/suggestions", params={"limit": "2", "page": "3"}, headers=auth(token))).json()
    ids = [u["id"] for page in (first, second, third) for u in page["users"]]
    assert ids == [w["user"]["id"] for w in reversed(women)]
    assert (first["has_more"], second["has_more"], third["has_more"]) == (True, True, False)


async def test_lists_need_a_login(client: Any) -> None:
    for path in (*LISTS, "/api/users/search?q=a", "/api/location/nearby-with-location?lat=1&lng=1", "/api/users/dashboard-stats"):
        assert (await client.get(path)).status == 401
