"""Stripe webhook throughput: verified, credited `payment_intent.succeeded` deliveries per second.

Run: .venv/bin/python bench/bench_webhooks.py   (TRUEBOND_BENCH_MONGO_URL=mongodb://... for a real MongoDB,
BENCH_EVENTS=N to change how many events)

The app runs on a real local port; each delivery is a distinct event for a distinct order, signed
with Stripe's scheme, sent over HTTP by CONCURRENCY workers. A delivery counts when it answers 200
and, at the end, every counted delivery must have produced exactly one `CreditsPurchased` event.
The baseline, measured in the same process on the same payloads, is the signature check alone
(`verify_signature`, what the handler does before anything else). A second row redelivers the
same events (Stripe retries): verified, recognised as done, nothing credited again.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
import stripe
from aiohttp import web
from common import Result, database, scale, table, timed

from truebond import bootstrap
from truebond.adapters.redis_client import free_port
from truebond.adapters.stripe_gateway import verify_signature
from truebond.commands import payments
from truebond.commands.bus import Context
from truebond.config import load_settings
from truebond.logging import configure_logging

REAL = bool(os.environ.get("TRUEBOND_BENCH_MONGO_URL"))
EVENTS = int(os.environ.get("BENCH_EVENTS", "0")) or scale(2000 if REAL else 600, 8)
CONCURRENCY = scale(16, 2)
DEADLINE_S = 20.0  # per measurement, so the whole script stays around a minute at most
SECRET = "whsec_bench_secret_0123456789abcdef"
JWT = "bench-jwt-secret-that-is-long-enough-0123456789"


def signed_delivery(n: int, intent: str, user: str, payment_id: str, package: payments.Package) -> tuple[bytes, dict[str, str]]:
    """A signed `payment_intent.succeeded` delivery for one order."""
    body = json.dumps(
        {
            "id": f"evt_bench{n:010d}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "livemode": False,
            "data": {
                "object": {
                    "id": intent,
                    "object": "payment_intent",
                    "amount": package.amount,
                    "amount_received": package.amount,
                    "currency": "inr",
                    "status": "succeeded",
                    "metadata": {"user_id": user, "package_id": package.id, "payment_id": payment_id},
                    "latest_charge": f"ch_bench{n:010d}",
                }
            },
        }
    ).encode()
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET)
    return body, {"Stripe-Signature": header, "Content-Type": "application/json"}


def buyer(n: int) -> str:
    """The user id of order number `n`."""
    return f"{n:032d}"


async def record_orders(unit: Any, first: int, count: int) -> list[tuple[bytes, dict[str, str]]]:
    """Record `count` starter-package orders numbered from `first`; their signed success deliveries."""
    package = payments.PACKAGES["starter"]
    deliveries = []
    for n in range(first, first + count):
        user, intent, payment_id = buyer(n), f"pi_bench{n:016d}", f"p{n:031d}"
        meta = Context(actor="system").meta()
        await payments.record_order(unit, intent_id=intent, payment_id=payment_id, user_id=user, package=package, meta=meta)
        deliveries.append(signed_delivery(n, intent, user, payment_id, package))
    return deliveries


@asynccontextmanager
async def serving(runtime: bootstrap.Runtime) -> AsyncIterator[str]:
    """The app on a free local port (closed, with the runtime, at the end); yields the webhook URL."""
    runner = web.AppRunner(bootstrap.web_app(runtime), access_log=None)
    await runner.setup()
    port = free_port()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield f"http://127.0.0.1:{port}/api/webhooks/stripe"
    finally:
        await runner.cleanup()
        await runtime.close()


async def deliver_all(url: str, deliveries: list[tuple[bytes, dict[str, str]]]) -> int:
    """Post every delivery with CONCURRENCY workers until done or the deadline; returns 200s."""
    stop = time.perf_counter() + DEADLINE_S
    queue = list(reversed(deliveries))
    ok = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def worker() -> None:
            nonlocal ok
            while queue and time.perf_counter() < stop:
                body, headers = queue.pop()
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"webhook answered {resp.status}")
                    ok += 1

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return ok


async def main() -> None:
    configure_logging(json=True, level="WARNING")
    settings = load_settings("test", {"REDIS_URL": "embedded://", "JWT_SECRET": JWT, "STRIPE_WEBHOOK_SECRET": SECRET})
    async with database() as db:
        runtime = await bootstrap.build(settings, db=db, fast_hashing=True)
        unit = runtime.unit
        await bootstrap.ensure_indexes(unit)
        deliveries = await record_orders(unit, 0, EVENTS)

        def verify_only() -> int:
            stop = time.perf_counter() + DEADLINE_S
            n = 0
            for body, headers in deliveries:
                if time.perf_counter() >= stop:
                    break
                verify_signature(body, headers["Stripe-Signature"], SECRET, time.time())
                n += 1
            return n

        async def verify_work() -> int:
            return verify_only()

        async with serving(runtime) as url:
            baseline = await timed("baseline: signature verification only", verify_work)
            credited = await timed(f"webhook over HTTP, verified + credited (c={CONCURRENCY})", lambda: deliver_all(url, deliveries))
            done = deliveries[: credited.count]
            duplicates = await timed(f"same events redelivered, no-op (c={CONCURRENCY})", lambda: deliver_all(url, done))
            credits = await db["events"].count_documents({"type": "CreditsPurchased"})
            assert credits == credited.count, f"{credits} credits for {credited.count} verified deliveries"
    rows: list[Result] = [credited, duplicates]
    print(table("Stripe webhooks: verified and credited per second", rows, baseline, "events"))
    print()
    print(
        f"credited webhooks/s: {credited.rate:,.0f}   signature checks/s: {baseline.rate:,.0f}   ratio: {credited.rate / baseline.rate:.4f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
