"""Socket events about rooms. The server alone puts sockets in rooms (at connect); these answer.

`join` {user_id}: the client announces its own id after connecting; nothing changes and nothing
is answered. Any other id is refused with an error ack and logged as a probe (the old server
let any socket join any user's private room). `leave_chat` {room_id}: a no-op.
"""

from __future__ import annotations

import voluptuous as vol

from truebond.api.socket_routing import Ack, SocketReq, SocketRoute
from truebond.api.validation import strict
from truebond.errors import Forbidden
from truebond.logging import get_logger

log = get_logger(__name__)

ID = vol.All(str, vol.Length(min=1, max=64))
JOIN_SCHEMA = strict({vol.Required("user_id"): ID})
LEAVE_SCHEMA = strict({vol.Optional("room_id"): vol.All(str, vol.Length(max=200))})


async def join(req: SocketReq) -> Ack:
    """`join`: the caller's own id is a no-op; another user's id is a probe."""
    if req.payload["user_id"] != req.caller.user_id:
        log.warning("socket.probe", socket_event="join", user_id=req.caller.user_id)
        raise Forbidden("You cannot join another user's room")
    return None


async def leave_chat(req: SocketReq) -> Ack:
    """`leave_chat`: rooms are the server's; nothing to leave."""
    return None


SOCKET_ROUTES = [
    SocketRoute("join", JOIN_SCHEMA, join, summary="Announce the caller's own id (no-op)"),
    SocketRoute("leave_chat", LEAVE_SCHEMA, leave_chat, summary="Leave a chat room (no-op)"),
]
