"""Call events on the stream `call-<id>`, and the per-minute charge on the caller's account stream.

A call rings (`CallInitiated`), then is answered (`CallAccepted`), refused (`CallRejected`) or
left unanswered (`CallMissed`). Once connected, every started minute is paid in advance: the
charge itself is a `CallCharged` ledger event on `account-<caller>` (idempotency id
`call:<id>:tick:<n>`, tick 0 at accept), and the call stream records it as `CallMinutePaid`.
A participant whose sockets all went away is `ParticipantDisconnected` until they come back
(`ParticipantReconnected`) or the grace ends the call. `CallEnded` closes a call for good.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from truebond.events.base import Event, event
from truebond.events.ledger import LedgerEvent

# Why a call ended (the `reason` of `call_ended`).
END_REASONS = ("ended", "rejected", "missed", "insufficient_credits", "disconnected", "blocked", "suspended")


@event("CallInitiated")
@attrs.frozen
class CallInitiated(Event):
    """The caller rings the receiver; `rate` is the price of one minute when the call started.

    `hidden`: the caller was shadow-banned: the call rings for them only and ends missed, and the
    receiver never takes part in it (no push, no history, no notification, never busy because of it).
    """

    call_id: str
    caller_id: str
    receiver_id: str
    call_type: str
    rate: int
    ring_until: datetime
    hidden: bool = False


@event("CallAccepted")
@attrs.frozen
class CallAccepted(Event):
    """The receiver answered: the call is connected from `connected_at`."""

    call_id: str
    connected_at: datetime


@event("CallRejected")
@attrs.frozen
class CallRejected(Event):
    """The receiver refused a ringing call (a final state)."""

    call_id: str
    rejected_by: str
    reason: str = ""


@event("CallMissed")
@attrs.frozen
class CallMissed(Event):
    """Nobody answered within the ringing time (a final state; nothing is charged)."""

    call_id: str


@event("CallMinutePaid")
@attrs.frozen
class CallMinutePaid(Event):
    """Minute `tick` (0 = the first, charged at accept) is paid; the call may run until `paid_until`."""

    call_id: str
    tick: int
    amount: int
    paid_until: datetime
    coins_left: int


@event("ParticipantDisconnected")
@attrs.frozen
class ParticipantDisconnected(Event):
    """A participant's last socket went away; the call ends at `grace_until` unless they come back."""

    call_id: str
    user_id: str
    grace_until: datetime


@event("ParticipantReconnected")
@attrs.frozen
class ParticipantReconnected(Event):
    """A disconnected participant came back within the grace: the same call goes on."""

    call_id: str
    user_id: str


@event("CallEnded")
@attrs.frozen
class CallEnded(Event):
    """The call is over (a final state): why, who ended it, how long it was connected and what it cost."""

    call_id: str
    reason: str
    ended_by: str
    ended_at: datetime
    connected: bool
    duration_seconds: int
    credits_spent: int


@event("CallCharged")
@attrs.frozen(kw_only=True)
class CallCharged(LedgerEvent):
    """One started minute of a call, paid by the caller in advance (amount is negative)."""

    call_id: str
    tick: int
