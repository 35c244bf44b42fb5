"""The write-only emitter: a worker without sockets pushes to, and drops, sockets of the web process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.support import sockets as socket_support
from tests.support.accounts import signup
from tests.support.sockets import Listener, base_url
from truebond.adapters.redis_client import connect
from truebond.adapters.socket_emitter import SocketEmitter

listeners = socket_support.listeners


async def test_a_worker_pushes_to_a_users_sockets_and_drops_a_revoked_sessions(
    client: Any, redis_url: str, listeners: Callable[[], Listener]
) -> None:
    user = await signup(client)
    socket = listeners()
    await socket.connect(base_url(client), user["access_token"])
    redis = connect(redis_url)
    emitter = SocketEmitter(redis, redis_url)
    try:
        await emitter.emit_to_user(user["user"]["id"], "balance_updated", {"coins": 7})
        assert await socket.wait_for("balance_updated") == {"coins": 7}
        session_id = user["refresh_token"].split(".")[0]
        await emitter.emit_to_session(session_id, "force_logout", {"reason": "test"})
        assert await socket.wait_for("force_logout") == {"reason": "test"}
        await emitter.disconnect_session(session_id)
        await asyncio.wait_for(socket.gone.wait(), 5)
    finally:
        await emitter.close()
        await redis.aclose()
