"""Read model `locations`: each user's last position (rounded), from the `location-<user>` stream.

`point` is GeoJSON for the 2dsphere index a real MongoDB answers `$nearSphere` from; `lat`/`lng`
beside it serve the bounding-box filter the in-memory MongoDB (mongomock, which has no geo
operators) answers instead. Nothing here ever leaves the server as is: responses carry jittered
coordinates and bucketed distances only (`api/discovery_body.py`).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING

from truebond.events.base import Recorded
from truebond.events.discovery import LocationCleared, LocationUpdated, decode_coords
from truebond.projections.views import StreamDocView, Update

FRESH_FOR = timedelta(minutes=15)
EARTH_KM = 6371.0088
MAX_CANDIDATES = 500


def _updated(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, LocationUpdated)
    coords = decode_coords(e.coords)
    if coords is None:  # shredded: the position is gone with the key
        return {"$unset": {"point": "", "lat": "", "lng": "", "updated_at": ""}}
    lat, lng = coords
    return {"$set": {"point": {"type": "Point", "coordinates": [lng, lat]}, "lat": lat, "lng": lng, "updated_at": rec.at}}


def _cleared(rec: Recorded) -> Update:
    assert isinstance(rec.event, LocationCleared)
    return {"$unset": {"point": "", "lat": "", "lng": "", "updated_at": ""}}


LOCATIONS = StreamDocView(
    name="locations",
    collection="locations",
    stream_prefix="location-",
    updates={LocationUpdated: _updated, LocationCleared: _cleared},
    indexes=(
        ([("point", "2dsphere"), ("updated_at", DESCENDING)], {"name": "point_geo", "sparse": True}),
        ([("lat", ASCENDING), ("lng", ASCENDING), ("updated_at", DESCENDING)], {"name": "lat_lng_box", "sparse": True}),
    ),
)


async def of_user(db: Any, user_id: str) -> dict[str, Any] | None:
    """A user's location document (with `lat`, `lng`, `updated_at` when one is stored)."""
    doc: dict[str, Any] | None = await db[LOCATIONS.collection].find_one({"_id": user_id})
    return doc


def is_fresh(doc: dict[str, Any] | None, now: datetime) -> bool:
    """Whether a stored location counts as current (sent within the last 15 minutes)."""
    return bool(doc and doc.get("updated_at") is not None and doc["updated_at"] >= now - FRESH_FOR)


def distance_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(a)))


def _is_mongomock(db: Any) -> bool:
    return any(cls.__module__.split(".")[0] in ("mongomock", "mongomock_motor") for cls in type(db).__mro__)


def near_filter(db: Any, lat: float, lng: float, radius_km: float, fresh_after: datetime) -> dict[str, Any]:
    """The filter of fresh locations within `radius_km`: `$nearSphere` on the 2dsphere index, or
    (mongomock) a bounding box on `lat`/`lng`, refined by `distance_km` afterwards."""
    if not _is_mongomock(db):
        near = {"$geometry": {"type": "Point", "coordinates": [lng, lat]}, "$maxDistance": radius_km * 1000}
        return {"point": {"$nearSphere": near}, "updated_at": {"$gte": fresh_after}}
    dlat = math.degrees(radius_km / EARTH_KM)
    dlng = 180.0 if abs(lat) + dlat >= 90 else math.degrees(radius_km / (EARTH_KM * math.cos(math.radians(lat))))
    return {
        "lat": {"$gte": lat - dlat, "$lte": lat + dlat},
        "lng": {"$gte": lng - dlng, "$lte": lng + dlng},
        "updated_at": {"$gte": fresh_after},
    }


async def near(db: Any, lat: float, lng: float, radius_km: float, now: datetime) -> list[tuple[dict[str, Any], float]]:
    """Fresh locations within `radius_km` of a point, nearest first, with their distance in km."""
    cursor = db[LOCATIONS.collection].find(near_filter(db, lat, lng, radius_km, now - FRESH_FOR)).limit(MAX_CANDIDATES)
    found: list[tuple[dict[str, Any], float]] = []
    async for doc in cursor:
        km = distance_km(lat, lng, float(doc["lat"]), float(doc["lng"]))
        if km <= radius_km:
            found.append((doc, km))
    found.sort(key=lambda pair: pair[1])
    return found
