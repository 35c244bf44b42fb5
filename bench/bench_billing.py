"""Call billing: how many concurrent metered calls one billing worker sustains with tick lateness p99 < 1 s.

Run: .venv/bin/python bench/bench_billing.py   (TRUEBOND_BENCH_MONGO_URL=mongodb://... for a real MongoDB,
TRUEBOND_BENCH_REDIS_URL=redis://... for a given Redis; otherwise a private redis-server)

CALLS connected calls are made through the real commands (ring, accept, first minute charged);
then one `BillingWorker` (the code `truebond bill` runs, pushes going out through the Redis
channel) bills them on a clock that runs SPEED times faster than the wall clock. A call then
starts a minute every 60/SPEED real seconds, so CALLS calls at SPEED load the worker exactly as
CALLS x SPEED real calls would: that product is the "equivalent concurrent calls" of each level.
Lateness is how long after its minute began a tick was claimed, in real seconds. Each level is
sustained when p99 lateness < 1 s and the worker kept up with the ticks that fell due.

The baseline, measured in the same run on the same Redis, is a bare loop of the same schedule
claims and releases (claim what is due, release it a minute later) with no charge, no event and
no push: what the schedule alone would allow.
Receivers' user documents are written straight into the users read model (a bench shortcut:
signups would dominate the set-up time); everything billed goes through the commands.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import redis
from common import Result, database, scale, table, tiny

from truebond import bootstrap
from truebond.adapters.billing_schedule import BillingSchedule
from truebond.adapters.redis_client import free_port
from truebond.commands.bus import Context
from truebond.commands.calls import AcceptCall, InitiateCall
from truebond.commands.ledger import credit
from truebond.config import load_settings
from truebond.events.base import Meta
from truebond.events.ledger import ReferralRewardGranted
from truebond.logging import configure_logging
from truebond.workers.billing import BillingWorker

CALLS = int(os.environ.get("BENCH_CALLS", "0")) or scale(100, 4)
SPEEDS = [60.0] if tiny() else [float(s) for s in os.environ.get("BENCH_SPEEDS", "5,10,15,20,40").split(",")]
LEVEL_S = 1.5 if tiny() else 12.0
# mongomock works on the event loop's thread: more tasks in flight only queue Redis connects behind it.
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "0")) or (32 if os.environ.get("TRUEBOND_BENCH_MONGO_URL") else 4)
JWT = "bench-jwt-secret-that-is-long-enough-0123456789"
ENV = "TRUEBOND_BENCH_REDIS_URL"


@contextmanager
def redis_url() -> Iterator[tuple[str, str]]:
    """TRUEBOND_BENCH_REDIS_URL, or a private redis-server (a shared one could hold another run's schedule)."""
    url = os.environ.get(ENV)
    if url:
        yield url, f"{url} (from {ENV})"
        return
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        for _ in range(100):
            try:
                redis.Redis.from_url(url).ping()
                break
            except (OSError, redis.RedisError):
                time.sleep(0.05)
        yield url, f"private redis-server on port {port}"
    finally:
        proc.terminate()
        proc.wait(10)


class FastClock:
    """Wall time running `speed` times faster from the moment the speed was set."""

    def __init__(self) -> None:
        self._base = time.time()
        self._perf = time.perf_counter()
        self.speed = 1.0

    def time(self) -> float:
        return self._base + (time.perf_counter() - self._perf) * self.speed

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def set_speed(self, speed: float) -> None:
        self._base, self._perf, self.speed = self.time(), time.perf_counter(), speed

    def jump(self, seconds: float) -> None:
        self._base += seconds


def p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def seed(runtime: bootstrap.Runtime, clock: FastClock) -> list[str]:
    """CALLS connected calls between fresh users (callers with plenty of coins), connected evenly over one minute."""
    unit, bus = runtime.unit, runtime.bus
    calls = []
    for _ in range(CALLS):
        caller, receiver = uuid.uuid4().hex, uuid.uuid4().hex
        for user in (caller, receiver):
            await unit.db["users"].insert_one({"_id": user, "status": "active", "name": "Bench", "profile_pictures": []})
        await credit(
            unit,
            caller,
            1_000_000,
            event_class=ReferralRewardGranted,
            reason="referral",
            reference="bench",
            event_id=f"bench-grant:{caller}",
            meta=Meta(actor="system"),
        )
        call_id = await bus.handle(InitiateCall(caller, receiver, "audio"), Context(actor=f"user:{caller}"))
        await bus.handle(AcceptCall(receiver, call_id), Context(actor=f"user:{receiver}"))
        calls.append(call_id)
        clock.jump(60 / CALLS)
    return calls


async def paid_ticks(runtime: bootstrap.Runtime) -> dict[str, tuple[int, float]]:
    """Per call: minutes paid so far and when it connected (epoch seconds)."""
    docs = await runtime.unit.db["calls"].find({}).to_list(None)
    return {d["_id"]: (int(d.get("paid_ticks", 0)), d["connected_at"].timestamp()) for d in docs}


async def level(runtime: bootstrap.Runtime, clock: FastClock, speed: float) -> tuple[Result, float, int]:
    """Run the worker LEVEL_S real seconds at `speed`; (ticks/s, p99 lateness in real s, ticks that fell due)."""
    late: list[float] = []
    worker = BillingWorker(runtime.bus, on_claim=late.append, concurrency=CONCURRENCY)
    before = await paid_ticks(runtime)
    clock.set_speed(speed)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, poll=0.01, rebuild_every=3600))
    t0 = time.perf_counter()
    await asyncio.sleep(LEVEL_S)
    stop.set()
    await task
    seconds = time.perf_counter() - t0
    end = clock.time()
    after = await paid_ticks(runtime)
    due = sum(int((end - connected) // 60) + 1 - paid for paid, connected in before.values())
    ticks = sum(after[c][0] - paid for c, (paid, _) in before.items())
    name = f"worker, {CALLS} calls x{speed:g} = {int(CALLS * speed):,} equiv. calls"
    return Result(name, ticks, seconds), p99(late) / speed, due


async def baseline(redis: object) -> Result:
    """The same claims and releases with nothing else: claim what is due, release it a minute later."""
    schedule = BillingSchedule(redis, key=f"bench:bill:{uuid.uuid4().hex}")
    now = time.time()
    for i in range(CALLS):
        await schedule.schedule(f"c{i}", now - 1)
    n = 0
    stop = time.perf_counter() + min(LEVEL_S, 5.0)

    async def work() -> int:
        nonlocal n
        while time.perf_counter() < stop:
            claims = await schedule.claim(time.time(), limit=500)
            for claim in claims:
                await schedule.finish(claim, time.time() - 1)  # due again at once: a saturated schedule
                n += 1
        return n

    t0 = time.perf_counter()
    count = await work()
    return Result("baseline: bare Redis claim + release loop", count, time.perf_counter() - t0)


async def main() -> None:
    configure_logging(json=True, level="WARNING")
    with redis_url() as (url, where):
        settings = load_settings("test", {"REDIS_URL": url, "JWT_SECRET": JWT, "STRIPE_WEBHOOK_SECRET": "whsec_bench"})
        clock = FastClock()
        async with database() as db:
            runtime = await bootstrap.build(settings, db=db, clock=clock, fast_hashing=True, sockets=False)
            await runtime.unit.redis.delete("tb:bill:due")
            try:
                await bootstrap.ensure_indexes(runtime.unit)
                t0 = time.perf_counter()
                await seed(runtime, clock)
                seeded = time.perf_counter() - t0
                base = await baseline(runtime.unit.redis)
                rows, lateness = [], []
                print(f"seeded {CALLS} calls in {seeded:.1f} s", file=sys.stderr, flush=True)
                for speed in SPEEDS:
                    row, late, due = await level(runtime, clock, speed)
                    print(f"level x{speed:g}: {row.count} ticks in {row.seconds:.1f} s, p99 {late:.3f} s", file=sys.stderr, flush=True)
                    rows.append(row)
                    lateness.append((row.name, speed, late, due, row.count))
            finally:
                await runtime.close()
    print(table("Call billing: ticks charged per second by one worker (equivalent calls = ticks/s x 60)", rows, base, "ticks"))
    print(f"\nredis: {where}; worker concurrency {CONCURRENCY}; {LEVEL_S:g} s per level")
    print(f"{CALLS} calls seeded through the commands in {seeded:.1f} s")
    print(f"\n{'level':<52} {'ticks due':>10} {'charged':>8} {'p99 late (s)':>13} {'sustained':>10}")
    best = 0
    for name, speed, late, due, charged in lateness:
        ok = late < 1.0 and charged >= due - max(1, CALLS // 100)
        best = max(best, int(CALLS * speed)) if ok else best
        print(f"{name:<52} {due:>10} {charged:>8} {late:>13.3f} {'yes' if ok else 'no':>10}")
    print(f"\nbaseline claims/s: {base.rate:,.0f} (= {base.rate * 60:,.0f} equivalent calls)")
    print(f"sustained with p99 lateness < 1 s: {best:,} concurrent metered calls (goal 10,000)")


if __name__ == "__main__":
    asyncio.run(main())
