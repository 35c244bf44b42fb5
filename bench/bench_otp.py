"""OTP verification throughput against a real Redis, next to one Redis round trip per verify.

Run: .venv/bin/python bench/bench_otp.py
     (TRUEBOND_BENCH_REDIS_URL=redis://host:port/db; default redis://127.0.0.1:6379/15, and a
     private redis-server on a free port when nothing answers there)

A verification is `OtpStore.verify`: one EVALSHA of a Lua script that checks the per-IP window,
the purpose lock, expiry, the HMAC, counts the try and uses the code up, atomically. Each
verification presents the right code for its own email from its own IP, so every one takes the
full path to "ok". The baseline is one Redis round trip (GET) per verification, measured in the
same process against the same server. Both run sequentially and with 50 concurrent tasks.
Keys live under a random prefix and are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import redis
import redis.asyncio as aioredis
from common import Result, scale, timed

from truebond.adapters.otp_store import OtpStore, derive_key
from truebond.clock import SystemClock
from truebond.commands.identity import digest as email_hash

ENV = "TRUEBOND_BENCH_REDIS_URL"
DEFAULT_URL = "redis://127.0.0.1:6379/15"
COUNT = scale(5000, 20)
CONCURRENCY = scale(50, 4)
DEADLINE_S = 10.0  # per measurement: the script stays well under a minute

Op = Callable[[int, str, str], Awaitable[None]]


@contextmanager
def redis_url() -> Iterator[tuple[str, str]]:
    """A reachable Redis: the configured one, the local default, or a private redis-server."""
    url = os.environ.get(ENV, DEFAULT_URL)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        yield url, f"{url} ({'from ' + ENV if ENV in os.environ else 'default'})"
        return
    except (OSError, redis.RedisError):
        if ENV in os.environ or shutil.which("redis-server") is None:
            raise SystemExit(f"no Redis at {url}: start one or set {ENV}") from None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
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


async def prepare(store: OtpStore, n: int, tag: str) -> list[tuple[str, str]]:
    """Store n codes for n emails (not timed); returns (email hash, code) pairs."""
    pairs = []
    for i in range(n):
        ehash = email_hash(f"bench-{tag}-{i}@example.com")
        code = f"{(i * 7919) % 10**6:06d}"
        await store.store_code("login", ehash, code, f"{tag}-{i}")
        pairs.append((ehash, code))
    return pairs


async def run(pairs: list[tuple[str, str]], tasks: int, op: Op) -> int:
    """Call `op(i, ehash, code)` for every pair with `tasks` workers, until done or the deadline."""
    stop = time.perf_counter() + DEADLINE_S
    queue = iter(enumerate(pairs))
    done = 0

    async def worker() -> None:
        nonlocal done
        for i, (ehash, code) in queue:
            if time.perf_counter() > stop:
                return
            await op(i, ehash, code)
            done += 1

    await asyncio.gather(*(worker() for _ in range(tasks)))
    return done


async def measure(url: str) -> list[Result]:
    """(baseline, verify) rows, sequential then concurrent."""
    client = aioredis.from_url(url, decode_responses=True)
    prefix = f"tb:bench-otp:{uuid.uuid4().hex[:8]}:"
    store = OtpStore(client, derive_key("bench-secret-" + "x" * 32), SystemClock(), prefix=prefix)
    await client.set(prefix + "probe", "1")

    async def get(i: int, ehash: str, code: str) -> None:
        await client.get(prefix + "probe")

    async def verify(i: int, ehash: str, code: str) -> None:
        # Its own IP per verify: the 30-per-IP window would otherwise stop the run at 30.
        outcome = await store.verify("login", ehash, code, f"ip-{ehash[:16]}", uuid.uuid4().hex)
        assert outcome.status == "ok", outcome

    rows: list[Result] = []
    try:
        for tasks in (1, CONCURRENCY):
            label = "sequential" if tasks == 1 else f"{tasks} concurrent tasks"
            pairs = await prepare(store, COUNT, str(tasks))
            rows.append(await timed(f"baseline: 1 GET round trip, {label}", partial(run, pairs, tasks, get)))
            rows.append(await timed(f"OtpStore.verify, {label}", partial(run, pairs, tasks, verify)))
    finally:
        keys = [k async for k in client.scan_iter(prefix + "*", count=1000)]
        for first in range(0, len(keys), 500):
            await client.delete(*keys[first : first + 500])
        await client.aclose()
    return rows


def main() -> None:
    with redis_url() as (url, where):
        rows = asyncio.run(measure(url))
    header = f"{'what':<48} {'count':>7} {'seconds':>8} {'verifies/s':>12} {'vs baseline':>12}"
    print("OTP verification throughput (one atomic Lua call per verify)")
    print(f"redis: {where}")
    print()
    print(header)
    print("-" * len(header))
    for base, measured in zip(rows[::2], rows[1::2], strict=True):
        for row in (base, measured):
            print(f"{row.name:<48} {row.count:>7} {row.seconds:>8.3f} {row.rate:>12,.0f} {row.rate / base.rate:>11.2f}x")


if __name__ == "__main__":
    main()
