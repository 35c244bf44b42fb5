"""Coins and payments: packages, orders, the read-only verify, credit history, Stripe webhooks."""

from __future__ import annotations

import voluptuous as vol
from aiohttp import web

from truebond.adapters.ratelimit import Policy
from truebond.adapters.stripe_gateway import SignatureError, verify_signature
from truebond.api import answers
from truebond.api.routing import Req, Route, json_response
from truebond.api.shapes import header
from truebond.api.validation import query_int, read_capped, strict
from truebond.commands import payments
from truebond.commands.payments import PlaceOrder, ReceiveStripeEvent
from truebond.errors import InvalidSignature
from truebond.logging import get_logger
from truebond.projections import ledger as ledger_view
from truebond.projections import payments as payments_view

log = get_logger(__name__)

PAYMENT_ORDERS = Policy("payment_order", "10/hour")
WEBHOOK_LIMIT = 512 * 1024

ORDER_SCHEMA = strict({vol.Required("package_id"): vol.All(str, vol.In(list(payments.PACKAGES)))})
VERIFY_SCHEMA = strict(
    {vol.Required("payment_intent_id"): vol.All(str, vol.Strip, vol.Match(r"^pi_[A-Za-z0-9_]{1,250}$", msg="invalid id"))}
)
HISTORY_QUERY = strict({vol.Optional("limit", default=50): query_int(1, 100)})


async def list_packages(req: Req) -> web.StreamResponse:
    """GET /api/payments/packages: the server's own price table."""
    body = [
        {"id": p.id, "coins": p.coins, "amount_inr": p.amount_inr, "label": p.label, "discount": p.discount, "popular": p.popular}
        for p in payments.PACKAGES.values()
    ]
    return json_response({"packages": body, "currency": "INR", "min_purchase": payments.MIN_PURCHASE})


async def create_order(req: Req) -> web.StreamResponse:
    """POST /api/payments/order: a PaymentIntent for a package; `amount` is in paise."""
    order = await req.bus.handle(PlaceOrder(user_id=req.me.user_id, package_id=req.body["package_id"]), req.ctx)
    return json_response(
        {
            "payment_intent_id": order.intent_id,
            "client_secret": order.client_secret,
            "amount": order.amount,
            "currency": order.currency,
            "coins": order.coins,
            "payment_id": order.payment_id,
        }
    )


async def verify_payment(req: Req) -> web.StreamResponse:
    """POST /api/payments/verify: reads the payment's status; never credits anything."""
    intent_id = req.body["payment_intent_id"]
    unit = req.unit
    status, coins = await payments_view.payment_status(unit.db, unit.store, req.me.user_id, intent_id, payments.credit_event_id(intent_id))
    return json_response({"status": status, "coins": coins})


# The upper-case codes the client reads (it tells bonuses and purchases from spending by them);
# the ledger stores the lower-case reasons its commands give.
CLIENT_REASONS = {
    "signup_bonus": "SIGNUP_BONUS",
    "purchase": "PURCHASE",
    "referral": "REFERRAL_BONUS",
    "referral_bonus": "REFERRAL_BONUS",
    "message": "MESSAGE",
    "call": "CALL",
    "admin": "ADMIN_ADJUSTMENT",
    "admin_adjustment": "ADMIN_ADJUSTMENT",
    "refund": "REFUND",
    "dispute": "DISPUTE",
}


def client_reason(reason: str) -> str:
    """The client's upper-case code of a stored ledger reason (unknown reasons upper-cased)."""
    if reason in CLIENT_REASONS:
        return CLIENT_REASONS[reason]
    for prefix, code in (("call", "CALL"), ("message", "MESSAGE"), ("admin", "ADMIN_ADJUSTMENT")):
        if reason.startswith(prefix):
            return code
    return reason.upper()


async def credit_history(req: Req) -> web.StreamResponse:
    """GET /api/credits/history: the caller's ledger, newest first."""
    docs = await ledger_view.history(req.unit.db, req.me.user_id, req.query["limit"])
    transactions = [
        {
            "id": d["_id"],
            "amount": d["amount"],
            "reason": client_reason(str(d["reason"])),
            "balance_after": d["balance_after"],
            "description": d.get("description", ""),
            "created_at": d["created_at"],
        }
        for d in docs
    ]
    return json_response({"transactions": transactions})


async def stripe_webhook(req: Req) -> web.StreamResponse:
    """POST /api/webhooks/stripe: verify the signature on the raw body first, then record and act.

    400 (nothing stored) for a missing or bad signature or a stale timestamp; 200 for every
    verified event, duplicates included; an error while acting answers 500 so Stripe retries.
    """
    request = req.request
    payload = await read_capped(request, WEBHOOK_LIMIT)
    unit = req.unit
    try:
        verify_signature(payload, request.headers.get("Stripe-Signature"), unit.settings.stripe_webhook_secret, unit.clock.time())
    except SignatureError as exc:
        log.warning("payment.webhook_unverified", reason=exc.reason, status="refused")
        raise InvalidSignature() from None
    _, first = await req.bus.handle(ReceiveStripeEvent(payload=payload), req.ctx)
    return json_response({"received": True, "duplicate": not first})


STRIPE_SIGNATURE = header(
    "Stripe-Signature", "t=<unix time>,v1=<hex HMAC-SHA256 of '<t>.<raw body>' with the endpoint secret>", required=True
)
WEBHOOK_BODY = {
    "application/json": {
        "type": "object",
        "description": "A Stripe event; the signature is checked over the raw bytes before anything is parsed",
        "properties": {"id": {"type": "string"}, "type": {"type": "string"}, "data": {"type": "object"}},
        "required": ["id", "type"],
    }
}

ROUTES = [
    Route("GET", "/api/payments/packages", list_packages, responses={200: answers.PACKAGES}, summary="Coin packages", tag="payments"),
    Route(
        "POST",
        "/api/payments/order",
        create_order,
        auth="user",
        body=ORDER_SCHEMA,
        limits=((PAYMENT_ORDERS, "user"),),
        responses={200: answers.ORDER},
        errors=(404,),
        summary="Create a PaymentIntent for a package",
        tag="payments",
    ),
    Route(
        "POST",
        "/api/payments/verify",
        verify_payment,
        auth="user",
        body=VERIFY_SCHEMA,
        responses={200: answers.PAYMENT_STATUS},
        errors=(404,),
        summary="Payment status (read only)",
        tag="payments",
    ),
    Route(
        "GET",
        "/api/credits/history",
        credit_history,
        auth="user",
        query=HISTORY_QUERY,
        responses={200: answers.TRANSACTIONS},
        summary="Coin history",
        tag="payments",
    ),
    *(
        # Stripe signs these; no bearer token, and no per-IP limit that could drop its retries.
        Route(
            "POST",
            path,
            stripe_webhook,
            auth="webhook",
            raw_body=True,
            default_limit=False,
            max_body=WEBHOOK_LIMIT,
            responses={200: answers.WEBHOOK},
            errors=(400,),
            content=WEBHOOK_BODY,
            params=(STRIPE_SIGNATURE,),
            summary="Stripe webhook",
            tag="payments",
        )
        for path in ("/api/webhooks/stripe", "/api/webhooks/stripe/credits")
    ),
]
