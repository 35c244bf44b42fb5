"""Admin analytics, read from the read models only (users, sessions, payments, ledger, reports).

Messages and calls are counted from their read models (`messages`, `calls`) when those exist; a
collection that does not exist yet counts 0.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from truebond.projections.ledger import CREDIT_TRANSACTIONS
from truebond.projections.payments import PAYMENTS
from truebond.projections.safety import REPORTS
from truebond.projections.sessions import SESSIONS
from truebond.projections.users import USERS

PERIODS = {"day": 1, "24h": 1, "week": 7, "7d": 7, "month": 30, "30d": 30, "quarter": 90, "90d": 90, "year": 365, "1y": 365}
AGE_BUCKETS = ((18, 24), (25, 34), (35, 44), (45, 54), (55, 100))
# Payments whose coins were credited (a later refund or dispute keeps the credit on record).
CREDITED = ("completed", "refunded", "disputed")
MESSAGES, CALLS = "messages", "calls"


def days_of(period: str) -> int:
    """The number of days a period names."""
    return PERIODS.get(period, 30)


def _day(at: datetime) -> str:
    return at.date().isoformat()


def _series(counts: Counter[str], since: datetime, days: int) -> list[dict[str, Any]]:
    start = since.date()
    return [
        {"date": (start + timedelta(days=i)).isoformat(), "count": counts.get((start + timedelta(days=i)).isoformat(), 0)}
        for i in range(days + 1)
    ]


async def _count(db: Any, collection: str, query: dict[str, Any]) -> int:
    return int(await db[collection].count_documents(query))


async def overview(db: Any, now: datetime) -> dict[str, Any]:
    """Headline numbers."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    revenue = await _revenue_total(db, None)
    return {
        "total_users": await _count(db, USERS.collection, {"status": {"$ne": "deleted"}}),
        "active_users": await _count(db, USERS.collection, {"status": "active"}),
        "suspended_users": await _count(db, USERS.collection, {"status": {"$in": ["suspended", "banned"]}}),
        "new_users_today": await _count(db, USERS.collection, {"created_at": {"$gte": today}}),
        "verified_users": await _count(db, USERS.collection, {"is_verified": True, "status": "active"}),
        "online_users": await _count(db, USERS.collection, {"is_online": True, "status": "active"}),
        "total_messages": await _count(db, MESSAGES, {}),
        "total_calls": await _count(db, CALLS, {}),
        "pending_reports": await _count(db, REPORTS.collection, {"status": "pending"}),
        "total_revenue": revenue["amount_inr"],
        "total_transactions": revenue["payments"],
    }


async def user_growth(db: Any, now: datetime, days: int) -> dict[str, Any]:
    """New accounts per day over the period."""
    since = now - timedelta(days=days)
    cursor = db[USERS.collection].find({"created_at": {"$gte": since}}, projection={"created_at": 1})
    counts: Counter[str] = Counter([_day(d["created_at"]) async for d in cursor])
    return {"days": days, "series": _series(counts, since, days), "total_new": sum(counts.values())}


async def demographics(db: Any) -> dict[str, Any]:
    """Active accounts by gender, age bucket and intent."""
    cursor = db[USERS.collection].find({"status": "active"}, projection={"gender": 1, "age": 1, "intent": 1})
    genders: Counter[str] = Counter()
    intents: Counter[str] = Counter()
    ages: Counter[str] = Counter()
    async for d in cursor:
        genders[str(d.get("gender", "other"))] += 1
        intents[str(d.get("intent", "dating"))] += 1
        age = int(d.get("age") or 0)
        ages[next((f"{lo}-{hi}" for lo, hi in AGE_BUCKETS if lo <= age <= hi), "unknown")] += 1
    return {
        "gender": dict(genders),
        "age_groups": {f"{lo}-{hi}": ages.get(f"{lo}-{hi}", 0) for lo, hi in AGE_BUCKETS},
        "intent": dict(intents),
    }


async def _revenue_total(db: Any, since: datetime | None) -> dict[str, Any]:
    query: dict[str, Any] = {"status": {"$in": list(CREDITED)}}
    if since is not None:
        query["completed_at"] = {"$gte": since}
    paise = coins = payments = 0
    async for d in db[PAYMENTS.collection].find(query, projection={"amount": 1, "coins": 1}):
        paise += int(d.get("amount", 0))
        coins += int(d.get("coins", 0))
        payments += 1
    return {"amount_inr": paise / 100, "coins_sold": coins, "payments": payments}


async def revenue(db: Any, now: datetime, days: int) -> dict[str, Any]:
    """Revenue of credited payments over the period (INR), per day and by package."""
    since = now - timedelta(days=days)
    per_day: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    query = {"status": {"$in": list(CREDITED)}, "completed_at": {"$gte": since}}
    async for d in db[PAYMENTS.collection].find(query, projection={"amount": 1, "package_id": 1, "completed_at": 1}):
        per_day[_day(d["completed_at"])] += int(d.get("amount", 0))
        by_package[str(d.get("package_id"))] += int(d.get("amount", 0))
    totals = await _revenue_total(db, since)
    series = [{"date": p["date"], "amount_inr": per_day.get(p["date"], 0) / 100} for p in _series(Counter(), since, days)]
    return {"days": days, **totals, "currency": "INR", "series": series, "by_package": {k: v / 100 for k, v in by_package.items()}}


async def activity(db: Any, now: datetime, days: int) -> dict[str, Any]:
    """Logins, distinct users who logged in, messages and calls over the period."""
    since = now - timedelta(days=days)
    logins = 0
    users: set[str] = set()
    async for d in db[SESSIONS.collection].find({"created_at": {"$gte": since}}, projection={"user_id": 1}):
        logins += 1
        users.add(str(d.get("user_id")))
    return {
        "days": days,
        "logins": logins,
        "active_users": len(users),
        "messages": await _count(db, MESSAGES, {"created_at": {"$gte": since}}),
        "calls": await _count(db, CALLS, {"initiated_at": {"$gte": since}}),
        "coins_spent": await _spent(db, since),
    }


async def _spent(db: Any, since: datetime) -> int:
    total = 0
    async for d in db[CREDIT_TRANSACTIONS.collection].find({"created_at": {"$gte": since}, "amount": {"$lt": 0}}, projection={"amount": 1}):
        total -= int(d.get("amount", 0))
    return total


async def highlights(db: Any, now: datetime, days: int) -> dict[str, Any]:
    """The period's notable numbers: best package, most reported accounts, biggest day of signups."""
    growth = await user_growth(db, now, days)
    money = await revenue(db, now, days)
    best_day = max(growth["series"], key=lambda p: p["count"], default={"date": None, "count": 0})
    reported: Counter[str] = Counter()
    async for d in db[REPORTS.collection].find({"created_at": {"$gte": now - timedelta(days=days)}}, projection={"reported_id": 1}):
        reported[str(d.get("reported_id"))] += 1
    top_package = max(money["by_package"].items(), key=lambda kv: kv[1], default=(None, 0))[0]
    return {
        "days": days,
        "new_users": growth["total_new"],
        "best_signup_day": best_day,
        "revenue_inr": money["amount_inr"],
        "top_package": top_package,
        "most_reported": [{"user_id": uid, "reports": n} for uid, n in reported.most_common(5)],
    }
