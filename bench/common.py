"""Shared pieces of the benchmarks: which MongoDB, a timer, the baseline and the result table.

Every benchmark measures its baseline in the same process against the same database, so the
ratios mean something on any machine; the absolute rates only describe this one.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import attrs

from truebond.clock import SystemClock
from truebond.events.base import GENESIS_HASH
from truebond.events.crypto import SubjectKeys
from truebond.events.store import EventStore

ENV = "TRUEBOND_BENCH_MONGO_URL"
# Set by the test that runs every bench script, so none can rot unnoticed: tiny sizes, same code.
TINY_ENV = "TRUEBOND_BENCH_TINY"


def tiny() -> bool:
    """Whether this run only proves the script still works (TRUEBOND_BENCH_TINY=1)."""
    return os.environ.get(TINY_ENV) == "1"


def scale(normal: int, small: int = 10) -> int:
    """`normal`, or `small` in a tiny run."""
    return small if tiny() else normal


def backend() -> str:
    """Which MongoDB the benchmarks use."""
    url = os.environ.get(ENV)
    return f"real MongoDB ({ENV})" if url else f"mongomock-motor, in memory (set {ENV} for a real MongoDB)"


@asynccontextmanager
async def database() -> AsyncIterator[Any]:
    """A fresh database, dropped afterwards: real MongoDB when TRUEBOND_BENCH_MONGO_URL is set."""
    url = os.environ.get(ENV)
    name = f"truebond_bench_{uuid.uuid4().hex[:10]}"
    if not url:
        from mongomock_motor import AsyncMongoMockClient

        yield AsyncMongoMockClient()[name]
        return
    from motor.motor_asyncio import AsyncIOMotorClient

    client: Any = AsyncIOMotorClient(url, tz_aware=True, serverSelectionTimeoutMS=5000)
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        client.close()


async def event_store(db: Any) -> EventStore:
    """An event store with its indexes, on the wall clock."""
    store = EventStore(db, SubjectKeys(db["subject_keys"]), SystemClock())
    await store.ensure_indexes()
    return store


@attrs.frozen
class Result:
    """One measured row: `count` operations in `seconds`."""

    name: str
    count: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


async def timed(name: str, work: Callable[[], Awaitable[int]]) -> Result:
    """Run `work` (returning how many operations it did) and time it."""
    start = time.perf_counter()
    count = await work()
    return Result(name, count, time.perf_counter() - start)


def baseline_doc(i: int, stream: str = "baseline") -> dict[str, Any]:
    """A document shaped like a stored ledger event (same fields and sizes, no chain or codec)."""
    return {
        "_id": f"baseline:{uuid.uuid4().hex}:{i}",
        "stream": stream,
        "version": i + 1,
        "type": "CoinsDeducted",
        "schema": 1,
        "data": {
            "user_id": "u" * 32,
            "amount": -1,
            "reason": "message",
            "reference": f"msg:{i}",
            "balance_after": 1000 - i,
            "description": "",
        },
        "meta": {"actor": "user:" + "u" * 32, "request_id": None, "causation_id": None},
        "subject": None,
        "at": datetime.now(UTC),
        "prev": GENESIS_HASH,
        "hash": GENESIS_HASH,
    }


async def insert_one_baseline(db: Any, count: int, deadline_s: float, *, indexed: bool = False) -> Result:
    """The baseline: a plain `insert_one` loop of event-like documents into another collection.

    `indexed` gives that collection the store's unique (stream, version) index, to show how much
    of an append's cost is the index rather than the store's own work (codec, hash, checks).
    """
    coll = db[f"baseline_{uuid.uuid4().hex[:8]}"]
    if indexed:
        await coll.create_index([("stream", 1), ("version", 1)], unique=True, name="stream_version")

    async def work() -> int:
        stop = time.perf_counter() + deadline_s
        n = 0
        while n < count and time.perf_counter() < stop:
            await coll.insert_one(baseline_doc(n))
            n += 1
        return n

    name = "insert_one loop + unique (stream, version)" if indexed else "baseline: insert_one loop"
    result = await timed(name, work)
    await db.drop_collection(coll.name)
    return result


def table(title: str, rows: list[Result], baseline: Result, unit: str) -> str:
    """The results as a small fixed-width table, with each rate as a ratio of the baseline's."""
    lines = [title, f"backend: {backend()}", ""]
    header = f"{'what':<44} {'count':>8} {'seconds':>9} {unit + '/s':>14} {'vs baseline':>12}"
    lines += [header, "-" * len(header)]
    for row in [baseline, *rows]:
        ratio = row.rate / baseline.rate if baseline.rate else float("nan")
        lines.append(f"{row.name:<44} {row.count:>8} {row.seconds:>9.3f} {row.rate:>14,.0f} {ratio:>11.2f}x")
    if not os.environ.get(ENV):
        lines += [
            "",
            "note: mongomock checks unique indexes and evaluates every filter (even on _id) by scanning",
            "the whole collection, so indexed writes and guarded updates slow down as collections grow;",
            "on mongomock the ratios mostly measure that, not the store. Use a real MongoDB for numbers.",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(f"bench/common.py is a helper module; backend would be: {backend()}")
