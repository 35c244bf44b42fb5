"""The one place that talks to Stripe: PaymentIntents through stripe-python's async client, and
webhook signature checks (HMAC-SHA256 of "{timestamp}.{payload}" with the whsec secret).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import attrs
import stripe

from truebond.errors import DomainError, InfrastructureError
from truebond.logging import get_logger

log = get_logger(__name__)

SIGNATURE_TOLERANCE_SECONDS = 300
LIST_PAGE_SIZE = 100


class GatewayError(InfrastructureError):
    """Stripe could not be reached or refused the request (the message never holds secrets)."""


class SignatureError(DomainError):
    """A webhook's signature is missing, wrong, or its timestamp is outside the tolerance."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.frozen
class CreatedIntent:
    """What the server needs from a new PaymentIntent."""

    id: str
    client_secret: str
    amount: int
    currency: str
    status: str


@attrs.frozen
class IntentFacts:
    """What Stripe says about a PaymentIntent: the facts a credit decision is checked against."""

    intent_id: str
    amount: int
    currency: str
    status: str
    amount_received: int | None = None
    metadata: Mapping[str, str] = attrs.field(factory=dict)
    charge_id: str | None = None
    created: int = 0


class PaymentGateway(Protocol):
    """The Stripe operations the commands use."""

    async def create_intent(
        self, *, amount: int, currency: str, metadata: Mapping[str, str], idempotency_key: str, description: str
    ) -> CreatedIntent:
        """Create a PaymentIntent; the same idempotency key returns the same intent."""
        ...

    def succeeded_intents(self, created_gte: int) -> AsyncIterator[IntentFacts]:
        """Every succeeded PaymentIntent created at or after `created_gte` (epoch seconds)."""
        ...

    async def close(self) -> None:
        """Release the HTTP session."""
        ...


class StripeGateway:
    """PaymentGateway over stripe-python's StripeClient with its aiohttp HTTP client.

    `api_base` (from `--stripe-api-base`) points the client at stripe-mock or a local fake.
    """

    def __init__(self, secret_key: str, api_base: str | None = None, *, timeout: float = 20.0, max_network_retries: int = 2) -> None:
        self._http = stripe.AIOHTTPClient(timeout=timeout)
        base: dict[str, str] = {}
        if api_base:
            base = {"api": api_base.rstrip("/")}
        self._client = stripe.StripeClient(
            secret_key,
            http_client=self._http,
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=max_network_retries,
        )

    async def create_intent(
        self, *, amount: int, currency: str, metadata: Mapping[str, str], idempotency_key: str, description: str
    ) -> CreatedIntent:
        """POST /v1/payment_intents with a Stripe Idempotency-Key (retries reuse it)."""
        try:
            intent = await self._client.v1.payment_intents.create_async(
                params={
                    "amount": amount,
                    "currency": currency,
                    "metadata": dict(metadata),
                    "description": description,
                    "automatic_payment_methods": {"enabled": True},
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            log.warning("stripe.create_intent_failed", error=type(exc).__name__, http_status=exc.http_status)
            raise GatewayError(type(exc).__name__) from None
        if not intent.client_secret:
            raise GatewayError("PaymentIntent without client_secret")
        return CreatedIntent(intent.id, intent.client_secret, intent.amount, intent.currency, intent.status)

    async def succeeded_intents(self, created_gte: int) -> AsyncIterator[IntentFacts]:
        """List PaymentIntents created since `created_gte`, page by page, keeping succeeded ones."""
        try:
            page = await self._client.v1.payment_intents.list_async(params={"created": {"gte": created_gte}, "limit": LIST_PAGE_SIZE})
            async for intent in page.auto_paging_iter():
                if intent.status == "succeeded":
                    yield facts_of(intent.to_dict())
        except stripe.StripeError as exc:
            log.warning("stripe.list_intents_failed", error=type(exc).__name__, http_status=exc.http_status)
            raise GatewayError(type(exc).__name__) from None

    async def close(self) -> None:
        """Close the aiohttp session the Stripe client opened (if it opened one)."""
        if getattr(self._http, "_cached_session", None) is not None:
            await self._http.close_async()  # type: ignore[no-untyped-call]


def facts_of(intent: Mapping[str, Any]) -> IntentFacts:
    """IntentFacts from a payment_intent as a plain dict (`PaymentIntent.to_dict()` or JSON)."""
    charge = intent.get("latest_charge")
    if isinstance(charge, Mapping):
        charge = charge.get("id")
    metadata = intent.get("metadata") or {}
    return IntentFacts(
        intent_id=str(intent["id"]),
        amount=int(intent["amount"]),
        currency=str(intent["currency"]).lower(),
        status=str(intent.get("status") or ""),
        amount_received=None if intent.get("amount_received") is None else int(intent["amount_received"]),
        metadata={str(k): str(v) for k, v in metadata.items()},
        charge_id=None if charge is None else str(charge),
        created=int(intent.get("created") or 0),
    )


def verify_signature(payload: bytes, header: str | None, secret: str, now: float, tolerance: int = SIGNATURE_TOLERANCE_SECONDS) -> int:
    """Check a `Stripe-Signature` header against the raw body; returns the signed timestamp.

    The HMAC comparison is stripe-python's (`WebhookSignature.verify_header`, any `v1` entry may
    match, so secret rotation works); the timestamp is checked here against the server's clock,
    in both directions. No secret configured means nothing verifies: checking is never skipped.
    """
    if not secret.strip():
        raise SignatureError("no_secret_configured")
    if not header:
        raise SignatureError("missing_header")
    timestamp = _timestamp(header)
    try:
        stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=None)
    except stripe.SignatureVerificationError:
        raise SignatureError("bad_signature") from None
    except UnicodeDecodeError:
        raise SignatureError("undecodable_body") from None
    if abs(now - timestamp) > tolerance:
        raise SignatureError("stale_timestamp")
    return timestamp


def _timestamp(header: str) -> int:
    stamps = [part.split("=", 1)[1] for part in header.split(",") if part.strip().startswith("t=")]
    if len(stamps) != 1 or not stamps[0].strip().isdigit():
        raise SignatureError("malformed_header")
    return int(stamps[0].strip())
