"""Event store append throughput: one stream sequentially, and 100 streams concurrently.

Run: .venv/bin/python bench/bench_event_store.py   (TRUEBOND_BENCH_MONGO_URL=mongodb://... for a real MongoDB)

Each append encodes the event, computes the chain hash and inserts one document guarded by the
unique (stream, version) index. The baseline is a plain insert_one loop of documents of the same
shape into another collection of the same database, measured in the same process.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Result, database, event_store, insert_one_baseline, scale, table, timed

from truebond.events.base import Head, Meta
from truebond.events.ledger import CoinsDeducted
from truebond.events.store import EventStore

REAL = bool(os.environ.get("TRUEBOND_BENCH_MONGO_URL"))
SEQUENTIAL = scale(5000 if REAL else 2000)
STREAMS = scale(100, 4)
PER_STREAM = scale(50 if REAL else 20, 3)
DEADLINE_S = 15.0  # per measurement, so the whole script stays well under a minute
META = Meta(actor="system", request_id="bench")


def charge(user: str, i: int) -> CoinsDeducted:
    return CoinsDeducted(user_id=user, amount=-1, reason="message", reference=f"msg:{i}", balance_after=1_000_000 - i)


async def sequential(store: EventStore) -> int:
    """Appends to one stream, each after the head returned by the previous append."""
    head = Head()
    stop = time.perf_counter() + DEADLINE_S
    n = 0
    while n < SEQUENTIAL and time.perf_counter() < stop:
        appended = await store.append("account-bench-seq", head, charge("seq", n), event_id=f"seq:{n}", meta=META)
        head = appended.recorded.head
        n += 1
    return n


async def concurrent(store: EventStore) -> int:
    """One task per stream, all at once; each appends PER_STREAM events to its own stream."""
    stop = time.perf_counter() + DEADLINE_S

    async def writer(s: int) -> int:
        head = Head()
        n = 0
        while n < PER_STREAM and time.perf_counter() < stop:
            appended = await store.append(f"account-bench-{s}", head, charge(str(s), n), event_id=f"par:{s}:{n}", meta=META)
            head = appended.recorded.head
            n += 1
        return n

    return sum(await asyncio.gather(*(writer(s) for s in range(STREAMS))))


async def main() -> None:
    async with database() as db:
        store = await event_store(db)
        baseline = await insert_one_baseline(db, SEQUENTIAL, DEADLINE_S)
        rows: list[Result] = [
            await insert_one_baseline(db, SEQUENTIAL, DEADLINE_S, indexed=True),
            await timed("append, 1 stream, sequential", lambda: sequential(store)),
            await timed(f"append, {STREAMS} streams, {STREAMS} concurrent tasks", lambda: concurrent(store)),
        ]
        total = await db["events"].count_documents({})
        assert total == sum(r.count for r in rows[1:]), "every append stored exactly one event"
    print(table("Event store appends", rows, baseline, "events"))


if __name__ == "__main__":
    asyncio.run(main())
