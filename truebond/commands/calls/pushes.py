"""Reactions to call events: the billing schedule, the live-call slots, and the pushes to both sides.

The schedule and the slots follow the call's read model, whatever event brought it there, so
running one of these again (the reactions follower does, `redrive`) sets the same plan. Pushes
are not re-driven: a lost push is healed by the client's next read (the history, the balance).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from truebond.adapters.billing_schedule import BillingSchedule
from truebond.adapters.call_signals import CallSignals
from truebond.adapters.call_slots import CallSlots
from truebond.clock import to_ms
from truebond.commands.bus import Bus, Context, Reaction, ReactionTable
from truebond.events.base import Event, Recorded
from truebond.events.calls import (
    CallAccepted,
    CallEnded,
    CallInitiated,
    CallMinutePaid,
    CallMissed,
    CallRejected,
    ParticipantDisconnected,
    ParticipantReconnected,
)
from truebond.logging import get_logger
from truebond.projections import calls as calls_view
from truebond.projections import ledger as ledger_view
from truebond.projections import users as users_view

log = get_logger(__name__)

FINAL = (CallRejected, CallMissed, CallEnded)


def iso(at: datetime) -> str:
    """A time as the API writes it (UTC, milliseconds, `Z`)."""
    return to_ms(at).isoformat().replace("+00:00", "Z")


def _call_id(rec: Recorded) -> str:
    return rec.stream.split("-", 1)[1]


async def plan(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """Put the call in the billing schedule at its next action time, or take it out when it is over."""
    unit = bus.deps
    call_id = _call_id(rec)
    doc = await calls_view.by_id(unit.db, call_id)
    schedule = BillingSchedule(unit.redis)
    when = None if doc is None else calls_view.next_action_at(doc)
    if when is None:
        await schedule.cancel(call_id)
    else:
        await schedule.schedule(call_id, when.timestamp())


async def free_slots(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """A call that is over frees both users' live-call slots (only if it still holds them)."""
    unit = bus.deps
    call_id = _call_id(rec)
    doc = await calls_view.by_id(unit.db, call_id)
    if doc is not None:
        await CallSlots(unit.redis).release([str(p) for p in doc.get("participants", [])], call_id)


async def _emit(bus: Bus, user_id: str, event: str, data: dict[str, Any]) -> None:
    try:
        await bus.deps.notifier.emit_to_user(user_id, event, data)
    except Exception:  # noqa: BLE001 - the call's state is stored; the client reads it again
        log.warning("call.notify_failed", socket_event=event)


async def ring(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """`incoming_call` to the receiver, with the caller's name, photo and offer."""
    e = rec.event
    assert isinstance(e, CallInitiated)
    if e.hidden:
        return
    unit = bus.deps
    caller = await users_view.by_id(unit.db, e.caller_id) or {}
    pictures = caller.get("profile_pictures") or []
    payload = {
        "call_id": e.call_id,
        "caller_id": e.caller_id,
        "caller_name": caller.get("name", ""),
        "caller_avatar": pictures[0] if pictures else None,
        "call_type": e.call_type,
        "offer": await CallSignals(unit.redis).get(e.call_id, "offer"),
    }
    await _emit(bus, e.receiver_id, "incoming_call", payload)


async def connected(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """`call:accept` to the caller, with the receiver's answer."""
    e = rec.event
    assert isinstance(e, CallAccepted)
    doc = await calls_view.by_id(bus.deps.db, e.call_id)
    if doc is None:
        return
    answer = await CallSignals(bus.deps.redis).get(e.call_id, "answer")
    await _emit(bus, str(doc["caller_id"]), "call:accept", {"call_id": e.call_id, "answer": answer, "connected_at": iso(e.connected_at)})


async def billed(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """`call:billing` and `balance_updated` to the caller after each paid minute."""
    e = rec.event
    assert isinstance(e, CallMinutePaid)
    doc = await calls_view.by_id(bus.deps.db, e.call_id)
    if doc is None:
        return
    caller = str(doc["caller_id"])
    coins = await ledger_view.coins(bus.deps.db, caller)
    await _emit(bus, caller, "call:billing", {"call_id": e.call_id, "coins_left": coins, "paid_until": iso(e.paid_until)})
    await _emit(bus, caller, "balance_updated", {"coins": coins})


async def finished(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """`call:reject` (refused), `call:end` and `call_ended` to both; `call_failed` when it never connected."""
    unit = bus.deps
    call_id = _call_id(rec)
    doc = await calls_view.by_id(unit.db, call_id)
    if doc is None:
        return
    caller, receiver = str(doc["caller_id"]), str(doc["receiver_id"])
    e = rec.event
    reason = str(doc.get("end_reason", "ended"))
    summary = {
        "call_id": call_id,
        "ended_by": str(doc.get("ended_by", "system")),
        "reason": reason,
        "duration_seconds": int(doc.get("duration_seconds", 0)),
        "credits_spent": int(doc.get("credits_spent", 0)),
    }
    if isinstance(e, CallRejected):
        await _emit(bus, caller, "call:reject", {"call_id": call_id, "reason": e.reason or "rejected"})
    if isinstance(e, CallEnded) and not e.connected and reason in ("insufficient_credits", "blocked", "suspended"):
        await _emit(bus, caller, "call_failed", {"call_id": call_id, "reason": reason})
    # Only participants: a hidden call (a shadow-banned caller) has the caller alone.
    for user_id in (caller, receiver) if receiver in doc.get("participants", []) else (caller,):
        await _emit(bus, user_id, "call:end", {"call_id": call_id, "reason": reason})
        await _emit(bus, user_id, "call_ended", summary)


_PLANNED = (CallInitiated, CallAccepted, CallMinutePaid, ParticipantDisconnected, ParticipantReconnected, *FINAL)


def _reactions() -> ReactionTable:
    table: dict[type[Event], list[Reaction]] = {cls: [Reaction(plan, redrive=True)] for cls in _PLANNED}
    table[CallInitiated].append(Reaction(ring))
    table[CallAccepted].append(Reaction(connected))
    table[CallMinutePaid].append(Reaction(billed))
    for cls in FINAL:
        table[cls] += [Reaction(free_slots, redrive=True), Reaction(finished)]
    return table


REACTIONS = _reactions()
