"""The bodies the user-facing routes answer with, as JSON Schema (see api/shapes.py)."""

from __future__ import annotations

from truebond.api.shapes import BOOL, FREE, INT, NUM, STR, TIME, arr, const, extend, map_of, nullable, obj

TOKEN_USER = obj(
    {"id": STR, "name": nullable(STR), "email": nullable(STR), "role": STR, "coins": INT, "credits_balance": INT, "is_verified": BOOL}
)
TOKENS = obj(
    {"message": STR, "access_token": STR, "refresh_token": STR, "token_type": const("bearer"), "user": TOKEN_USER},
)
OTP_LOGIN = extend(TOKENS, {"user_id": STR, "is_verified": BOOL})
REFRESHED = obj(
    {"access_token": STR, "refresh_token": STR, "token_type": const("bearer"), "user_id": STR, "user": TOKEN_USER}, optional=["user"]
)
LOGGED_OUT_ALL = obj({"message": STR, "revoked": INT})
SESSIONS = obj(
    {
        "sessions": arr(
            obj(
                {
                    "id": STR,
                    "device_id": nullable(STR),
                    "device": STR,
                    "ip": STR,
                    "created_at": nullable(TIME),
                    "last_seen_at": nullable(TIME),
                    "current": BOOL,
                }
            )
        )
    }
)
ME = obj(
    {
        "id": STR,
        "name": nullable(STR),
        "email": nullable(STR),
        "age": nullable(INT),
        "gender": nullable(STR),
        "bio": STR,
        "profile_picture": nullable(STR),
        "profile_pictures": arr(STR),
        "preferences": FREE,
        "intent": nullable(STR),
        "location": nullable(FREE),
        "is_online": BOOL,
        "is_verified": BOOL,
        "coins": INT,
        "credits_balance": INT,
        "role": STR,
    }
)
PROFILE_UPDATED = obj({"message": STR, "user": ME})
PREFERENCES = obj({"message": STR, "preferences": FREE})
PUBLIC = obj(
    {
        "id": STR,
        "name": nullable(STR),
        "age": nullable(INT),
        "gender": nullable(STR),
        "bio": STR,
        "photos": arr(STR),
        "profile_pictures": arr(STR),
        "intent": nullable(STR),
        "is_verified": BOOL,
        "is_online": BOOL,
    }
)
SETTINGS = obj(
    {
        "success": const(True),
        "settings": obj(
            {
                "notifications": map_of(BOOL),
                "privacy": map_of(BOOL),
                "safety": map_of(BOOL),
                "dark_mode": BOOL,
                "language": STR,
            }
        ),
    }
)
PHOTO = obj({"url": STR, "profile_pictures": arr(STR)})
OTP_SENT = obj({"success": const(True), "message": STR, "expires_in_minutes": INT})
VERIFIED = obj({"success": const(True), "is_verified": BOOL})
VALID = obj({"valid": BOOL})
CONVERSATION = obj({"conversation_id": STR, "user": PUBLIC, "existing": BOOL}, optional=["existing"])

# Discovery and location.
DISTANCED = extend(PUBLIC, {"distance_km": NUM, "distance": STR}, optional=["distance_km", "distance"])
PAGE = obj(
    {"users": arr(DISTANCED), "count": INT, "page": INT, "has_more": BOOL, "location_required": BOOL}, optional=["location_required"]
)
PLACED = obj({"users": arr(extend(DISTANCED, {"latitude": NUM, "longitude": NUM}, optional=["latitude", "longitude"])), "count": INT})
LOCATION_UPDATED = obj({"status": STR, "updated_at": TIME})
DASHBOARD = obj({"messages_sent": INT, "matches": INT, "profile_views": INT, "coins": INT})
STREAK = obj({"streak_days": INT, "next_reward": INT})

# Chat.
MESSAGE_BODY = obj(
    {
        "id": STR,
        "sender_id": STR,
        "receiver_id": STR,
        "content": STR,
        "message_type": STR,
        "image_url": nullable(STR),
        "is_mine": BOOL,
        "is_read": BOOL,
        "status": STR,
        "created_at": TIME,
        "conversation_id": STR,
        "client_message_id": STR,
    },
    optional=["client_message_id"],
)
SENT = obj({"success": const(True), "message_id": STR, "status": STR, "created_at": TIME, "message": MESSAGE_BODY, "conversation_id": STR})
THREAD = obj({"messages": arr(MESSAGE_BODY), "has_more": BOOL, "conversation_id": nullable(STR)})
CONVERSATIONS = obj(
    {
        "success": const(True),
        "conversations": arr(
            obj(
                {
                    "id": STR,
                    "conversation_id": STR,
                    "user_id": STR,
                    "name": nullable(STR),
                    "avatar": nullable(STR),
                    "online": BOOL,
                    "lastMessage": STR,
                    "last_message_at": nullable(TIME),
                    "last_message_sender_id": nullable(STR),
                    "unread": INT,
                    "created_at": nullable(TIME),
                    "user": PUBLIC,
                    "other_user": PUBLIC,
                }
            )
        ),
        "count": INT,
    }
)
MARKED_READ = obj({"marked_read": INT})

# Safety, notifications, calls.
BLOCKED = obj(
    {
        "blocked_users": arr(obj({"id": STR, "name": nullable(STR), "profile_picture": nullable(STR), "blocked_at": nullable(TIME)})),
        "count": INT,
    }
)
REPORTED = obj({"success": const(True), "report_id": STR, "message": STR})
NOTIFICATIONS = obj(
    {"notifications": arr(obj({"id": STR, "title": STR, "body": STR, "type": STR, "is_read": BOOL, "created_at": TIME}, closed=False))}
)
COUNT = obj({"count": INT})
MARKED_ALL = obj({"success": const(True), "count": INT})
CALLS = obj(
    {
        "calls": arr(
            obj(
                {
                    "id": STR,
                    "caller_id": STR,
                    "receiver_id": STR,
                    "call_type": STR,
                    "status": STR,
                    "initiated_at": nullable(TIME),
                    "duration_seconds": INT,
                    "credits_spent": INT,
                    "disconnect_reason": nullable(STR),
                    "other_user": obj({"id": STR, "name": nullable(STR), "profile_picture": nullable(STR)}),
                },
                closed=False,
            )
        ),
        "total": INT,
    }
)

# Payments.
PACKAGES = obj(
    {
        "packages": arr(obj({"id": STR, "coins": INT, "amount_inr": NUM, "label": STR, "discount": INT, "popular": BOOL})),
        "currency": STR,
        "min_purchase": NUM,
    }
)
ORDER = obj({"payment_intent_id": STR, "client_secret": STR, "amount": INT, "currency": STR, "coins": INT, "payment_id": STR})
PAYMENT_STATUS = obj({"status": STR, "coins": INT})
TRANSACTION = obj({"id": STR, "amount": INT, "reason": STR, "balance_after": INT, "description": STR, "created_at": TIME})
TRANSACTIONS = obj({"transactions": arr(TRANSACTION)})
WEBHOOK = obj({"received": const(True), "duplicate": BOOL})

# Health.
HEALTH = obj({"status": const("ok")})
READY = obj({"status": const("ready"), "checks": map_of(STR)})
NOT_READY = obj({"status": const("unavailable"), "checks": map_of(STR), "down": arr(STR)})
DOCUMENT = obj({"openapi": STR, "info": FREE, "paths": FREE, "components": FREE}, closed=False)
