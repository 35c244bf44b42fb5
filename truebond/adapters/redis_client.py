"""The Redis connection, and an in-process Redis server for `truebond dev`."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from truebond.logging import get_logger

log = get_logger(__name__)

SOCKET_TIMEOUT_SECONDS = 2.0


def connect(url: str) -> aioredis.Redis:
    """An asyncio Redis client with short timeouts, so a dead server fails fast."""
    client: aioredis.Redis = aioredis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        health_check_interval=15,
    )
    return client


class LuaScript:
    """A Lua script run with EVALSHA once Redis has seen it, EVAL the first time or after a flush.

    (Not SCRIPT LOAD: the same code then runs on dev's in-process Redis, which drops the
    connection after a NOSCRIPT answer.)
    """

    def __init__(self, redis: aioredis.Redis, source: str) -> None:
        self._redis = redis
        self._source = source
        self._sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1
        self._cached = False

    @property
    def sha(self) -> str:
        """The script's SHA-1, as EVALSHA names it."""
        return self._sha

    async def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run the script with KEYS and ARGV."""
        if self._cached:
            try:
                return await self._redis.evalsha(self._sha, len(keys), *keys, *args)
            except NoScriptError:
                self._cached = False
        result = await self._redis.eval(self._source, len(keys), *keys, *args)
        self._cached = True
        return result


def free_port() -> int:
    """A TCP port on the loopback interface nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class EmbeddedRedis:
    """fakeredis' TCP server in a thread: a Redis that lives inside the dev process."""

    def __init__(self) -> None:
        from fakeredis import TcpFakeServer

        self.port = free_port()
        self._server: Any = TcpFakeServer(("127.0.0.1", self.port), server_type="redis")
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-redis", daemon=True)

    @property
    def url(self) -> str:
        """The redis:// URL clients use."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        """Start serving and return the URL."""
        self._thread.start()
        log.info("embedded_redis.started", port=self.port)
        return self.url

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
