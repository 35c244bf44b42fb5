"""The refusals of the call commands, each with its own stable code (statuses by class: api/error_map.py)."""

from __future__ import annotations

from truebond.errors import BadRequest, Conflict, Forbidden, NotFound


class CallNotFound(NotFound):
    """No such call, or the caller takes no part in it."""

    code, default_detail = "call_not_found", "Call not found"


class CallOver(Conflict):
    """The call has ended (or was answered already): it cannot be accepted or restarted."""

    code, default_detail = "call_over", "This call has ended"


class UserBusy(Conflict):
    """The caller or the receiver is already in a ringing or connected call."""

    code, default_detail = "busy", "Already in a call"


class CallBlocked(Forbidden):
    """One of the two blocked the other."""

    code, default_detail = "blocked", "You cannot call this user"


class NotTheReceiver(Forbidden):
    """Only the person called can accept."""

    code, default_detail = "not_receiver", "Only the person called can accept this call"


class SelfCall(BadRequest):
    """Nobody can call themselves."""

    code, default_detail = "self_call", "You cannot call yourself"
