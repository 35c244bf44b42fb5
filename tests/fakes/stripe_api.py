"""A local fake of the Stripe API (aiohttp), reached by stripe-python through `--stripe-api-base`.

It speaks what the gateway uses, the way Stripe does: form-encoded POST /v1/payment_intents with
bracketed nested keys and the Idempotency-Key header (a repeated key replays the first answer),
and the paginated, newest-first GET /v1/payment_intents list with created[gte] and
starting_after. It also builds webhook events and signs them with Stripe's
scheme (HMAC-SHA256 over "{timestamp}.{payload}", header `t=...,v1=...`), written out here
independently of the code under test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import string
import time
from typing import Any

from aiohttp import web

FAKE_SECRET_KEY = "sk_test_fake_0123456789abcdefABCDEF"
_ALPHABET = string.ascii_letters + string.digits


def stripe_id(prefix: str) -> str:
    """An id shaped like Stripe's: prefix, underscore, 24 letters and digits (with a digit)."""
    return f"{prefix}_1{''.join(secrets.choice(_ALPHABET) for _ in range(23))}"


def _nest(flat: dict[str, str]) -> dict[str, Any]:
    """`metadata[user_id]=x` -> {"metadata": {"user_id": "x"}} (stripe-python's form encoding)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"error": {"type": kind, "message": message}}, status=status)


class FakeStripe:
    """The fake server plus helpers to move intents along and to build signed webhook events."""

    def __init__(self, secret_key: str = FAKE_SECRET_KEY) -> None:
        self.secret_key = secret_key
        self.intents: dict[str, dict[str, Any]] = {}
        self.replays: dict[str, tuple[str, dict[str, Any]]] = {}
        self.requests: list[dict[str, Any]] = []
        self.fail_next = 0
        # Fields the next created intent answers with instead of what was asked (a Stripe
        # account with another currency, a proxy rewriting the amount).
        self.next_reply: dict[str, Any] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None
        app = web.Application()
        app.router.add_post("/v1/payment_intents", self._create)
        app.router.add_get("/v1/payment_intents", self._list)
        self.app = app

    async def start(self) -> str:
        """Listen on a free loopback port; returns the base URL."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    # -- the API ---------------------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.secret_key}"

    def _record(self, request: web.Request, form: dict[str, Any]) -> web.Response | None:
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "idempotency_key": request.headers.get("Idempotency-Key"),
                "user_agent": request.headers.get("User-Agent", ""),
                "client_user_agent": json.loads(request.headers.get("X-Stripe-Client-User-Agent") or "{}"),
                "form": form,
                "query": dict(request.query),
            }
        )
        if not self._authorised(request):
            return _error(401, "invalid_request_error", "Invalid API Key provided")
        if self.fail_next > 0:
            self.fail_next -= 1
            return _error(500, "api_error", "Something went wrong on Stripe's end")
        return None

    async def _create(self, request: web.Request) -> web.Response:
        form = _nest({k: str(v) for k, v in (await request.post()).items()})
        refused = self._record(request, form)
        if refused is not None:
            return refused
        key = request.headers.get("Idempotency-Key")
        if key and key in self.replays:
            first_form, answer = self.replays[key]
            if first_form != json.dumps(form, sort_keys=True):
                return _error(400, "idempotency_error", "Keys for idempotent requests can only be used with the same parameters")
            return web.json_response(answer, headers={"Idempotent-Replayed": "true"})
        try:
            amount = int(form["amount"])
        except (KeyError, ValueError):
            return _error(400, "invalid_request_error", "Missing required param: amount.")
        intent_id = stripe_id("pi")
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "currency": form.get("currency", ""),
            "status": "requires_payment_method",
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(12)}",
            "metadata": form.get("metadata", {}),
            "description": form.get("description"),
            "created": int(time.time()),
            "latest_charge": None,
            "last_payment_error": None,
            "livemode": False,
        }
        intent.update(self.next_reply)
        self.next_reply = {}
        self.intents[intent_id] = intent
        if key:
            self.replays[key] = (json.dumps(form, sort_keys=True), intent)
        return web.json_response(intent)

    async def _list(self, request: web.Request) -> web.Response:
        refused = self._record(request, {})
        if refused is not None:
            return refused
        gte = int(request.query.get("created[gte]", "0"))
        limit = max(1, min(100, int(request.query.get("limit", "10"))))
        newest_first = [i for i in reversed(self.intents.values()) if i["created"] >= gte]
        after = request.query.get("starting_after")
        if after:
            ids = [i["id"] for i in newest_first]
            newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
        page = newest_first[:limit]
        return web.json_response({"object": "list", "url": "/v1/payment_intents", "has_more": len(newest_first) > limit, "data": page})

    # -- moving intents along (what a customer paying would do) ---------------------------------

    def succeed(self, intent_id: str) -> dict[str, Any]:
        """The customer paid: the intent succeeds with its full amount and a charge."""
        intent = self.intents[intent_id]
        intent.update(status="succeeded", amount_received=intent["amount"], latest_charge=stripe_id("ch"))
        return dict(intent)

    def fail(self, intent_id: str, code: str = "card_declined") -> dict[str, Any]:
        """An attempt failed; the intent waits for another payment method."""
        intent = self.intents[intent_id]
        intent.update(status="requires_payment_method", last_payment_error={"code": code, "decline_code": "insufficient_funds"})
        return dict(intent)

    def add_intent(
        self, amount: int, currency: str = "inr", metadata: dict[str, str] | None = None, status: str = "succeeded"
    ) -> dict[str, Any]:
        """An intent created some other way (another product, the dashboard, a forger's account)."""
        intent_id = stripe_id("pi")
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": amount if status == "succeeded" else 0,
            "currency": currency,
            "status": status,
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(12)}",
            "metadata": metadata or {},
            "created": int(time.time()),
            "latest_charge": stripe_id("ch") if status == "succeeded" else None,
            "livemode": False,
        }
        self.intents[intent_id] = intent
        return dict(intent)

    def charge(self, intent_id: str, *, refunded: int | None = None) -> dict[str, Any]:
        """The charge of a succeeded intent, optionally with `refunded` paise refunded."""
        intent = self.intents[intent_id]
        amount = intent["amount"]
        return {
            "id": intent.get("latest_charge") or stripe_id("ch"),
            "object": "charge",
            "amount": amount,
            "amount_refunded": amount if refunded is None else refunded,
            "refunded": refunded is None or refunded >= amount,
            "currency": intent["currency"],
            "payment_intent": intent_id,
            "status": "succeeded",
            "billing_details": {"email": "payer@example.com", "name": "Payer Name"},
            "metadata": {},
        }

    def dispute(self, intent_id: str) -> dict[str, Any]:
        """A dispute opened against a succeeded intent's charge."""
        intent = self.intents[intent_id]
        return {
            "id": stripe_id("dp"),
            "object": "dispute",
            "amount": intent["amount"],
            "currency": intent["currency"],
            "charge": intent.get("latest_charge"),
            "payment_intent": intent_id,
            "reason": "fraudulent",
            "status": "needs_response",
        }


def event(event_type: str, obj: dict[str, Any], event_id: str | None = None, created: int | None = None) -> dict[str, Any]:
    """A Stripe webhook event (snapshot payload) around `obj`."""
    return {
        "id": event_id or stripe_id("evt"),
        "object": "event",
        "api_version": "2025-01-27.acacia",
        "created": created or int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header Stripe sends: t=<unix time>,v1=<hex HMAC-SHA256>."""
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


def signed(evt: dict[str, Any], secret: str, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of a webhook delivery of `evt`, signed with `secret`."""
    body = json.dumps(evt).encode()
    return body, {"Stripe-Signature": sign(body, secret, timestamp), "Content-Type": "application/json; charset=utf-8"}
