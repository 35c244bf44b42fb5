"""Read model `users`: one document per account, from the `user-<id>` stream."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING

from truebond.events.base import Recorded
from truebond.events.identity import PasswordChanged, RoleGranted, UserRegistered
from truebond.projections.runner import StreamDocView, Update


def _registered(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, UserRegistered)
    address = {k: getattr(e, k) for k in ("address_line", "city", "state", "country", "pincode")}
    return {
        "$set": {
            "name": e.name,
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


def _password(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, PasswordChanged)
    return {"$set": {"password_hash": e.password_hash, "updated_at": rec.at}}


def _role(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, RoleGranted)
    return {"$set": {"role": e.role, "updated_at": rec.at}}


USERS = StreamDocView(
    name="users",
    collection="users",
    stream_prefix="user-",
    updates={UserRegistered: _registered, PasswordChanged: _password, RoleGranted: _role},
    indexes=(
        ([("email", ASCENDING)], {"unique": True, "sparse": True, "name": "email_unique"}),
        ([("phone", ASCENDING)], {"unique": True, "sparse": True, "name": "phone_unique"}),
        ([("referral_code", ASCENDING)], {"unique": True, "sparse": True, "name": "referral_code_unique"}),
        ([("created_at", DESCENDING)], {"name": "created_at"}),
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


async def by_referral_code(db: Any, code: str) -> dict[str, Any] | None:
    """The account owning a referral code."""
    doc: dict[str, Any] | None = await db[USERS.collection].find_one({"referral_code": code})
    return doc
