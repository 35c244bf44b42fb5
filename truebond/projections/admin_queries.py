"""What the admin screens read about accounts: a filtered page of users, one user's detail."""

from __future__ import annotations

import re
from typing import Any

from truebond.projections.ledger import BALANCES, CREDIT_TRANSACTIONS
from truebond.projections.safety import REPORTS
from truebond.projections.users import USERS

# Never shown to an admin: secrets, tokens, and the projection's own bookkeeping.
HIDDEN_FIELDS = ("password_hash", "fcm_tokens", "_v", "_applied")
USER_STATUSES = ("active", "suspended", "banned", "deleted")


def prefix_pattern(search: str) -> str:
    """A regular expression matching `search` literally at the start (every metacharacter escaped)."""
    return "^" + re.escape(search)


def _filter(status: str | None, search: str | None) -> dict[str, Any]:
    query: dict[str, Any] = {}
    if status:
        query["status"] = status
    if search:
        pattern = {"$regex": prefix_pattern(search), "$options": "i"}
        query["$or"] = [{"name": pattern}, {"email": pattern}]
    return query


def admin_view(doc: dict[str, Any], coins: int) -> dict[str, Any]:
    """An account as admins see it (no hashes, keys or tokens)."""
    pictures = list(doc.get("profile_pictures", []))
    return {
        "id": doc["_id"],
        "name": doc.get("name"),
        "email": doc.get("email"),
        "phone": doc.get("phone"),
        "age": doc.get("age"),
        "gender": doc.get("gender"),
        "role": doc.get("role", "user"),
        "status": doc.get("status"),
        "is_active": doc.get("status") == "active",
        "is_suspended": doc.get("status") in ("suspended", "banned"),
        "shadow_banned": bool(doc.get("shadow_banned", False)),
        "is_verified": bool(doc.get("is_verified", False)),
        "profile_picture": pictures[0] if pictures else None,
        "coins": coins,
        "credits_balance": coins,
        "created_at": doc.get("created_at"),
    }


async def _coins_of(db: Any, ids: list[str]) -> dict[str, int]:
    cursor = db[BALANCES.collection].find({"_id": {"$in": ids}}, projection={"coins": 1})
    return {str(d["_id"]): int(d.get("coins", 0)) async for d in cursor}


async def users_page(db: Any, *, page: int, limit: int, status: str | None, search: str | None) -> tuple[list[dict[str, Any]], int]:
    """A page of accounts, newest first, with their coins; and how many match."""
    query = _filter(status, search)
    coll = db[USERS.collection]
    total = int(await coll.count_documents(query))
    cursor = coll.find(query, projection=dict.fromkeys(HIDDEN_FIELDS, 0)).sort([("created_at", -1), ("_id", 1)])
    docs: list[dict[str, Any]] = await cursor.skip((page - 1) * limit).limit(limit).to_list(None)
    coins = await _coins_of(db, [str(d["_id"]) for d in docs])
    return [admin_view(d, coins.get(str(d["_id"]), 0)) for d in docs], total


async def user_detail(db: Any, user_id: str, ledger_limit: int = 20) -> dict[str, Any] | None:
    """One account with its coins, recent ledger entries and the reports about it."""
    if not user_id or len(user_id) > 64:
        return None
    doc = await db[USERS.collection].find_one({"_id": user_id}, projection=dict.fromkeys(HIDDEN_FIELDS, 0))
    if doc is None:
        return None
    coins = (await _coins_of(db, [user_id])).get(user_id, 0)
    cursor = db[CREDIT_TRANSACTIONS.collection].find({"user_id": user_id}).sort([("created_at", -1), ("version", -1)]).limit(ledger_limit)
    ledger = [
        {
            "id": t["_id"],
            "amount": t["amount"],
            "reason": t["reason"],
            "balance_after": t["balance_after"],
            "description": t.get("description", ""),
            "created_at": t["created_at"],
        }
        async for t in cursor
    ]
    body = admin_view(doc, coins)
    body.update(
        {
            "bio": doc.get("bio", ""),
            "intent": doc.get("intent"),
            "profile_pictures": list(doc.get("profile_pictures", [])),
            "status_reason": doc.get("status_reason"),
            "recent_transactions": ledger,
            "reports_received": int(await db[REPORTS.collection].count_documents({"reported_id": user_id})),
        }
    )
    return body
