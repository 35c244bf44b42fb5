"""What time and dropped connections do to a call: minutes charged, rings and graces running out.

The billing worker issues `BillTick`, `ExpireUnanswered` and `ExpireGrace` when the schedule says
a call is due (`due_command` picks which); the socket lifecycle issues `ParticipantLeft` when a
participant's last socket goes and `ParticipantRejoined` when one comes back. Each is decided on
the call's state caught up to its stream head, so repeating one, or two workers issuing the same,
changes nothing more.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from truebond.clock import to_ms
from truebond.commands.bus import Command, Context
from truebond.commands.calls.state import (
    GRACE_SECONDS,
    Doc,
    charge_minute,
    current,
    decide_call,
    end_live,
    ending,
    final_id,
    now_of,
    seconds,
)
from truebond.commands.unit import Unit
from truebond.events.base import Event
from truebond.events.calls import CallMissed, ParticipantDisconnected, ParticipantReconnected
from truebond.projections import calls as calls_view


@attrs.frozen
class BillTick(Command[bool]):
    """Charge minute `tick` of a connected call before it starts (True: paid)."""

    call_id: str
    tick: int


@attrs.frozen
class ExpireUnanswered(Command[None]):
    """A call still ringing after its ringing time is missed (nothing is charged)."""

    call_id: str


@attrs.frozen
class ExpireGrace(Command[None]):
    """A participant who stayed away past the grace ends the call as `disconnected`."""

    call_id: str


@attrs.frozen
class ParticipantLeft(Command[None]):
    """A participant's last socket went away during a connected call: the grace starts."""

    user_id: str
    call_id: str


@attrs.frozen
class ParticipantRejoined(Command[None]):
    """A participant is connected again: within the grace the same call goes on."""

    user_id: str
    call_id: str


def due_command(doc: Doc, now: datetime) -> BillTick | ExpireUnanswered | ExpireGrace | None:
    """What the worker must do for this call at `now`, if anything is due."""
    state = doc.get("state")
    call_id = str(doc["_id"])
    if state == "ringing" and now >= to_ms(doc["ring_until"]):
        return ExpireUnanswered(call_id)
    if state != "connected":
        return None
    grace = calls_view.grace_until(doc)
    tick_at = calls_view.next_tick_at(doc)
    # The grace first when it ran out before the next minute began: that minute is never charged.
    if grace is not None and now >= grace and grace <= tick_at:
        return ExpireGrace(call_id)
    if now >= tick_at:
        return BillTick(call_id, int(doc.get("paid_ticks", 0)))
    if grace is not None and now >= grace:
        return ExpireGrace(call_id)
    return None


async def bill_tick(cmd: BillTick, ctx: Context, deps: Unit) -> bool:
    """Charge the minute once (its id is `call:<id>:tick:<n>`), or end the call at the paid boundary."""
    doc = await current(deps, cmd.call_id)
    if doc is None or doc["state"] != "connected" or now_of(deps) < calls_view.next_tick_at(doc):
        return False
    return await charge_minute(deps, ctx, cmd.call_id, cmd.tick, doc=doc)


async def expire_unanswered(cmd: ExpireUnanswered, ctx: Context, deps: Unit) -> None:
    """Mark a call missed once its ringing time is over."""
    now = now_of(deps)

    def decide(doc: Doc) -> tuple[Event, str] | None:
        if doc["state"] != "ringing" or now < to_ms(doc["ring_until"]):
            return None
        return CallMissed(call_id=cmd.call_id), final_id(cmd.call_id)

    await decide_call(deps, ctx, cmd.call_id, decide)


def _away_first(doc: Doc) -> tuple[str, datetime] | None:
    away = doc.get("away") or {}
    if not away:
        return None
    user_id = min(away, key=lambda u: to_ms(away[u]))
    return str(user_id), to_ms(away[user_id])


async def expire_grace(cmd: ExpireGrace, ctx: Context, deps: Unit) -> None:
    """End the call as `disconnected` at the end of the grace of whoever stayed away."""
    now = now_of(deps)

    def decide(doc: Doc) -> tuple[Event, str] | None:
        first = _away_first(doc)
        if doc["state"] != "connected" or first is None or now < first[1]:
            return None
        return ending(doc, cmd.call_id, reason="disconnected", by=first[0], at=first[1])

    await decide_call(deps, ctx, cmd.call_id, decide)


async def participant_left(cmd: ParticipantLeft, ctx: Context, deps: Unit) -> None:
    """Start the participant's grace (a connected call only; already away: nothing changes)."""
    grace_until = now_of(deps) + seconds(GRACE_SECONDS)

    def decide(doc: Doc) -> tuple[Event, str] | None:
        if doc["state"] != "connected" or cmd.user_id not in doc["participants"] or cmd.user_id in (doc.get("away") or {}):
            return None
        event = ParticipantDisconnected(call_id=cmd.call_id, user_id=cmd.user_id, grace_until=grace_until)
        return event, f"call:{cmd.call_id}:away:{cmd.user_id}:{doc.get('_v', 0)}"

    await decide_call(deps, ctx, cmd.call_id, decide)


async def participant_rejoined(cmd: ParticipantRejoined, ctx: Context, deps: Unit) -> None:
    """Within the grace the call goes on (no new first minute: billing never stopped); after it, it ends."""
    now = now_of(deps)
    doc = await current(deps, cmd.call_id)
    if doc is None:
        return
    until = (doc.get("away") or {}).get(cmd.user_id)
    if doc["state"] != "connected" or until is None:
        return
    if now >= to_ms(until):
        await end_live(deps, ctx, cmd.call_id, reason="disconnected", by=cmd.user_id, at=lambda d: to_ms(until))
        return

    def decide(d: Doc) -> tuple[Event, str] | None:
        if d["state"] != "connected" or cmd.user_id not in (d.get("away") or {}):
            return None
        return ParticipantReconnected(call_id=cmd.call_id, user_id=cmd.user_id), f"call:{cmd.call_id}:back:{cmd.user_id}:{d.get('_v', 0)}"

    await decide_call(deps, ctx, cmd.call_id, decide)
