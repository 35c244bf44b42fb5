"""POST /api/location/update and GET /api/location/nearby-with-location over real HTTP."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from tests.support.accounts import auth
from tests.support.discovery import HOME, person
from truebond import bootstrap
from truebond.clock import OffsetClock

MAP = "/api/location/nearby-with-location"


async def update(client: Any, token: str, lat: Any, lng: Any) -> tuple[int, dict[str, Any]]:
    """Send a position as the client does."""
    resp = await client.post("/api/location/update", json={"latitude": lat, "longitude": lng}, headers=auth(token))
    return resp.status, await resp.json()


async def test_positions_are_rounded_to_3_decimals_and_encrypted_at_rest(client: Any, runtime: bootstrap.Runtime) -> None:
    user = await person(client, at=None)
    status, body = await update(client, user["access_token"], 12.971598, 77.594566)
    assert status == 200 and body["status"] == "updated" and body["updated_at"].endswith("Z")
    doc = await runtime.unit.db["locations"].find_one({"_id": user["user"]["id"]})
    assert (doc["lat"], doc["lng"]) == (12.972, 77.595)
    stored = await runtime.unit.db["events"].find_one({"stream": f"location-{user['user']['id']}"})
    assert "12.97" not in json.dumps(stored["data"], default=str)


async def test_one_update_per_30_seconds_then_throttled(client: Any, runtime: bootstrap.Runtime, clock: OffsetClock) -> None:
    user = await person(client, at=None)
    token = user["access_token"]
    _, first = await update(client, token, 10.0, 20.0)
    status, second = await update(client, token, 10.5, 20.5)
    assert status == 200 and second == {"status": "throttled", "updated_at": first["updated_at"]}
    clock.advance(29)
    assert (await update(client, token, 10.5, 20.5))[1]["status"] == "throttled"
    clock.advance(2)
    assert (await update(client, token, 10.5, 20.5))[1]["status"] == "updated"
    events = [r for r in await runtime.unit.store.load(f"location-{user['user']['id']}") if r.type == "LocationUpdated"]
    assert len(events) == 2


@pytest.mark.parametrize(
    "body",
    [
        {"latitude": 91, "longitude": 0},
        {"latitude": 0, "longitude": -180.5},
        {"latitude": "12.9", "longitude": 77.5},
        {"latitude": True, "longitude": 77.5},
        {"latitude": 12.9},
        {"latitude": 12.9, "longitude": 77.5, "accuracy": 3},
        {"latitude": None, "longitude": 77.5},
    ],
)
async def test_bad_positions_are_refused(client: Any, body: dict[str, Any]) -> None:
    user = await person(client, at=None)
    resp = await client.post("/api/location/update", json=body, headers=auth(user["access_token"]))
    assert resp.status == 422


async def test_a_location_is_fresh_for_15_minutes(client: Any, clock: OffsetClock) -> None:
    woman = await person(client, gender="female")
    params = {"lat": HOME[0], "lng": HOME[1], "radius_km": 10}
    clock.advance(14 * 60)
    viewer = await person(client)
    seen = await (await client.get(MAP, params=params, headers=auth(viewer["access_token"]))).json()
    assert [u["id"] for u in seen["users"]] == [woman["user"]["id"]]
    clock.advance(2 * 60)
    stale = await (await client.get(MAP, params=params, headers=auth(viewer["access_token"]))).json()
    assert stale["users"] == []


async def test_map_shows_jittered_points_and_bucketed_distances_only(client: Any, log_output: io.StringIO) -> None:
    raw = (12.971598, 77.594566)
    viewer = await person(client, at=raw)
    woman = await person(client, gender="female", at=(12.981234, 77.604321))
    resp = await client.get(MAP, params={"lat": raw[0], "lng": raw[1], "radius_km": 5}, headers=auth(viewer["access_token"]))
    text = await resp.text()
    body = json.loads(text)
    [shown] = body["users"]
    assert shown["id"] == woman["user"]["id"]
    assert all(
        0.0001 - 1e-9 <= abs(got - want) <= 0.0005 + 1e-9 for got, want in ((shown["latitude"], 12.981), (shown["longitude"], 77.604))
    )
    assert (shown["distance_km"], shown["distance"]) == (2, "< 2 km")
    # The same point every time: averaging answers recovers nothing.
    again = await (
        await client.get(MAP, params={"lat": raw[0], "lng": raw[1], "radius_km": 5}, headers=auth(viewer["access_token"]))
    ).json()
    assert (again["users"][0]["latitude"], again["users"][0]["longitude"]) == (shown["latitude"], shown["longitude"])
    for exact in ("12.981234", "77.604321", "12.971598", "77.594566", "12.981,", "77.604,", "12.981]", "77.604]"):
        assert exact not in text
    assert not any(key in shown for key in ("lat", "lng", "location", "point", "coords"))
    logs = log_output.getvalue()
    assert logs
    for exact in ("12.98", "77.60", "12.97", "77.59"):
        assert exact not in logs


async def test_show_distance_off_leaves_the_distance_out(client: Any) -> None:
    viewer = await person(client)
    woman = await person(client, gender="female", at=(HOME[0] + 0.01, HOME[1]))
    await client.post("/api/settings", json={"privacy": {"show_distance": False}}, headers=auth(woman["access_token"]))
    for path, params in (("/api/users/nearby", {}), (MAP, {"lat": HOME[0], "lng": HOME[1], "radius_km": 5})):
        [shown] = (await (await client.get(path, params=params, headers=auth(viewer["access_token"]))).json())["users"]
        assert "distance_km" not in shown and "distance" not in shown, path


async def test_map_applies_radius_and_the_callers_max_distance(client: Any) -> None:
    viewer = await person(client, max_distance_km=5)
    near = await person(client, gender="female", at=(HOME[0] + 0.02, HOME[1]))  # ~2 km
    await person(client, gender="female", at=(HOME[0] + 0.08, HOME[1]))  # ~9 km: past the preference
    body = await (
        await client.get(MAP, params={"lat": HOME[0], "lng": HOME[1], "radius_km": 50}, headers=auth(viewer["access_token"]))
    ).json()
    assert [u["id"] for u in body["users"]] == [near["user"]["id"]]
    assert (await client.get(MAP, params={"lat": 1, "lng": 1, "radius_km": 501}, headers=auth(viewer["access_token"]))).status == 422
    assert (await client.get(MAP, params={"lat": "nan", "lng": 1}, headers=auth(viewer["access_token"]))).status == 422


async def test_deleting_the_account_drops_its_location(client: Any, runtime: bootstrap.Runtime) -> None:
    user = await person(client)
    assert (await client.delete("/api/users/account", headers=auth(user["access_token"]))).status == 200
    doc = await runtime.unit.db["locations"].find_one({"_id": user["user"]["id"]})
    assert doc is not None and "lat" not in doc and "point" not in doc
