"""Stripe's webhook payload, read: the verified body becomes the `StripeEventReceived` event.

Only the fields the server acts on are kept (ids, type, amounts, status, the server's own
metadata keys); everything else Stripe sends, personal data included, is dropped here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from truebond.errors import MalformedStripeEvent
from truebond.events import codec
from truebond.events.payments import StripeEventReceived

METADATA_KEYS = ("user_id", "package_id", "payment_id")
_STRIPE_ID = re.compile(r"^[A-Za-z0-9_]{3,255}$")


def read_stripe_event(payload: bytes) -> StripeEventReceived:
    """The event of a verified webhook body; MalformedStripeEvent when it is not a usable one."""
    try:
        received = parse_stripe_event(json.loads(payload), hashlib.sha256(payload).hexdigest())
        # Lone surrogates (\ud800 escapes) parse, but no store or log can encode them.
        json.dumps(codec.encode(received), ensure_ascii=False).encode("utf-8")
    except (ValueError, TypeError, UnicodeError, RecursionError):
        raise MalformedStripeEvent() from None
    return received


def parse_stripe_event(data: Any, payload_sha256: str) -> StripeEventReceived:
    """The fields the server acts on, from a decoded event body; ValueError when malformed."""
    if not isinstance(data, Mapping) or data.get("object") != "event":
        raise ValueError("not a Stripe event")
    event_id, event_type = data.get("id"), data.get("type")
    if not isinstance(event_id, str) or not _STRIPE_ID.match(event_id) or not event_id.startswith("evt_"):
        raise ValueError("bad event id")
    if not isinstance(event_type, str) or not 1 <= len(event_type) <= 100:
        raise ValueError("bad event type")
    body = data.get("data")
    obj = body.get("object") if isinstance(body, Mapping) else None
    if not isinstance(obj, Mapping):
        raise ValueError("no data.object")
    object_type, object_id = str(obj.get("object", "")), str(obj.get("id", ""))
    fields: dict[str, Any] = {}
    if object_type == "payment_intent":
        fields = {
            "intent_id": object_id,
            "charge_id": _id_of(obj.get("latest_charge")),
            "amount_received": _int_or_none(obj.get("amount_received")),
            "failure_code": _failure_code(obj.get("last_payment_error")),
        }
    elif object_type in ("charge", "dispute"):
        fields = {
            "intent_id": _id_of(obj.get("payment_intent")),
            "charge_id": object_id if object_type == "charge" else _id_of(obj.get("charge")),
        }
    metadata = obj.get("metadata")
    kept = {}
    if isinstance(metadata, Mapping):
        kept = {k: str(metadata[k])[:100] for k in METADATA_KEYS if isinstance(metadata.get(k), (str, int))}
    currency = obj.get("currency")
    status = obj.get("status")
    return StripeEventReceived(
        stripe_event_id=event_id,
        event_type=event_type,
        object_type=object_type[:60],
        object_id=object_id[:255],
        created=_int_or_none(data.get("created")) or 0,
        livemode=bool(data.get("livemode", False)),
        payload_sha256=payload_sha256,
        amount=_int_or_none(obj.get("amount")),
        currency=currency.lower()[:10] if isinstance(currency, str) else None,
        status=status[:60] if isinstance(status, str) else None,
        metadata=kept,
        **fields,
    )


def _id_of(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return value[:255] if isinstance(value, str) and value else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _failure_code(error: Any) -> str | None:
    if not isinstance(error, Mapping):
        return None
    code = error.get("decline_code") or error.get("code")
    return code[:60] if isinstance(code, str) else None
