"""GET /api/calls/history: filters, paging and the fields the client shows, all derived from events."""

from __future__ import annotations

from typing import Any

from tests.support.accounts import auth, signup
from tests.support.calls_support import run_worker
from truebond.bootstrap import Runtime
from truebond.clock import OffsetClock
from truebond.commands.bus import Context
from truebond.commands.calls import AcceptCall, EndCall, InitiateCall, RejectCall


def _as(user: dict[str, Any]) -> Context:
    return Context(actor=f"user:{user['user']['id']}")


async def _history(client: Any, token: str, **query: Any) -> dict[str, Any]:
    resp = await client.get("/api/calls/history", params={k: str(v) for k, v in query.items()}, headers=auth(token))
    body: dict[str, Any] = await resp.json()
    assert resp.status == 200, body
    return body


async def test_history_filters_fields_and_paging(client: Any, runtime: Runtime, clock: OffsetClock) -> None:
    me, other = await signup(client), await signup(client, name="Ravi Kumar")
    mine, theirs = me["user"]["id"], other["user"]["id"]
    bus = runtime.bus
    # 1. I call, it connects for 70 s: completed, two minutes.
    completed = await bus.handle(InitiateCall(mine, theirs, "audio"), _as(me))
    await bus.handle(AcceptCall(theirs, completed), _as(other))
    clock.advance(70)
    await run_worker(runtime)
    await bus.handle(EndCall(mine, completed), _as(me))
    # 2. They call me and I refuse.
    rejected = await bus.handle(InitiateCall(theirs, mine, "video"), _as(other))
    await bus.handle(RejectCall(mine, rejected), _as(me))
    # 3. They call me and nobody answers.
    missed = await bus.handle(InitiateCall(theirs, mine, "audio"), _as(other))
    clock.advance(26)
    await run_worker(runtime)

    everything = await _history(client, me["access_token"])
    assert everything["total"] == 3
    assert [c["id"] for c in everything["calls"]] == [missed, rejected, completed]
    first = everything["calls"][2]
    assert first == {
        "id": completed,
        "caller_id": mine,
        "receiver_id": theirs,
        "call_type": "audio",
        "status": "completed",
        "initiated_at": first["initiated_at"],
        "duration_seconds": 70,
        "credits_spent": 10,
        "disconnect_reason": "ended",
        "other_user": {"id": theirs, "name": "Ravi Kumar", "profile_picture": None},
    }
    assert first["initiated_at"].endswith("Z")
    assert [(c["status"], c["disconnect_reason"], c["credits_spent"]) for c in everything["calls"][:2]] == [
        ("missed", "missed", 0),
        ("rejected", "rejected", 0),
    ]
    assert [c["id"] for c in (await _history(client, me["access_token"], filter="missed"))["calls"]] == [missed]
    assert [c["id"] for c in (await _history(client, me["access_token"], filter="incoming"))["calls"]] == [missed, rejected]
    assert [c["id"] for c in (await _history(client, me["access_token"], filter="outgoing"))["calls"]] == [completed]
    page = await _history(client, me["access_token"], limit=1, skip=1)
    assert ([c["id"] for c in page["calls"]], page["total"]) == ([rejected], 3)
    # The other side sees the same calls from their side; a missed call is theirs as outgoing.
    theirs_missed = await _history(client, other["access_token"], filter="missed")
    assert theirs_missed["calls"] == [] and (await _history(client, other["access_token"], filter="outgoing"))["total"] == 2


async def test_history_refuses_bad_queries_and_strangers(client: Any) -> None:
    me = await signup(client)
    for query in ({"filter": "all-of-them"}, {"limit": "0"}, {"limit": "101"}, {"skip": "-1"}, {"page": "2"}):
        resp = await client.get("/api/calls/history", params=query, headers=auth(me["access_token"]))
        assert resp.status == 422, query
    assert (await client.get("/api/calls/history")).status == 401
