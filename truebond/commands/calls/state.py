"""What every call command shares: prices, the call stream, deciding on it, ending a call, charging a minute.

Each command decides on the call's read model caught up to the `call-<id>` head and appends at
most one event with optimistic concurrency. The final event of a call (`CallRejected`,
`CallMissed` or `CallEnded`) always has the id `call:<id>:final`, so of two endings that race
only one is ever stored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from truebond.clock import to_ms
from truebond.commands.bus import Context
from truebond.commands.calls.errors import CallNotFound
from truebond.commands.decide import Decision, decide_and_append, read_model
from truebond.commands.ledger import account_stream, record_change
from truebond.commands.unit import Unit
from truebond.errors import PaymentRequired
from truebond.events.base import Event
from truebond.events.calls import CallCharged, CallEnded, CallMinutePaid
from truebond.logging import get_logger
from truebond.projections import blocks
from truebond.projections import calls as calls_view
from truebond.projections import users as users_view
from truebond.projections.calls import CALLS, MINUTE, connected_seconds
from truebond.projections.ledger import BALANCES

log = get_logger(__name__)

# Coins per started minute, paid by the caller only (LEGACY.md); "voice" is the old name of audio.
PRICES = {"audio": 5, "video": 10}
CALL_TYPES = {"audio": "audio", "voice": "audio", "video": "video"}
RING_SECONDS = 25
GRACE_SECONDS = 30
CHARGE_REASON = "CALL"

Doc = dict[str, Any]


def call_stream(call_id: str) -> str:
    """The stream of one call."""
    return f"call-{call_id}"


def final_id(call_id: str) -> str:
    """The one idempotency id every final event of a call shares."""
    return f"call:{call_id}:final"


def tick_id(call_id: str, tick: int) -> str:
    """The idempotency id of minute `tick`'s charge on the caller's account stream."""
    return f"call:{call_id}:tick:{tick}"


def now_of(deps: Unit) -> datetime:
    """The clock's time at the millisecond the store keeps."""
    return to_ms(deps.clock.now())


async def decide_call(deps: Unit, ctx: Context, call_id: str, decide: Callable[[Doc], tuple[Event, str] | None]) -> None:
    """Decide on the call's read model (NotFound when there is no such call) and append what `decide` returns."""
    stream = call_stream(call_id)

    def step(doc: Doc | None) -> Decision | None:
        if doc is None or "state" not in doc:
            raise CallNotFound()
        made = decide(doc)
        return None if made is None else Decision(made[0], made[1])

    await decide_and_append(deps, stream, read_model(CALLS, stream, call_id), step, ctx.meta())


async def current(deps: Unit, call_id: str) -> Doc | None:
    """The call's read model caught up to its stream head."""
    doc, _ = await deps.load(CALLS, call_stream(call_id), call_id)
    return doc if doc is not None and "state" in doc else None


def participant(doc: Doc | None, user_id: str) -> Doc:
    """The call if `user_id` takes part in it; otherwise it does not exist for them (404)."""
    if doc is None or user_id not in doc.get("participants", []):
        raise CallNotFound()
    return doc


def ending(doc: Doc, call_id: str, *, reason: str, by: str, at: datetime) -> tuple[Event, str]:
    """The `CallEnded` of a ringing or connected call ended at `at` (duration stops at the paid boundary)."""
    connected = doc.get("state") == "connected"
    return (
        CallEnded(
            call_id=call_id,
            reason=reason,
            ended_by=by,
            ended_at=at,
            connected=connected,
            duration_seconds=connected_seconds(doc, at) if connected else 0,
            credits_spent=int(doc.get("credits_spent", 0)),
        ),
        final_id(call_id),
    )


async def end_live(deps: Unit, ctx: Context, call_id: str, *, reason: str, by: str, at: Callable[[Doc], datetime]) -> None:
    """End the call if it is still ringing or connected (`at(doc)` says when it ended)."""

    def decide(doc: Doc) -> tuple[Event, str] | None:
        if doc["state"] not in calls_view.LIVE_STATES:
            return None
        return ending(doc, call_id, reason=reason, by=by, at=at(doc))

    await decide_call(deps, ctx, call_id, decide)


async def coins_of(deps: Unit, user_id: str) -> int:
    """The user's balance caught up to the account stream head."""
    doc, _ = await deps.load(BALANCES, account_stream(user_id), user_id)
    return 0 if doc is None else int(doc.get("coins", 0))


async def refusal(deps: Unit, doc: Doc) -> str | None:
    """Why a call between these two may not go on now (`blocked`, `suspended`), or None."""
    caller, receiver = str(doc["caller_id"]), str(doc["receiver_id"])
    if await blocks.blocked_either_way(deps.db, caller, receiver):
        return "blocked"
    for user_id in (caller, receiver):
        user = await users_view.by_id(deps.db, user_id)
        if user is None or user.get("status") != "active":
            return "suspended"
    return None


async def charge_minute(deps: Unit, ctx: Context, call_id: str, tick: int, *, doc: Doc | None = None) -> bool:
    """Charge minute `tick` of a connected call before it starts; True when it is paid.

    Once per tick whoever asks and however often (the charge's id is `call:<id>:tick:<n>`).
    When the caller cannot pay, the call ends at the paid boundary (`insufficient_credits`);
    a pair that may no longer talk (a block, a suspension) ends it now. `doc` is the call's state
    if the caller has just loaded it (the charge's own id guards against it being stale).
    """
    doc = doc or await current(deps, call_id)
    if doc is None or doc["state"] != "connected" or int(doc.get("paid_ticks", 0)) != tick:
        return False
    why = await refusal(deps, doc)
    if why is not None:
        await end_live(deps, ctx, call_id, reason=why, by="system", at=lambda d: now_of(deps))
        return False
    caller, rate = str(doc["caller_id"]), int(doc["rate"])
    kind = "video" if doc["call_type"] == "video" else "voice"

    def decide(coins: int) -> CallCharged:
        if coins < rate:
            raise PaymentRequired()
        return CallCharged(
            user_id=caller,
            amount=-rate,
            reason=CHARGE_REASON,
            reference=f"call:{call_id}",
            balance_after=coins - rate,
            description=f"{kind.capitalize()} call, minute {tick + 1}",
            call_id=call_id,
            tick=tick,
        )

    try:
        result = await record_change(deps, caller, event_id=tick_id(call_id, tick), meta=ctx.meta(), decide=decide)
    except PaymentRequired:
        log.info("call.out_of_credits", tick=tick)
        await end_live(deps, ctx, call_id, reason="insufficient_credits", by="system", at=lambda d: calls_view.next_tick_at(d))
        return False
    paid_until = to_ms(doc["connected_at"]) + MINUTE * (tick + 1)

    def record(doc: Doc) -> tuple[Event, str] | None:
        if int(doc.get("paid_ticks", 0)) > tick:
            return None
        event = CallMinutePaid(call_id=call_id, tick=tick, amount=rate, paid_until=paid_until, coins_left=result.entry.balance_after)
        return event, f"call:{call_id}:paid:{tick}"

    await decide_call(deps, ctx, call_id, record)
    return True


def seconds(n: int) -> timedelta:
    """A policy duration."""
    return timedelta(seconds=n)
