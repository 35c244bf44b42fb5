"""A Stripe webhook storm: N distinct and M duplicate deliveries at once credit exactly N times.

Run: .venv/bin/python bench/bench_webhook_storm.py   (TRUEBOND_BENCH_MONGO_URL=mongodb://... for a
real MongoDB; BENCH_EVENTS=N, BENCH_DUPLICATES=M to change the sizes)

The app runs on a real local port. The storm is N signed `payment_intent.succeeded` deliveries for
N distinct orders plus M copies of randomly chosen ones (Stripe's retries and replays), shuffled
and posted all at once over CONCURRENCY connections. A delivery Stripe would retry (any answer but
200) is retried, as Stripe does. At the end the store must hold exactly N `CreditsPurchased`
events and each buyer exactly one package's coins, or the script fails.

Rows, same run, same app: the baseline is the signature check alone over the storm's payloads
(what the handler does first); then a storm of N distinct deliveries with no duplicates; then the
storm with duplicates (on fresh orders). The rate is deliveries answered per second.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
from bench_webhooks import JWT, SECRET, buyer, record_orders, serving
from common import Result, database, scale, table, timed

from truebond import bootstrap
from truebond.adapters.stripe_gateway import verify_signature
from truebond.config import load_settings
from truebond.logging import configure_logging

EVENTS = int(os.environ.get("BENCH_EVENTS", "0")) or scale(300, 6)
DUPLICATES = int(os.environ.get("BENCH_DUPLICATES", "0")) or scale(300, 6)
CONCURRENCY = scale(32, 4)
MAX_TRIES = 5

Delivery = tuple[bytes, dict[str, str]]


async def storm(url: str, deliveries: list[Delivery]) -> tuple[int, int]:
    """Post every delivery at once (CONCURRENCY connections), retrying non-200 answers; (200s, retries)."""
    retries = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def deliver(body: bytes, headers: dict[str, str]) -> None:
            nonlocal retries
            for _ in range(MAX_TRIES):
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status == 200:
                        return
                retries += 1
                await asyncio.sleep(0.05)
            raise RuntimeError(f"a delivery was refused {MAX_TRIES} times")

        await asyncio.gather(*(deliver(body, headers) for body, headers in deliveries))
    return len(deliveries), retries


async def credits_of(db: Any, first: int, count: int) -> int:
    """How many CreditsPurchased events the buyers of orders first..first+count-1 got."""
    streams = [f"account-{buyer(n)}" for n in range(first, first + count)]
    return int(await db["events"].count_documents({"type": "CreditsPurchased", "stream": {"$in": streams}}))


async def main() -> None:
    configure_logging(json=True, level="WARNING")
    settings = load_settings("test", {"REDIS_URL": "embedded://", "JWT_SECRET": JWT, "STRIPE_WEBHOOK_SECRET": SECRET})
    rng = random.Random(7)
    async with database() as db:
        runtime = await bootstrap.build(settings, db=db, fast_hashing=True)
        await bootstrap.ensure_indexes(runtime.unit)
        plain = await record_orders(runtime.unit, 0, EVENTS)
        distinct = await record_orders(runtime.unit, EVENTS, EVENTS)
        mixed = distinct + [rng.choice(distinct) for _ in range(DUPLICATES)]
        rng.shuffle(mixed)
        retried: dict[str, int] = {}

        async def verify_work() -> int:
            for body, headers in mixed:
                verify_signature(body, headers["Stripe-Signature"], SECRET, time.time())
            return len(mixed)

        async with serving(runtime) as url:

            async def run(name: str, deliveries: list[Delivery]) -> int:
                answered, retried[name] = await storm(url, deliveries)
                return answered

            baseline = await timed("baseline: signature verification only", verify_work)
            rows: list[Result] = [
                await timed(f"storm: {EVENTS} distinct (c={CONCURRENCY})", lambda: run("plain", plain)),
                await timed(f"storm: {EVENTS} distinct + {DUPLICATES} duplicates (c={CONCURRENCY})", lambda: run("mixed", mixed)),
            ]
            for first in (0, EVENTS):
                credited = await credits_of(db, first, EVENTS)
                assert credited == EVENTS, f"{credited} credits for {EVENTS} distinct orders"
    print(table("Stripe webhook storm: deliveries answered per second", rows, baseline, "deliveries"))
    print()
    print(
        f"credits: exactly {EVENTS} per storm ({EVENTS} distinct + {DUPLICATES} duplicates); "
        f"retried answers: {retried['plain']} without duplicates, {retried['mixed']} with"
    )


if __name__ == "__main__":
    asyncio.run(main())
