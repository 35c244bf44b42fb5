"""Discovery helpers: people with a place, the four lists and the map, read as the client reads them."""

from __future__ import annotations

from typing import Any

from tests.support.accounts import auth, signup

LISTS = ("/api/users/suggestions", "/api/users/feed", "/api/users/nearby")
# Bangalore, with more decimals than are ever stored.
HOME = (12.971598, 77.594566)


async def person(client: Any, *, at: tuple[float, float] | None = HOME, **overrides: Any) -> dict[str, Any]:
    """A new account (a man interested in women unless told otherwise), with a location if `at`."""
    fields: dict[str, Any] = {"gender": "male", "interested_in": "female", "age": 30, "min_age": 18, "max_age": 60}
    fields.update(overrides)
    user = await signup(client, **fields)
    if at is not None:
        resp = await client.post("/api/location/update", json={"latitude": at[0], "longitude": at[1]}, headers=auth(user["access_token"]))
        assert resp.status == 200, await resp.text()
    return user


async def listed_ids(client: Any, token: str, path: str, **params: Any) -> list[str]:
    """The ids a list answers (asserting 200)."""
    resp = await client.get(path, params=params, headers=auth(token))
    body = await resp.json()
    assert resp.status == 200, body
    return [u["id"] for u in body["users"]]


async def every_list(client: Any, token: str, name: str) -> dict[str, list[str]]:
    """The ids of every discovery list, the name search and the map, by path."""
    found = {path: await listed_ids(client, token, path) for path in LISTS}
    found["search"] = await listed_ids(client, token, "/api/users/search", q=name)
    found["map"] = await listed_ids(client, token, "/api/location/nearby-with-location", lat=HOME[0], lng=HOME[1], radius_km=20)
    return found
