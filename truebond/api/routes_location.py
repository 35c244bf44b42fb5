"""Location (API.md "Profile, settings, discovery"): updates and the map of people nearby.

Coordinates are validated and rounded to 3 decimals before anything else sees them; answers carry
jittered points and bucketed distances only, and no log line carries a coordinate (the request log
has the path without its query string).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import voluptuous as vol
from aiohttp import web

from truebond.api import answers
from truebond.api.discovery_body import jittered, listed
from truebond.api.routing import Req, Route, json_response
from truebond.api.validation import query_int, strict
from truebond.commands.location import UpdateLocation, round_coord
from truebond.projections import discovery

MAX_RADIUS_KM = 500


def _finite(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
        raise vol.Invalid("expected a number")
    return float(value)


def _coerce_finite(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise vol.Invalid("expected a number") from None
    if not math.isfinite(number):
        raise vol.Invalid("expected a number")
    return number


LATITUDE = vol.All(_finite, vol.Range(min=-90, max=90))
LONGITUDE = vol.All(_finite, vol.Range(min=-180, max=180))
UPDATE_SCHEMA = strict({vol.Required("latitude"): LATITUDE, vol.Required("longitude"): LONGITUDE})
NEARBY_QUERY = strict(
    {
        vol.Required("lat"): vol.All(_coerce_finite, vol.Range(min=-90, max=90)),
        vol.Required("lng"): vol.All(_coerce_finite, vol.Range(min=-180, max=180)),
        vol.Optional("radius_km", default=50): vol.All(_coerce_finite, vol.Range(min=0.1, max=MAX_RADIUS_KM)),
        vol.Optional("limit", default=20): query_int(1, 50),
    }
)


def jitter_key(secret: str) -> bytes:
    """The key of the map jitter, derived from the service's secret (never the secret itself)."""
    return hashlib.sha256(b"truebond-map-jitter|" + secret.encode()).digest()


async def update_location(req: Req) -> web.StreamResponse:
    """POST /api/location/update: `updated`, or `throttled` within 30 s of the last update."""
    body = req.body
    result = await req.bus.handle(UpdateLocation(req.me.user_id, body["latitude"], body["longitude"]), req.ctx)
    return json_response({"status": result.status, "updated_at": result.updated_at})


async def nearby_with_location(req: Req) -> web.StreamResponse:
    """GET /api/location/nearby-with-location: people near a point, on a map (jittered)."""
    q, unit = req.query, req.unit
    v = await discovery.viewer(unit.db, dict(await req.account()))
    radius = float(q["radius_km"])
    preferred = v.preferences.get("max_distance_km")
    if isinstance(preferred, int):
        radius = min(radius, float(preferred))
    lat, lng = round_coord(q["lat"]), round_coord(q["lng"])
    found = await discovery.nearby(unit.db, v, lat, lng, radius, unit.clock.now(), 0, q["limit"])
    key = jitter_key(unit.settings.jwt_secret)
    users = []
    for user, loc, km in found:
        body = listed(user, km)
        body["latitude"], body["longitude"] = jittered(key, str(user["_id"]), float(loc["lat"]), float(loc["lng"]), loc.get("updated_at"))
        users.append(body)
    return json_response({"users": users, "count": len(users)})


ROUTES = [
    Route(
        "POST",
        "/api/location/update",
        update_location,
        auth="user",
        body=UPDATE_SCHEMA,
        responses={200: answers.LOCATION_UPDATED},
        summary="Send the caller's position (rounded to 3 decimals; one per 30 s)",
        tag="location",
    ),
    Route(
        "GET",
        "/api/location/nearby-with-location",
        nearby_with_location,
        auth="user",
        query=NEARBY_QUERY,
        responses={200: answers.PLACED},
        summary="People near a point (jittered positions, bucketed distances)",
        tag="location",
    ),
]
