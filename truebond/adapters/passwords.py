"""Password hashing with argon2id (argon2-cffi)."""

from __future__ import annotations

import asyncio
import weakref

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2 costs tens of milliseconds of CPU and ~19 MiB per call, and logins need no account:
# on the event loop a stream of them would stall every request and socket of the process. The
# async methods run it in worker threads (argon2-cffi releases the GIL), a few at a time.
MAX_CONCURRENT = 4


class Passwords:
    """Hash and check passwords; checking an unknown account costs the same as a known one."""

    def __init__(self, time_cost: int = 2, memory_cost: int = 19456) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=1)
        self._dummy = self._hasher.hash("timing-equaliser-not-a-password")
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()

    def hash(self, password: str) -> str:
        """An argon2id hash of `password` (blocking: use `hash_async` from a coroutine)."""
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether `password` matches; with no hash, burn the same time and say no (blocking)."""
        try:
            return self._hasher.verify(stored_hash or self._dummy, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _gate(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(MAX_CONCURRENT)
        return gate

    async def hash_async(self, password: str) -> str:
        """`hash` in a worker thread, off the event loop."""
        async with self._gate():
            return await asyncio.to_thread(self.hash, password)

    async def verify_async(self, stored_hash: str | None, password: str) -> bool:
        """`verify` in a worker thread, off the event loop."""
        async with self._gate():
            return await asyncio.to_thread(self.verify, stored_hash, password)
