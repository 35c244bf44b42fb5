"""Read model `users`: one document per account, from the `user-<id>` stream."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING

from truebond.events.account import AccountDeleted, AccountErased, EmailVerified
from truebond.events.base import Recorded
from truebond.events.crypto import ERASED
from truebond.events.identity import PasswordChanged, RoleGranted, UserRegistered
from truebond.events.profile import (
    MAX_FCM_TOKENS,
    FcmTokenRegistered,
    FcmTokenRemoved,
    PhotoAdded,
    PreferencesUpdated,
    ProfileUpdated,
    SettingsUpdated,
    decode_urls,
)
from truebond.projections import blocks
from truebond.projections.admin_users import ADMIN_UPDATES
from truebond.projections.discovery_indexes import DISCOVERY_INDEXES
from truebond.projections.search_keys import name_keys
from truebond.projections.views import StreamDocView, Update


def _registered(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, UserRegistered)
    address = {k: getattr(e, k) for k in ("address_line", "city", "state", "country", "pincode")}
    update: Update = {
        "$set": {
            "name": e.name,
            "name_keys": name_keys(e.name) if e.name != ERASED else [],
            "email": e.email,
            "phone": e.mobile_number,
            "password_hash": e.password_hash,
            "age": e.age,
            "gender": e.gender,
            "intent": e.intent,
            "bio": "",
            "profile_pictures": [],
            "preferences": {
                "interested_in": e.interested_in,
                "min_age": e.min_age,
                "max_age": e.max_age,
                "max_distance_km": e.max_distance_km,
            },
            "address": address,
            "role": "user",
            "status": "active",
            "is_verified": False,
            "referral_code": e.referral_code,
            "referred_by": e.referred_by,
            "created_at": rec.at,
            "updated_at": rec.at,
        }
    }
    # A shredded email or phone reads "[erased]": leave it out, so the sparse unique indexes
    # skip it and any number of erased accounts can be rebuilt side by side.
    if not e.referral_code:
        del update["$set"]["referral_code"]
    for key in ("email", "phone"):
        if update["$set"][key] == ERASED:
            del update["$set"][key]
    return update


def _password(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, PasswordChanged)
    return {"$set": {"password_hash": e.password_hash, "updated_at": rec.at}}


def _role(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, RoleGranted)
    return {"$set": {"role": e.role, "updated_at": rec.at}}


# Profile (routes_profile): shredded ("[erased]") personal values are never written back.
def _profile(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, ProfileUpdated)
    fields = {"name": e.name, "bio": e.bio, "intent": e.intent}
    changes: dict[str, Any] = {k: v for k, v in fields.items() if v is not None and v != ERASED}
    if e.profile_pictures is not None:
        changes["profile_pictures"] = decode_urls(e.profile_pictures)
    if "name" in changes:
        changes["name_keys"] = name_keys(changes["name"])
    return {"$set": {**changes, "updated_at": rec.at}}


def _preferences(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, PreferencesUpdated)
    fields = {"interested_in": e.interested_in, "min_age": e.min_age, "max_age": e.max_age, "max_distance_km": e.max_distance_km}
    return {"$set": {**{f"preferences.{k}": v for k, v in fields.items() if v is not None and v != ERASED}, "updated_at": rec.at}}


def _photo_added(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, PhotoAdded)
    if e.url == ERASED:
        return {}
    return {"$push": {"profile_pictures": e.url}, "$set": {"updated_at": rec.at}}


def _flatten(prefix: str, value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(_flatten(f"{prefix}.{key}", item) if isinstance(item, dict) else {f"{prefix}.{key}": item})
    return out


def _settings(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, SettingsUpdated)
    return {"$set": {**_flatten("settings", e.changes), "updated_at": rec.at}}


def _fcm_registered(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, FcmTokenRegistered)
    return {} if e.token == ERASED else {"$push": {"fcm_tokens": {"$each": [e.token], "$slice": -MAX_FCM_TOKENS}}}


def _fcm_removed(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, FcmTokenRemoved)
    return {"$set": {"fcm_tokens": []}} if e.token is None else {"$pull": {"fcm_tokens": e.token}}


# Account safety (routes_otp, routes_account).
# What an erased account keeps: id, role, status, coarse profile facts and timestamps. Match
# preferences go too: `interested_in` is personal (and PreferencesUpdated shreds it, so a replay
# could not rebuild the live value anyway).
DELETED_FIELDS = (
    "name",
    "name_keys",
    "email",
    "phone",
    "password_hash",
    "address",
    "bio",
    "profile_pictures",
    "preferences",
    "location",
    "fcm_tokens",
    "is_online",
)


def _email_verified(rec: Recorded) -> Update:
    assert isinstance(rec.event, EmailVerified)
    return {"$set": {"is_verified": True, "updated_at": rec.at}}


def _deleted(rec: Recorded) -> Update:
    assert isinstance(rec.event, AccountDeleted)
    # `erasure_pending` stays until AccountErased: the maintenance sweep finishes what is left.
    return {
        "$set": {"status": "deleted", "erasure_pending": True, "deleted_at": rec.at, "updated_at": rec.at},
        "$unset": dict.fromkeys(DELETED_FIELDS, ""),
    }


def _erased(rec: Recorded) -> Update:
    assert isinstance(rec.event, AccountErased)
    return {"$set": {"erased_at": rec.at, "updated_at": rec.at}, "$unset": {"erasure_pending": ""}}


USERS = StreamDocView(
    name="users",
    collection="users",
    stream_prefix="user-",
    updates={
        UserRegistered: _registered,
        PasswordChanged: _password,
        RoleGranted: _role,
        ProfileUpdated: _profile,
        PreferencesUpdated: _preferences,
        PhotoAdded: _photo_added,
        SettingsUpdated: _settings,
        FcmTokenRegistered: _fcm_registered,
        FcmTokenRemoved: _fcm_removed,
        EmailVerified: _email_verified,
        AccountDeleted: _deleted,
        AccountErased: _erased,
        **ADMIN_UPDATES,
    },
    indexes=(
        ([("email", ASCENDING)], {"unique": True, "sparse": True, "name": "email_unique"}),
        ([("phone", ASCENDING)], {"unique": True, "sparse": True, "name": "phone_unique"}),
        ([("referral_code", ASCENDING)], {"unique": True, "sparse": True, "name": "referral_code_unique"}),
        ([("created_at", DESCENDING)], {"name": "created_at"}),
        ([("erasure_pending", ASCENDING)], {"sparse": True, "name": "erasure_pending"}),
        ([("shadow_banned", ASCENDING)], {"sparse": True, "name": "shadow_banned"}),
        *DISCOVERY_INDEXES,
    ),
)


async def by_email(db: Any, email: str) -> dict[str, Any] | None:
    """The account holding a normalised email, if any."""
    doc: dict[str, Any] | None = await db[USERS.collection].find_one({"email": email})
    return doc


async def by_id(db: Any, user_id: str) -> dict[str, Any] | None:
    """One account by id."""
    doc: dict[str, Any] | None = await db[USERS.collection].find_one({"_id": user_id})
    return doc


async def public_profile(db: Any, viewer_id: str, target_id: str) -> dict[str, Any] | None:
    """The target's account if the viewer may see it; None when unknown, not active, blocked either way or shadow-banned."""
    if not target_id or len(target_id) > 64:
        return None
    doc = await by_id(db, target_id)
    if doc is None or doc.get("status") != "active":
        return None
    if await blocks.out_of_sight(db, viewer_id, target_id):
        return None
    return doc


async def by_referral_code(db: Any, code: str) -> dict[str, Any] | None:
    """The account owning a referral code."""
    doc: dict[str, Any] | None = await db[USERS.collection].find_one({"referral_code": code})
    return doc


async def pending_erasures(db: Any, limit: int = 100) -> list[str]:
    """Ids of deleted accounts whose erasure has not finished yet."""
    cursor = db[USERS.collection].find({"erasure_pending": True}, projection={"_id": 1}).limit(limit)
    return [str(doc["_id"]) async for doc in cursor]
