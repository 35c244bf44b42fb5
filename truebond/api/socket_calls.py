"""Socket events of calls: start, answer, refuse, hang up, and the WebRTC signalling relay.

`call_user` {user_id, call_type, offer} and `call:initiate` {targetUserId, type} start a call
(ack `{success, call_id}`; a refusal also pushes `call_failed` {reason} to the caller's
session). `call:accept`, `call:reject`/`reject_call` and `call:end` are commands on the call.
`offer`, `answer`, `webrtc:ice-candidate` and `call:media-state` change nothing: they are
relayed, size-capped, only from one participant of a live call to the other, never across a block. A socket that
acts on a call it takes no part in gets an error ack and nothing changes.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol

from truebond.api.socket_routing import Ack, SocketReq, SocketRoute
from truebond.api.validation import strict
from truebond.commands.calls import AcceptCall, CallBlocked, CallNotFound, CallOver, EndCall, InitiateCall, RejectCall
from truebond.errors import DomainError, PaymentRequired
from truebond.projections import blocks
from truebond.projections import calls as calls_view

ID = vol.All(str, vol.Length(min=1, max=64))
CALL_TYPE = vol.In(["audio", "voice", "video"])
SDP_MAX = 16 * 1024
SDP = strict(
    {vol.Required("type"): vol.In(["offer", "answer", "pranswer", "rollback"]), vol.Required("sdp"): vol.All(str, vol.Length(max=SDP_MAX))}
)
CANDIDATE = strict(
    {
        vol.Required("candidate"): vol.All(str, vol.Length(max=2048)),
        vol.Optional("sdpMid"): vol.Any(None, vol.All(str, vol.Length(max=64))),
        vol.Optional("sdpMLineIndex"): vol.Any(None, vol.All(int, vol.Range(min=0, max=255))),
        vol.Optional("usernameFragment"): vol.Any(None, vol.All(str, vol.Length(max=256))),
    }
)

CALL_USER = strict(
    {vol.Required("user_id"): ID, vol.Optional("call_type", default="audio"): CALL_TYPE, vol.Optional("offer"): vol.Any(None, SDP)}
)
CALL_INITIATE = strict({vol.Required("targetUserId"): ID, vol.Optional("type", default="audio"): CALL_TYPE})
CALL_ACCEPT = strict({vol.Required("call_id"): ID, vol.Optional("answer"): vol.Any(None, SDP)})
CALL_REJECT = strict({vol.Required("call_id"): ID, vol.Optional("reason", default=""): vol.All(str, vol.Length(max=100))})
CALL_END = strict({vol.Required("call_id"): ID})
OFFER = strict({vol.Required("call_id"): ID, vol.Required("offer"): SDP})
ANSWER = strict({vol.Required("call_id"): ID, vol.Required("answer"): SDP})
ICE = strict({vol.Required("call_id"): ID, vol.Required("candidate"): vol.Any(None, CANDIDATE)})
MEDIA_STATE = strict(
    {vol.Required("call_id"): ID, vol.Required("type"): vol.In(["audio", "video", "screen"]), vol.Required("enabled"): bool}
)

# What `call_failed` says for each refusal code (the client shows it).
FAILED_REASONS = {PaymentRequired.code: "insufficient_credits", "blocked": "blocked", "busy": "busy", "call_not_found": "unavailable"}


async def _start(req: SocketReq, receiver_id: str, call_type: str, offer: dict[str, Any] | None) -> Ack:
    try:
        call_id = await req.bus.handle(InitiateCall(req.caller.user_id, receiver_id, call_type, offer), req.ctx)
    except DomainError as exc:
        reason = FAILED_REASONS.get(exc.code, exc.code)
        await req.unit.notifier.emit_to_session(req.caller.session_id, "call_failed", {"reason": reason, "error": exc.detail})
        raise
    return {"success": True, "call_id": call_id}


async def call_user(req: SocketReq) -> Ack:
    """`call_user`: ring a user (the offer goes with `incoming_call`)."""
    p = req.payload
    return await _start(req, p["user_id"], p["call_type"], p.get("offer"))


async def call_initiate(req: SocketReq) -> Ack:
    """`call:initiate`: the same as `call_user`, without an offer."""
    p = req.payload
    return await _start(req, p["targetUserId"], p["type"], None)


async def call_accept(req: SocketReq) -> Ack:
    """`call:accept`: the receiver answers; the first minute is charged to the caller now."""
    p = req.payload
    doc = await req.bus.handle(AcceptCall(req.caller.user_id, p["call_id"], p.get("answer")), req.ctx)
    return {"success": True, "call_id": p["call_id"], "status": doc["state"]}


async def call_reject(req: SocketReq) -> Ack:
    """`call:reject` / `reject_call`: refuse a ringing call."""
    p = req.payload
    doc = await req.bus.handle(RejectCall(req.caller.user_id, p["call_id"], p["reason"]), req.ctx)
    return {"success": True, "call_id": p["call_id"], "status": doc["state"]}


async def call_end(req: SocketReq) -> Ack:
    """`call:end`: hang up (nothing more is charged)."""
    p = req.payload
    doc = await req.bus.handle(EndCall(req.caller.user_id, p["call_id"]), req.ctx)
    return {"success": True, "call_id": p["call_id"], "duration_seconds": int(doc.get("duration_seconds", 0))}


def relay(event: str) -> Any:
    """A handler that passes `event` to the other participant of the sender's live call."""

    async def handle(req: SocketReq) -> Ack:
        payload = dict(req.payload)
        doc = await calls_view.by_id(req.unit.db, payload["call_id"])
        me = req.caller.user_id
        if doc is None or me not in doc.get("participants", []):
            raise CallNotFound()
        if doc.get("state") not in calls_view.LIVE_STATES:
            raise CallOver()
        other = str(doc["receiver_id"] if doc["caller_id"] == me else doc["caller_id"])
        if await blocks.blocked_either_way(req.unit.db, me, other):
            raise CallBlocked()
        payload["from_user_id"] = me
        try:
            await req.unit.notifier.emit_to_user(other, event, payload)
        except Exception as exc:  # the sender can retry; nothing was stored
            raise CallOver("The other side cannot be reached") from exc
        return {"success": True}

    handle.__name__ = f"relay_{event.replace(':', '_').replace('-', '_')}"
    return handle


SOCKET_ROUTES = [
    SocketRoute("call_user", CALL_USER, call_user, summary="Ring a user"),
    SocketRoute("call:initiate", CALL_INITIATE, call_initiate, summary="Ring a user (no offer)"),
    SocketRoute("call:accept", CALL_ACCEPT, call_accept, summary="Answer a ringing call"),
    SocketRoute("call:reject", CALL_REJECT, call_reject, summary="Refuse a ringing call"),
    SocketRoute("reject_call", CALL_REJECT, call_reject, summary="Refuse a ringing call"),
    SocketRoute("call:end", CALL_END, call_end, summary="Hang up"),
    SocketRoute("offer", OFFER, relay("offer"), summary="Relay an SDP offer to the other participant"),
    SocketRoute("answer", ANSWER, relay("answer"), summary="Relay an SDP answer to the other participant"),
    SocketRoute("webrtc:ice-candidate", ICE, relay("webrtc:ice-candidate"), summary="Relay an ICE candidate"),
    SocketRoute("call:media-state", MEDIA_STATE, relay("call:media-state"), summary="Relay a mute/camera change"),
]
