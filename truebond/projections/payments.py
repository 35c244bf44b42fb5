"""Read models `payments` (one document per PaymentIntent) and `payment_reviews` (for admins)."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING

from truebond.errors import NotFound
from truebond.events.base import Recorded
from truebond.events.ledger import CreditsReversed, LedgerEvent
from truebond.events.payments import (
    PaymentCreated,
    PaymentFailed,
    PaymentRejected,
    PaymentReversed,
    PaymentSucceeded,
    StripeEventRejected,
)
from truebond.events.store import EventStore
from truebond.projections.views import EventDocView, StreamDocView, Update

REVERSED_STATUS = {"refund": "refunded", "dispute": "disputed"}


def _created(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, PaymentCreated)
    return {
        "$set": {
            "payment_id": e.payment_id,
            "userId": e.user_id,
            "package_id": e.package_id,
            "coins": e.coins,
            "amount": e.amount,
            "currency": e.currency,
            "intent_id": e.intent_id,
            "status": "pending",
            "created_at": rec.at,
            "updated_at": rec.at,
        }
    }


def _succeeded(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, PaymentSucceeded)
    return {
        "$set": {
            "status": "completed",
            "coins_credited": e.coins,
            "credit_event_id": e.credit_event_id,
            "charge_id": e.charge_id,
            "completed_at": rec.at,
            "updated_at": rec.at,
        }
    }


def _failed(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, PaymentFailed)
    return {"$set": {"status": "failed", "failure_code": e.failure_code, "failed_at": rec.at, "updated_at": rec.at}}


def _rejected(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, PaymentRejected)
    return {"$set": {"status": "rejected", "rejected_reason": e.reason, "rejected_at": rec.at, "updated_at": rec.at}}


def _reversed(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, PaymentReversed)
    return {
        "$set": {"status": REVERSED_STATUS.get(e.cause, "reversed"), "reversed_at": rec.at, "updated_at": rec.at},
        "$addToSet": {"reversals": e.cause},
    }


PAYMENTS = StreamDocView(
    name="payments",
    collection="payments",
    stream_prefix="payment-",
    updates={
        PaymentCreated: _created,
        PaymentSucceeded: _succeeded,
        PaymentFailed: _failed,
        PaymentRejected: _rejected,
        PaymentReversed: _reversed,
    },
    indexes=(
        ([("userId", ASCENDING), ("created_at", DESCENDING)], {"name": "userId"}),
        ([("payment_id", ASCENDING)], {"name": "payment_id"}),
        ([("status", ASCENDING), ("created_at", DESCENDING)], {"name": "status_time"}),
    ),
)


def _webhook_rejected(rec: Recorded) -> tuple[str, Update]:
    e = rec.event
    assert isinstance(e, StripeEventRejected)
    return rec.id, {
        "$set": {
            "kind": "webhook_rejected",
            "reason": e.reason,
            "stripe_event_id": e.stripe_event_id,
            "event_type": e.event_type,
            "intent_id": e.intent_id,
            "user_id": e.user_id,
            "payment_id": e.payment_id,
            "amount": e.amount,
            "createdAt": rec.at,
        }
    }


def _account_flagged(rec: Recorded) -> tuple[str, Update] | None:
    e = rec.event
    assert isinstance(e, CreditsReversed)
    if not e.flagged:
        return None
    return rec.id, {
        "$set": {
            "kind": "account_flagged",
            "reason": e.cause,
            "intent_id": e.intent_id,
            "user_id": e.user_id,
            "payment_id": e.payment_id,
            "coins_withdrawn": -e.amount,
            "createdAt": rec.at,
        }
    }


PAYMENT_REVIEWS = EventDocView(
    name="payment_reviews",
    collection="payment_reviews",
    docs={StripeEventRejected: _webhook_rejected, CreditsReversed: _account_flagged},
    indexes=(
        ([("createdAt", DESCENDING)], {"name": "createdAt"}),
        ([("user_id", ASCENDING), ("createdAt", DESCENDING)], {"name": "user_time"}),
    ),
)


async def for_user(db: Any, user_id: str, intent_id: str) -> dict[str, Any] | None:
    """The payment of a PaymentIntent if it belongs to `user_id`, else None."""
    doc: dict[str, Any] | None = await db[PAYMENTS.collection].find_one({"_id": intent_id, "userId": user_id})
    return doc


async def payment_status(db: Any, store: EventStore, user_id: str, intent_id: str, credit_id: str) -> tuple[str, int]:
    """(pending | completed | failed, coins credited) of the caller's own payment; reads only.

    `credit_id` is the idempotency id of the one credit the intent can give. A payment of someone
    else answers NotFound, like one that does not exist.
    """
    doc = await for_user(db, user_id, intent_id)
    if doc is None:
        raise NotFound("Payment not found")
    status = str(doc.get("status", "pending"))
    if status == "completed":
        return "completed", int(doc.get("coins_credited", doc.get("coins", 0)))
    if status in ("pending", "failed"):
        # The credit is the truth: it may be stored a moment before the status follows it.
        credit = await store.get(credit_id)
        if credit is not None and isinstance(credit.event, LedgerEvent):
            return "completed", credit.event.amount
    if status == "pending":
        return "pending", 0
    return "failed", 0


async def records_completion(db: Any, intent_id: str, credit_id: str) -> bool:
    """Whether the payment of a PaymentIntent has recorded its completion by the credit `credit_id`."""
    doc = await db[PAYMENTS.collection].find_one({"_id": intent_id, "credit_event_id": credit_id}, projection={"_id": 1})
    return doc is not None


async def buyer(db: Any, intent_id: str) -> str | None:
    """The user who ordered a PaymentIntent (None when the server has no such order)."""
    doc = await db[PAYMENTS.collection].find_one({"_id": intent_id}, projection={"userId": 1})
    return None if doc is None else str(doc["userId"])
