"""Chaos tools: a redis-server a test can kill and bring back, and faults injected into MongoDB calls.

`StoppableRedis` is a private redis-server on a fixed port: `kill()` SIGKILLs it (every
connection drops, every key is gone, as after a crash of a Redis without persistence), `pause()`
SIGSTOPs it (connections stay open and nothing answers: a hung server, only timeouts tell),
`start()` brings a fresh one up on the same port, so clients reconnect without being rebuilt.

`FaultyCollection` wraps a motor (or mongomock-motor) collection and, while a `Faults` plan says
so, makes an operation fail the way a MongoDB deployment does: a write refused before it is
applied (`NotPrimaryError` during an election, a `WriteError`), or a write applied whose answer
never arrives (`NetworkTimeout` after the insert: the client cannot tell whether it happened).
"""

from __future__ import annotations

import asyncio
import inspect
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
import redis
from pymongo.errors import NetworkTimeout, NotPrimaryError, WriteError

from tests.support.network import free_port

START_SECONDS = 10.0


class StoppableRedis:
    """A private redis-server on one port that a test stops and restarts."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start a fresh, empty server on the same port and wait until it answers."""
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise AssertionError("redis-server did not start") from None
                time.sleep(0.02)
        client.close()

    def kill(self) -> None:
        """SIGKILL: the server is gone at once, with everything it held."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.proc.kill()
        self.proc.wait(10)

    def pause(self) -> None:
        """SIGSTOP: connections stay open and nothing answers."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause`."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """End the server if it runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def stoppable_redis() -> Iterator[StoppableRedis]:
    """A started StoppableRedis, ended after the test."""
    server = StoppableRedis()
    server.start()
    yield server
    server.stop()


# -- MongoDB faults ---------------------------------------------------------------------------------

# How an injected fault shows: "refused" (nothing written), "lost_answer" (written, then a timeout).
REFUSED = "refused"
LOST_ANSWER = "lost_answer"
READ_TIMEOUT = "read_timeout"


@attrs.define
class Fault:
    """One planned failure: the operation, which calls it matches, how it fails, how many times."""

    op: str
    mode: str
    matches: Callable[[Any], bool] = lambda _: True
    times: int = 1


@attrs.define
class Faults:
    """The plan a FaultyCollection follows, plus an optional random failure rate for every write."""

    planned: list[Fault] = attrs.field(factory=list)
    write_failure_rate: float = 0.0
    rng: random.Random = attrs.field(factory=lambda: random.Random(0))
    injected: list[str] = attrs.field(factory=list)

    def add(self, op: str, mode: str, matches: Callable[[Any], bool] = lambda _: True, times: int = 1) -> None:
        """Plan `times` failures of `op` calls whose argument `matches`."""
        self.planned.append(Fault(op, mode, matches, times))

    def take(self, op: str, arg: Any) -> str | None:
        """The failure mode for this call, if one is due (consumed)."""
        for fault in self.planned:
            if fault.op == op and fault.times > 0 and fault.matches(arg):
                fault.times -= 1
                self.injected.append(f"{op}:{fault.mode}")
                return fault.mode
        if op == "insert_one" and self.write_failure_rate and self.rng.random() < self.write_failure_rate:
            mode = self.rng.choice((REFUSED, LOST_ANSWER))
            self.injected.append(f"{op}:{mode}")
            return mode
        return None


def _refusal(op: str) -> Exception:
    if op == "insert_one":
        return NotPrimaryError("not primary (injected)")
    return WriteError("write refused (injected)", code=11600)


class FaultyCollection:
    """A collection whose calls fail when the Faults plan says so; everything else is the real one."""

    def __init__(self, real: Any, faults: Faults) -> None:
        self._real = real
        self._faults = faults

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def __getitem__(self, name: str) -> Any:
        return self._real[name]

    async def insert_one(self, doc: Any, *args: Any, **kwargs: Any) -> Any:
        """insert_one, or an injected refusal or lost answer."""
        mode = self._faults.take("insert_one", doc)
        if mode == REFUSED:
            raise _refusal("insert_one")
        result = await self._real.insert_one(doc, *args, **kwargs)
        if mode == LOST_ANSWER:
            raise NetworkTimeout("timed out waiting for the write's answer (injected)")
        return result

    async def find_one(self, *args: Any, **kwargs: Any) -> Any:
        """find_one, or an injected read timeout."""
        query = args[0] if args else kwargs.get("filter")
        if self._faults.take("find_one", query) == READ_TIMEOUT:
            raise NetworkTimeout("timed out reading (injected)")
        return await self._real.find_one(*args, **kwargs)


def inject(runtime: Any, faults: Faults) -> Faults:
    """Put `faults` between the runtime's event store and its `events` collection."""
    store = runtime.unit.store
    store.events = FaultyCollection(store.events, faults)
    return faults


# -- a worker process killed with SIGKILL, in-process -------------------------------------------------


class ProcessKilled(BaseException):
    """Raised at the dead process's every later call: nothing it does reaches MongoDB or Redis again."""


@attrs.define
class KillSwitch:
    """Counts a process's MongoDB and Redis calls and kills it at call number `at`.

    The kill falls just before that call (it never happens) or just after it (it happened, the
    process never learns it): as SIGKILL, which can land between any two instructions, leaves
    the shared stores with a prefix of the process's calls. From then on every call raises
    ProcessKilled (a BaseException, so no `except Exception` of the worker goes on), and the
    `finally` blocks that still run cannot write anything either.
    """

    at: int
    after: bool = False
    calls: int = 0
    killed: asyncio.Event = attrs.field(factory=asyncio.Event)

    async def guard(self, pending: Any) -> Any:
        """Await one real call, unless the process is (or is now being) killed."""
        if self.killed.is_set():
            _discard(pending)
            raise ProcessKilled()
        self.calls += 1
        if self.calls == self.at and not self.after:
            self.killed.set()
            _discard(pending)
            raise ProcessKilled()
        result = await pending
        if self.calls >= self.at:
            self.killed.set()
            raise ProcessKilled()
        return result


def _discard(pending: Any) -> None:
    close = getattr(pending, "close", None)
    if close is not None:
        close()


class Killable:
    """A MongoDB database, collection or cursor, or a Redis client, whose calls go through a KillSwitch."""

    def __init__(self, real: Any, switch: KillSwitch) -> None:
        self._real = real
        self._switch = switch

    def __getitem__(self, name: str) -> Killable:
        return Killable(self._real[name], self._switch)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if inspect.isawaitable(result):
                return self._switch.guard(result)
            if hasattr(result, "to_list"):  # a cursor: sort/limit/skip return it again
                return Killable(result, self._switch)
            return result

        return call

    def __aiter__(self) -> Any:
        return self._iterate()

    async def _iterate(self) -> Any:
        iterator = self._real.__aiter__()
        while True:
            try:
                item = await self._switch.guard(iterator.__anext__())
            except StopAsyncIteration:
                return
            yield item
