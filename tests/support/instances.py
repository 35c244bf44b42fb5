"""Several server instances of one deployment: own aiohttp app and SocketServer each, one Redis, one database.

`instances()` starts as many as a test asks for over the test's settings, database and clock,
each listening on the Socket.IO Redis channel before it is handed out, so an emit or a
revocation published by one reaches the sockets of every other from the first moment. Use:

    from tests.support import instances as instance_support
    instances = instance_support.instances

    async def test_x(instances: Instances) -> None:
        a, b = await instances.start(2)
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import attrs
import pytest
import redis.asyncio as aioredis

from tests.support.network import free_port
from tests.support.sockets import base_url
from truebond import bootstrap
from truebond.adapters.socket_emitter import CHANNEL
from truebond.api.sockets import SocketLifecycle, SocketServer
from truebond.clock import Clock
from truebond.config import VARIABLES, Settings

LISTEN_TIMEOUT_SECONDS = 10.0
PROCESS_START_SECONDS = 30.0

F = TypeVar("F")
Lifecycle = Callable[[Any, Clock], list[SocketLifecycle]]


@attrs.define
class Instance:
    """One running server: its runtime and an HTTP client on its real local port."""

    runtime: bootstrap.Runtime
    client: Any

    @property
    def url(self) -> str:
        """http://host:port of this instance (for Socket.IO clients)."""
        return base_url(self.client)

    @property
    def sockets(self) -> SocketServer:
        """This instance's Socket.IO server."""
        server = self.runtime.unit.notifier
        assert isinstance(server, SocketServer)
        return server

    def follower(self, kind: type[F]) -> F:
        """This instance's socket lifecycle follower of class `kind`."""
        return next(f for f in self.sockets.lifecycle if isinstance(f, kind))

    def local_sids(self) -> set[str]:
        """The Socket.IO connections this instance holds right now."""
        return {sid for sid, _ in self.sockets.sio.manager.get_participants("/", None)}


class Instances:
    """Starts instances sharing the test's Redis and database; closes them at the end."""

    def __init__(self, settings: Settings, db: Any, clock: Clock, aiohttp_client: Any) -> None:
        self._settings = settings
        self._db = db
        self._clock = clock
        self._aiohttp_client = aiohttp_client
        self.running: list[Instance] = []

    async def start(self, count: int = 1, *, lifecycle: Lifecycle | None = None) -> list[Instance]:
        """Start `count` more instances (with `lifecycle` followers instead of bootstrap's, if given)."""
        started: list[Instance] = []
        for _ in range(count):
            started.append(await self._start_one(lifecycle))
        await self._listening(len(self.running))
        return started

    async def _start_one(self, lifecycle: Lifecycle | None) -> Instance:
        original = bootstrap._socket_lifecycle
        if lifecycle is not None:
            bootstrap._socket_lifecycle = lifecycle
        try:
            runtime = await bootstrap.build(self._settings, db=self._db, clock=self._clock, fast_hashing=True)
        finally:
            bootstrap._socket_lifecycle = original
        if not self.running:
            await bootstrap.ensure_indexes(runtime.unit)
        instance = Instance(runtime=runtime, client=await self._aiohttp_client(bootstrap.web_app(runtime)))
        self.running.append(instance)
        return instance

    async def _listening(self, count: int) -> None:
        """Wait until at least `count` servers subscribe to the Socket.IO channel."""
        client = aioredis.from_url(self._settings.redis_url)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + LISTEN_TIMEOUT_SECONDS
            while True:
                numsub = await client.pubsub_numsub(CHANNEL)
                if numsub and int(numsub[0][1]) >= count:
                    return
                if loop.time() > deadline:
                    raise AssertionError(f"only {numsub} servers listen on {CHANNEL}")
                await asyncio.sleep(0.02)
        finally:
            await client.aclose()

    async def close(self) -> None:
        """Close every instance's clients (the aiohttp fixture closes the apps)."""
        for instance in reversed(self.running):
            await instance.client.close()
            await instance.runtime.close()
        self.running.clear()


@pytest.fixture
async def instances(settings: Settings, db: Any, clock: Clock, aiohttp_client: Any) -> AsyncIterator[Instances]:
    """Start server instances sharing one real Redis and one database (closed at the end)."""
    made = Instances(settings, db, clock, aiohttp_client)
    yield made
    await made.close()


class ServerProcess:
    """`truebond dev` in a subprocess on the test's Redis (its own in-memory database): a server to kill."""

    def __init__(self, redis_url: str, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in VARIABLES and not k.startswith("TRUEBOND_")}
        env.update({"PYTHONUNBUFFERED": "1", "REDIS_URL": redis_url, "MONGO_URL": f"mongomock://proc{uuid.uuid4().hex[:8]}"})
        self._log = (log_dir / f"server-{self.port}.log").open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "truebond", "dev", "--port", str(self.port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    async def ready(self) -> None:
        """Wait until the server answers its health check."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PROCESS_START_SECONDS
        async with aiohttp.ClientSession() as session:
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(f"server exited with {self.proc.returncode}")
                try:
                    async with session.get(self.url + "/api/health") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if loop.time() > deadline:
                    raise AssertionError("server did not start")
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: the process ends at once, without a word to Redis or its clients."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """End the process if it still runs."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


@pytest.fixture
def server_process(redis_url: str, tmp_path: Path) -> Iterator[Callable[[], ServerProcess]]:
    """Start `truebond dev` subprocesses on the test's Redis; each is stopped at the end."""
    made: list[ServerProcess] = []

    def make() -> ServerProcess:
        made.append(ServerProcess(redis_url, tmp_path))
        return made[-1]

    yield make
    for proc in made:
        proc.stop()
