"""Socket.IO messages per second delivered across two server instances, next to one instance.

Run: .venv/bin/python bench/bench_socket_fanout.py
     (TRUEBOND_BENCH_REDIS_URL=redis://host:port/db; default redis://127.0.0.1:6379/15, and a
     private redis-server on a free port when nothing answers there)

Two web instances (each its own aiohttp app and SocketServer with the AsyncRedisManager) share one
Redis and one in-memory database, on real local ports. USERS accounts each connect one real
python-socketio client (websocket) to instance B. The measured row emits MESSAGES pushes on
instance A (`emit_to_user`, round robin over the users, as chat's reactions do), which reach the
clients on B only through the Redis channel; the baseline, in the same run, emits the same pushes
on B itself (delivered locally). A run ends when every push has arrived (or at the deadline);
the rate is pushes delivered per second. Goal: cross-instance at least 0.5x the single instance.
Servers and clients share this one process (and its event loop), so absolute rates are low.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import socketio
from aiohttp import web
from bench_otp import redis_url
from common import Result, scale, tiny

from truebond import bootstrap
from truebond.commands.bus import Context
from truebond.commands.identity import Signup
from truebond.config import load_settings
from truebond.logging import configure_logging

USERS = scale(10, 2)
MESSAGES = scale(5000, 20)
ROUNDS = 1 if tiny() else 3
DEADLINE_S = 60.0
JWT = "bench-jwt-secret-" + "x" * 32


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Instance:
    """One web instance on a real local port."""

    def __init__(self, runtime: bootstrap.Runtime, runner: web.AppRunner, url: str) -> None:
        self.runtime = runtime
        self.runner = runner
        self.url = url

    async def close(self) -> None:
        await self.runner.cleanup()
        await self.runtime.close()


async def start(settings: Any, db: Any) -> Instance:
    runtime = await bootstrap.build(settings, db=db, fast_hashing=True)
    runner = web.AppRunner(bootstrap.web_app(runtime), access_log=None)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return Instance(runtime, runner, f"http://127.0.0.1:{port}")


class Counter:
    """Counts the pushes every client received."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.done = asyncio.Event()

    def hit(self) -> None:
        self.count += 1
        if self.count >= self.expected:
            self.done.set()


async def signup(instance: Instance, i: int) -> tuple[str, str]:
    """A new account through the bus (no HTTP rate limit); returns (user id, access token)."""
    n = uuid.uuid4().int % 10**9
    cmd = Signup(
        name="Bench User",
        email=f"bench{n}-{i}@example.com",
        mobile_number=f"9{n:09d}"[:10],
        password="correct-horse-1",
        age=27,
        gender="female",
        interested_in="male",
        intent="dating",
        min_age=24,
        max_age=35,
        max_distance_km=25,
    )
    tokens = await instance.runtime.bus.handle(cmd, Context(actor="anonymous"))
    return tokens.user_id, tokens.access_token


async def measure(name: str, emitter: Instance, users: list[str], counter: Counter) -> Result:
    counter.count = 0
    counter.expected = MESSAGES
    counter.done.clear()
    notifier = emitter.runtime.unit.notifier
    started = time.perf_counter()
    for i in range(MESSAGES):
        await notifier.emit_to_user(users[i % len(users)], "message:new", {"n": i, "content": "hello there"})
        if i % 200 == 199:
            await asyncio.sleep(0)  # let the receiving side run, as a busy server would
    try:
        await asyncio.wait_for(counter.done.wait(), DEADLINE_S)
    except TimeoutError:
        pass
    return Result(name, counter.count, time.perf_counter() - started)


async def run(url: str) -> list[tuple[Result, Result]]:
    from mongomock_motor import AsyncMongoMockClient

    settings = load_settings(
        "test",
        {
            "REDIS_URL": url,
            "JWT_SECRET": JWT,
            "FRONTEND_URL": "https://app.truebond.test",
            "BACKEND_URL": "https://api.truebond.test",
        },
    )
    db = AsyncMongoMockClient(tz_aware=True)[f"bench_{uuid.uuid4().hex[:8]}"]
    a = await start(settings, db)
    b = await start(settings, db)
    clients: list[socketio.AsyncClient] = []
    counter = Counter(MESSAGES)
    try:
        await bootstrap.ensure_indexes(a.runtime.unit)
        users: list[str] = []
        for i in range(USERS):
            user_id, token = await signup(a, i)
            client = socketio.AsyncClient(reconnection=False)
            client.on("message:new", lambda data: counter.hit())
            await client.connect(b.url, transports=["websocket"], auth={"token": token}, wait_timeout=10)
            clients.append(client)
            users.append(user_id)
        await asyncio.sleep(0.2)  # both instances listen on the channel
        rows = []
        for _ in range(ROUNDS):
            base = await measure("baseline: emit on B, clients on B", b, users, counter)
            cross = await measure("emit on A, clients on B (via Redis)", a, users, counter)
            rows.append((base, cross))
        return rows
    finally:
        for client in clients:
            await client.disconnect()
        await a.close()
        await b.close()


def main() -> None:
    configure_logging(json=False, level="WARNING")
    with redis_url() as (url, where):
        rows = asyncio.run(run(url))
    print("Socket.IO pushes delivered per second: across two instances vs one (same run)")
    print(f"redis: {where}; {USERS} clients on instance B, {MESSAGES} pushes per row, {ROUNDS} round(s)")
    print()
    header = f"{'what':<40} {'delivered':>9} {'seconds':>8} {'msgs/s':>10} {'ratio':>8}"
    print(header)
    print("-" * len(header))
    for base, cross in rows:
        for row in (base, cross):
            print(f"{row.name:<40} {row.count:>9} {row.seconds:>8.3f} {row.rate:>10,.0f} {row.rate / base.rate:>7.2f}x")


if __name__ == "__main__":
    main()
