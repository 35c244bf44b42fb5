"""A crash between an append and its reaction loses nothing: the reactions follower re-runs it.

The process "dies" right after the logout's `SessionRevoked` is stored and projected, before its
reactions run (the bus's `react` is replaced by one that kills the task, as a SIGKILL would
leave it: the event is in the store, nothing after it happened). The revoked session's socket is
still up and its access token still passes the allow-list. Then the reactions follower — what
`truebond project` runs — reads the store from its checkpoint and runs the reaction once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import sockets as socket_support
from tests.support.accounts import auth, signup
from tests.support.sockets import Listener, base_url
from truebond.bootstrap import Runtime
from truebond.commands.bus import Bus, Context
from truebond.events.base import Recorded
from truebond.workers.reactions import reactions_follower

listeners = socket_support.listeners


class ProcessDied(BaseException):
    """Stands for the process being killed: nothing after this point runs."""


async def test_a_revocation_lost_to_a_crash_reaches_the_socket_once_the_follower_runs(
    client: Any, runtime: Runtime, listeners: Callable[[], Listener], monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await signup(client)
    token = user["access_token"]
    session_id = user["refresh_token"].split(".")[0]
    socket = listeners()
    await socket.connect(base_url(client), token)
    follower = reactions_follower(runtime.bus)
    await follower.run_once()  # the history so far is done: the follower's checkpoint is now

    async def die(self: Bus, rec: Recorded, ctx: Context, *, redrive_only: bool = False) -> None:
        raise ProcessDied()

    with monkeypatch.context() as patch:
        patch.setattr(Bus, "react", die)
        with pytest.raises(ProcessDied):
            await runtime.bus.handle(_logout(runtime, user), Context(actor=f"user:{user['user']['id']}"))

    stored = await runtime.unit.db["events"].find_one({"stream": f"session-{session_id}", "type": "SessionRevoked"})
    assert stored is not None  # the event survived the crash...
    await asyncio.sleep(0.3)
    assert socket.sio.connected  # ...but its reaction did not run: the socket is still up
    assert await runtime.unit.sessions.owner(session_id) is not None

    assert await follower.run_once() >= 1
    await asyncio.wait_for(socket.gone.wait(), 5)
    assert await runtime.unit.sessions.owner(session_id) is None
    assert (await client.get("/api/auth/me", headers=auth(token))).status == 401
    # Once is enough: a second pass finds nothing new to do.
    assert await follower.run_once() == 0


def _logout(runtime: Runtime, user: dict[str, Any]) -> Any:
    """The logout command of the identity area for this user's session."""
    from truebond.commands import identity

    return identity.Logout(user_id=user["user"]["id"], session_id=user["refresh_token"].split(".")[0])
