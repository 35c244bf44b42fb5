"""Calls in tests: two accounts through the real signup, coins granted through the ledger, the tick ids."""

from __future__ import annotations

import uuid
from typing import Any

import attrs

from tests.support.history import signup_cmd
from truebond.bootstrap import Runtime
from truebond.commands.bus import Context
from truebond.commands.calls import AcceptCall, InitiateCall
from truebond.commands.ledger import credit
from truebond.events.base import Meta
from truebond.events.ledger import ReferralRewardGranted
from truebond.projections import calls as calls_view
from truebond.projections import ledger as ledger_view
from truebond.workers.billing import BillingWorker

SIGNUP = Context(actor="anonymous", request_id="req-test", ip="127.0.0.0", device="pytest")


@attrs.frozen
class Pair:
    """A caller and a receiver (ids), and a context for each."""

    caller: str
    receiver: str

    @property
    def as_caller(self) -> Context:
        return Context(actor=f"user:{self.caller}")

    @property
    def as_receiver(self) -> Context:
        return Context(actor=f"user:{self.receiver}")


async def person(rt: Runtime) -> str:
    """A new account (10 coins of signup bonus); returns its id."""
    n = uuid.uuid4().int % 10**8
    result = await rt.bus.handle(signup_cmd(n), SIGNUP)
    return str(result.user_id)


async def pair(rt: Runtime) -> Pair:
    """Two new accounts."""
    return Pair(await person(rt), await person(rt))


async def give(rt: Runtime, user_id: str, coins: int) -> None:
    """Credit coins through the ledger's one path (a test grant)."""
    await credit(
        rt.unit,
        user_id,
        coins,
        event_class=ReferralRewardGranted,
        reason="referral",
        reference="test",
        event_id=f"test-grant:{uuid.uuid4().hex}",
        meta=Meta(actor="system"),
    )


async def balance(rt: Runtime, user_id: str) -> int:
    """The projected balance."""
    return await ledger_view.coins(rt.unit.db, user_id)


async def connected_call(rt: Runtime, p: Pair, call_type: str = "audio") -> str:
    """A call rung and answered (its first minute charged)."""
    call_id = await rt.bus.handle(InitiateCall(p.caller, p.receiver, call_type), p.as_caller)
    await rt.bus.handle(AcceptCall(p.receiver, call_id), p.as_receiver)
    return call_id


async def call(rt: Runtime, call_id: str) -> dict[str, Any]:
    """The call's read model."""
    doc = await calls_view.by_id(rt.unit.db, call_id)
    assert doc is not None
    return doc


async def tick_ids(rt: Runtime, call_id: str) -> list[str]:
    """Every stored charge id of the call, as stored (duplicates would show)."""
    docs = await rt.unit.db["events"].find({"type": "CallCharged", "data.call_id": call_id}).to_list(None)
    return [str(d["_id"]) for d in docs]


def expected_ticks(call_id: str, n: int) -> list[str]:
    """The ids of ticks 0..n-1."""
    return [f"call:{call_id}:tick:{i}" for i in range(n)]


async def run_worker(rt: Runtime, worker: BillingWorker | None = None) -> int:
    """One pass of a billing worker."""
    return await (worker or BillingWorker(rt.bus)).run_once()
