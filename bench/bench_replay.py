"""Projection replay speed: `Projections.replay()` over a ledger history, in events per second.

Run: .venv/bin/python bench/bench_replay.py   (TRUEBOND_BENCH_MONGO_URL=mongodb://... for a real MongoDB)

The history is written with `store.append` directly (no inline apply): ACCOUNTS account streams
of ledger events. Replay rebuilds every read model into fresh collections and swaps them in; for
ledger events that is the `balances` view (one guarded update per event, on a document per
account) and `credit_transactions` (one upsert per event). The baseline is a plain insert_one loop
of event-like documents into another collection of the same database, in the same process.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import backend, database, event_store, insert_one_baseline, scale, table, timed

from truebond.events.base import Head, Meta
from truebond.events.ledger import CoinsDeducted, SignupBonusGranted
from truebond.events.store import EventStore
from truebond.projections.catalog import ALL_VIEWS
from truebond.projections.inline import Projections
from truebond.projections.ledger import coins

REAL = bool(os.environ.get("TRUEBOND_BENCH_MONGO_URL"))
ACCOUNTS = scale(100, 3)
PER_ACCOUNT = scale(100 if REAL else 50, 3)  # 10,000 events on MongoDB, 5,000 in memory
GENERATE_DEADLINE_S = 15.0  # the replay of what is written takes about as long again


async def generate(store: EventStore) -> int:
    """Write the history: per account a signup bonus, then one-coin charges; streams in parallel."""
    meta = Meta(actor="system", request_id="bench")
    stop = time.perf_counter() + GENERATE_DEADLINE_S

    async def account(a: int) -> int:
        user = f"user{a:04d}"
        stream = f"account-{user}"
        head = Head()
        balance = PER_ACCOUNT
        bonus = SignupBonusGranted(user_id=user, amount=balance, reason="signup_bonus", reference=f"user:{user}", balance_after=balance)
        head = (await store.append(stream, head, bonus, event_id=f"signup-bonus:{user}", meta=meta)).recorded.head
        n = 1
        while n < PER_ACCOUNT and time.perf_counter() < stop:
            balance -= 1
            event = CoinsDeducted(user_id=user, amount=-1, reason="message", reference=f"msg:{a}:{n}", balance_after=balance)
            head = (await store.append(stream, head, event, event_id=f"msg:{a}:{n}", meta=meta)).recorded.head
            n += 1
        return n

    return sum(await asyncio.gather(*(account(a) for a in range(ACCOUNTS))))


async def main() -> None:
    async with database() as db:
        store = await event_store(db)
        projections = Projections(db, store, ALL_VIEWS)
        written = await timed("(setup) store.append, 100 streams", lambda: generate(store))
        baseline = await insert_one_baseline(db, written.count, 30.0)
        replay = await timed(f"replay, all read models, {written.count} events", projections.replay)

        assert replay.count == written.count, "replay read every event"
        assert await db["credit_transactions"].count_documents({}) == written.count
        assert await db["balances"].count_documents({}) == ACCOUNTS
        last = f"user{ACCOUNTS - 1:04d}"
        expected = PER_ACCOUNT - (await db["events"].count_documents({"stream": f"account-{last}"}) - 1)
        assert await coins(db, last) == expected, "balances equal the last balance_after"
    print(table("Projection replay", [replay], baseline, "events"))
    print(f"\n(setup) history written at {written.rate:,.0f} events/s; backend: {backend()}")


if __name__ == "__main__":
    asyncio.run(main())
