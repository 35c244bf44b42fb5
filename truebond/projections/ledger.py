"""Read models `balances` (coins per user) and `credit_transactions` (the history)."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING

from truebond.events.base import Recorded
from truebond.events.ledger import LedgerEvent
from truebond.projections.views import EventDocView, StreamDocView, Update


def _balance(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, LedgerEvent)
    return {"$set": {"coins": e.balance_after, "user_id": e.user_id, "updated_at": rec.at}}


def _transaction(rec: Recorded) -> tuple[str, Update]:
    e = rec.event
    assert isinstance(e, LedgerEvent)
    return rec.id, {
        "$set": {
            "user_id": e.user_id,
            "amount": e.amount,
            "reason": e.reason,
            "reference": e.reference,
            "balance_after": e.balance_after,
            "description": e.description,
            "created_at": rec.at,
            "version": rec.version,
        }
    }


BALANCES = StreamDocView(
    name="balances",
    collection="balances",
    stream_prefix="account-",
    updates={LedgerEvent: _balance},
)

CREDIT_TRANSACTIONS = EventDocView(
    name="credit_transactions",
    collection="credit_transactions",
    docs={LedgerEvent: _transaction},
    indexes=(([("user_id", ASCENDING), ("created_at", DESCENDING)], {"name": "user_time"}),),
)


async def coins(db: Any, user_id: str) -> int:
    """The user's projected balance (0 when none yet)."""
    doc = await db[BALANCES.collection].find_one({"_id": user_id}, projection={"coins": 1})
    return 0 if doc is None else int(doc.get("coins", 0))


async def history(db: Any, user_id: str, limit: int) -> list[dict[str, Any]]:
    """The user's ledger entries, newest first."""
    cursor = db[CREDIT_TRANSACTIONS.collection].find({"user_id": user_id}).sort([("created_at", -1), ("version", -1)])
    docs: list[dict[str, Any]] = await cursor.limit(limit).to_list(None)
    return docs
