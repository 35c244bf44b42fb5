"""Calls, billed per started minute by the server (issue 8).

`ringing` starts, answers, refuses and ends calls; `timers` charges the minutes and lets rings
and graces run out (issued by the billing worker and the socket lifecycle); `state` holds what
they share (prices, charging one minute through the ledger's one path); `pushes` are the
reactions (the billing schedule, the live-call slots, the socket pushes); `blocking` ends a
blocked pair's live call.
"""

from __future__ import annotations

from truebond.commands.bus import HandlerTable, ReactionTable
from truebond.commands.calls import blocking, pushes
from truebond.commands.calls.blocking import EndBlockedCall, end_blocked_call
from truebond.commands.calls.errors import CallBlocked, CallNotFound, CallOver, NotTheReceiver, SelfCall, UserBusy
from truebond.commands.calls.ringing import AcceptCall, EndCall, InitiateCall, RejectCall, accept_call, end_call, initiate_call, reject_call
from truebond.commands.calls.state import CALL_TYPES, GRACE_SECONDS, PRICES, RING_SECONDS, tick_id
from truebond.commands.calls.timers import (
    BillTick,
    ExpireGrace,
    ExpireUnanswered,
    ParticipantLeft,
    ParticipantRejoined,
    bill_tick,
    due_command,
    expire_grace,
    expire_unanswered,
    participant_left,
    participant_rejoined,
)

HANDLERS: HandlerTable = {
    InitiateCall: initiate_call,
    AcceptCall: accept_call,
    RejectCall: reject_call,
    EndCall: end_call,
    BillTick: bill_tick,
    ExpireUnanswered: expire_unanswered,
    ExpireGrace: expire_grace,
    ParticipantLeft: participant_left,
    ParticipantRejoined: participant_rejoined,
    EndBlockedCall: end_blocked_call,
}
REACTIONS: ReactionTable = {**pushes.REACTIONS, **blocking.REACTIONS}

__all__ = [
    "CALL_TYPES",
    "GRACE_SECONDS",
    "HANDLERS",
    "PRICES",
    "REACTIONS",
    "RING_SECONDS",
    "AcceptCall",
    "BillTick",
    "CallBlocked",
    "CallNotFound",
    "CallOver",
    "EndCall",
    "ExpireGrace",
    "ExpireUnanswered",
    "InitiateCall",
    "NotTheReceiver",
    "ParticipantLeft",
    "ParticipantRejoined",
    "RejectCall",
    "SelfCall",
    "UserBusy",
    "due_command",
    "tick_id",
]
