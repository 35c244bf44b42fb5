"""Starting, answering, refusing and hanging up a call.

`InitiateCall` checks the pair (not oneself, receiver active and not shadow-banned, no block), the
caller's coins (one minute's price), and takes both users' live-call slots; then the call rings
(a shadow-banned caller's call takes their slot only and rings nobody). `AcceptCall` (the
receiver only, while it rings) connects it and charges the first minute at once. `RejectCall`
and `EndCall` close it; hanging up charges nothing more, since every started minute is paid in
advance. A call that is over stays over: accepting or restarting it is refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from truebond.adapters.call_signals import CallSignals
from truebond.adapters.call_slots import CallSlots
from truebond.clock import to_ms
from truebond.commands.bus import Command, Context
from truebond.commands.calls.errors import CallBlocked, CallNotFound, CallOver, NotTheReceiver, SelfCall, UserBusy
from truebond.commands.calls.state import (
    CALL_TYPES,
    PRICES,
    RING_SECONDS,
    Doc,
    call_stream,
    charge_minute,
    coins_of,
    current,
    decide_call,
    ending,
    final_id,
    now_of,
    participant,
    refusal,
    seconds,
)
from truebond.commands.decide import Decision, decide_and_append, head_only
from truebond.commands.unit import Unit, new_id
from truebond.errors import Forbidden, PaymentRequired
from truebond.events.base import Event
from truebond.events.calls import CallAccepted, CallInitiated, CallRejected
from truebond.projections import blocks
from truebond.projections import calls as calls_view
from truebond.projections import users as users_view


@attrs.frozen
class InitiateCall(Command[str]):
    """The caller rings the receiver; answers the new call's id. `offer` is the caller's SDP, if sent."""

    caller_id: str
    receiver_id: str
    call_type: str
    offer: dict[str, Any] | None = None


@attrs.frozen
class AcceptCall(Command[Doc]):
    """The receiver answers a ringing call (`answer`: their SDP, relayed to the caller)."""

    user_id: str
    call_id: str
    answer: dict[str, Any] | None = None


@attrs.frozen
class RejectCall(Command[Doc]):
    """The receiver refuses a ringing call (from the caller it is a hang-up)."""

    user_id: str
    call_id: str
    reason: str = ""


@attrs.frozen
class EndCall(Command[Doc]):
    """A participant hangs up (a call already over is answered as it is)."""

    user_id: str
    call_id: str


async def _busy(deps: Unit, users: list[str], call_id: str) -> bool:
    """Take both users' slots; a slot held by a call that is over is freed and taken again."""
    slots = CallSlots(deps.redis)
    for _ in range(3):
        busy = await slots.take(users, call_id)
        if not busy:
            break
        stale = [(u, held) for u, held in busy.items() if not _live(await calls_view.by_id(deps.db, held))]
        if len(stale) < len(busy):
            return True
        for user_id, held in stale:
            await slots.release([user_id], held)
    else:
        return True
    # Redis is short-lived state: the read model has the last word.
    for user_id in users:
        live = await calls_view.live_call_of(deps.db, user_id)
        if live is not None and live["_id"] != call_id:
            await slots.release(users, call_id)
            return True
    return False


def _live(doc: Doc | None) -> bool:
    return doc is not None and doc.get("state") in calls_view.LIVE_STATES


async def initiate_call(cmd: InitiateCall, ctx: Context, deps: Unit) -> str:
    """Ring the receiver; refused when alone, blocked, short of one minute's price, or busy."""
    if cmd.caller_id == cmd.receiver_id:
        raise SelfCall()
    call_type = CALL_TYPES[cmd.call_type]
    rate = PRICES[call_type]
    receiver = await users_view.by_id(deps.db, cmd.receiver_id)
    if receiver is None or receiver.get("status") != "active" or await blocks.shadow_banned(deps.db, cmd.receiver_id):
        raise CallNotFound("User not found")
    if await blocks.blocked_either_way(deps.db, cmd.caller_id, cmd.receiver_id):
        raise CallBlocked()
    if await coins_of(deps, cmd.caller_id) < rate:
        raise PaymentRequired(f"This call needs at least {rate} coins")
    # A shadow-banned caller's call rings for them only: it never reaches or holds the receiver.
    hidden = await blocks.shadow_banned(deps.db, cmd.caller_id)
    call_id = new_id()
    if await _busy(deps, [cmd.caller_id] if hidden else [cmd.caller_id, cmd.receiver_id], call_id):
        raise UserBusy("You or this user are already in a call")
    if cmd.offer is not None:
        await CallSignals(deps.redis).put(call_id, "offer", cmd.offer)
    ring_until = now_of(deps) + seconds(RING_SECONDS)
    event = CallInitiated(
        call_id=call_id,
        caller_id=cmd.caller_id,
        receiver_id=cmd.receiver_id,
        call_type=call_type,
        rate=rate,
        ring_until=ring_until,
        hidden=hidden,
    )
    stream = call_stream(call_id)
    await decide_and_append(deps, stream, head_only(stream), lambda _: Decision(event, f"call:{call_id}:initiated"), ctx.meta())
    return call_id


async def accept_call(cmd: AcceptCall, ctx: Context, deps: Unit) -> Doc:
    """Connect a ringing call and charge its first minute; an ended call cannot be accepted."""
    doc = participant(await current(deps, cmd.call_id), cmd.user_id)
    if doc["receiver_id"] != cmd.user_id:
        raise NotTheReceiver()
    if doc["state"] == "connected":
        return doc  # a repeated accept of the same answered call
    if doc["state"] != "ringing" or now_of(deps) >= to_ms(doc["ring_until"]):
        raise CallOver()
    why = await refusal(deps, doc)
    short = why is None and await coins_of(deps, str(doc["caller_id"])) < int(doc["rate"])
    if why is not None or short:
        reason = why or "insufficient_credits"
        await decide_call(deps, ctx, cmd.call_id, lambda d: _end_ringing(d, cmd.call_id, reason, "system", now_of(deps)))
        if why == "blocked":
            raise CallBlocked()
        if short:
            raise PaymentRequired("The caller does not have enough coins")
        raise Forbidden("This call cannot go on")
    if cmd.answer is not None:
        await CallSignals(deps.redis).put(cmd.call_id, "answer", cmd.answer)
    at = now_of(deps)

    def connect(d: Doc) -> tuple[Event, str] | None:
        if d["state"] == "connected":
            return None
        if d["state"] != "ringing":
            raise CallOver()
        return CallAccepted(call_id=cmd.call_id, connected_at=at), f"call:{cmd.call_id}:accepted"

    await decide_call(deps, ctx, cmd.call_id, connect)
    await charge_minute(deps, ctx, cmd.call_id, 0)
    return participant(await current(deps, cmd.call_id), cmd.user_id)


def _end_ringing(doc: Doc, call_id: str, reason: str, by: str, at: datetime) -> tuple[Event, str] | None:
    if doc["state"] != "ringing":
        return None
    return ending(doc, call_id, reason=reason, by=by, at=at)


async def reject_call(cmd: RejectCall, ctx: Context, deps: Unit) -> Doc:
    """Refuse a ringing call (the receiver); from the caller, or once connected, it hangs up."""
    doc = participant(await current(deps, cmd.call_id), cmd.user_id)
    if doc["receiver_id"] != cmd.user_id or doc["state"] != "ringing":
        return await end_call(EndCall(cmd.user_id, cmd.call_id), ctx, deps)

    def decide(d: Doc) -> tuple[Event, str] | None:
        if d["state"] != "ringing":
            return None
        return CallRejected(call_id=cmd.call_id, rejected_by=cmd.user_id, reason=cmd.reason[:100]), final_id(cmd.call_id)

    await decide_call(deps, ctx, cmd.call_id, decide)
    return participant(await current(deps, cmd.call_id), cmd.user_id)


async def end_call(cmd: EndCall, ctx: Context, deps: Unit) -> Doc:
    """Hang up: a ringing call stops (the receiver's hang-up is a refusal), a connected one ends now."""
    participant(await current(deps, cmd.call_id), cmd.user_id)
    at = now_of(deps)

    def decide(d: Doc) -> tuple[Event, str] | None:
        if d["state"] == "ringing" and d["receiver_id"] == cmd.user_id:
            return CallRejected(call_id=cmd.call_id, rejected_by=cmd.user_id, reason="declined"), final_id(cmd.call_id)
        if d["state"] == "ringing":
            return ending(d, cmd.call_id, reason="ended", by=cmd.user_id, at=at)
        if d["state"] == "connected":
            return ending(d, cmd.call_id, reason="ended", by=cmd.user_id, at=at)
        return None

    await decide_call(deps, ctx, cmd.call_id, decide)
    return participant(await current(deps, cmd.call_id), cmd.user_id)


__all__ = ["AcceptCall", "CallOver", "EndCall", "InitiateCall", "RejectCall"]
