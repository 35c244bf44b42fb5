"""The bodies the admin routes answer with, as JSON Schema (see api/shapes.py)."""

from __future__ import annotations

from typing import Any

from truebond.api.answers import TRANSACTION
from truebond.api.shapes import BOOL, DATE, FREE, INT, NUM, STR, TIME, arr, const, extend, header, map_of, nullable, obj

ADMIN_TOKEN = obj({"access_token": STR, "admin_name": nullable(STR), "admin_role": STR})
ADMIN_ME = obj({"id": STR, "name": nullable(STR), "email": nullable(STR), "role": STR})
# The header a two-step (destructive) admin action may carry its confirm_token in.
CONFIRM_HEADER = header(
    "X-Confirm-Token",
    "The confirm_token of a 409 confirmation_required answer (or send it in the body)",
    {"type": "string", "minLength": 1, "maxLength": 128},
)


def _page(key: str, item: dict[str, Any]) -> dict[str, Any]:
    return obj({key: arr(item), "total": INT, "page": INT, "limit": INT, "pages": INT})


USER_ROW = obj(
    {
        "id": STR,
        "name": nullable(STR),
        "email": nullable(STR),
        "phone": nullable(STR),
        "age": nullable(INT),
        "gender": nullable(STR),
        "role": STR,
        "status": STR,
        "is_active": BOOL,
        "is_suspended": BOOL,
        "shadow_banned": BOOL,
        "is_verified": BOOL,
        "profile_picture": nullable(STR),
        "coins": INT,
        "credits_balance": INT,
        "created_at": nullable(TIME),
    }
)
USERS = _page("users", USER_ROW)
_DETAIL_FIELDS = {
    "bio": STR,
    "intent": nullable(STR),
    "profile_pictures": arr(STR),
    "status_reason": nullable(STR),
    "recent_transactions": arr(TRANSACTION),
    "reports_received": INT,
}
USER_DETAIL_BODY = extend(USER_ROW, _DETAIL_FIELDS)
USER_DETAIL = extend(USER_DETAIL_BODY, {"user": USER_DETAIL_BODY})
STATUS_CHANGED = obj({"success": const(True), "message": STR, "user_id": STR, "status": STR})
SHADOW_CHANGED = obj({"success": const(True), "message": STR, "user_id": STR, "shadow_banned": BOOL})
ADJUSTED = obj({"success": const(True), "user_id": STR, "amount": INT, "coins": INT, "new_balance": INT})

REPORTS = _page(
    "reports",
    obj(
        {
            "id": STR,
            "reporter_id": STR,
            "reported_id": STR,
            "report_type": STR,
            "reason": STR,
            "created_at": TIME,
            "status": STR,
            "resolved_by": STR,
            "resolution_reason": STR,
            "resolved_at": TIME,
        },
        optional=["resolved_by", "resolution_reason", "resolved_at"],
        closed=False,
    ),
)
REPORT_STATS = obj({"total": INT, "by_status": map_of(INT), "pending_by_type": map_of(INT), "pending": INT})
RESOLVED = obj({"success": const(True), "report_id": STR, "status": STR})
AUDIT = _page(
    "logs",
    obj(
        {
            "id": STR,
            "target_id": nullable(STR),
            "action": STR,
            "reason": STR,
            "before": FREE,
            "after": FREE,
            "actor": STR,
            "request_id": nullable(STR),
            "createdAt": TIME,
            "created_at": TIME,
        },
        closed=False,
    ),
)
PLATFORM = obj({"registrations_open": BOOL, "max_reports_per_day": INT}, closed=False)
SETTINGS = obj({"settings": PLATFORM})
SETTINGS_CHANGED = obj({"success": const(True), "settings": PLATFORM})

ANALYTICS: dict[str, dict[str, Any]] = {
    "overview": map_of(NUM),
    "user-growth": obj({"days": INT, "series": arr(obj({"date": DATE, "count": INT})), "total_new": INT}),
    "demographics": obj({"gender": map_of(INT), "age_groups": map_of(INT), "intent": map_of(INT)}),
    "revenue": obj(
        {
            "days": INT,
            "amount_inr": NUM,
            "coins_sold": INT,
            "payments": INT,
            "currency": STR,
            "series": arr(obj({"date": DATE, "amount_inr": NUM})),
            "by_package": map_of(NUM),
        }
    ),
    "activity": obj({"days": INT, "logins": INT, "active_users": INT, "messages": INT, "calls": INT, "coins_spent": INT}),
    "highlights": obj(
        {
            "days": INT,
            "new_users": INT,
            "best_signup_day": obj({"date": nullable(DATE), "count": INT}),
            "revenue_inr": NUM,
            "top_package": nullable(STR),
            "most_reported": arr(obj({"user_id": STR, "reports": INT})),
        }
    ),
}
