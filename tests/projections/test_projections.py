"""Read models: the projector heals and resumes, applies are idempotent, gaps are filled, verify finds edits."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from tests.support.history import build_history
from truebond.bootstrap import Runtime
from truebond.clock import OffsetClock
from truebond.commands import identity
from truebond.commands.ledger import account_stream
from truebond.commands.unit import Unit
from truebond.events.base import Head, Meta, Recorded
from truebond.events.identity import PasswordChanged, RoleGranted, UserRegistered
from truebond.events.ledger import CoinsDeducted
from truebond.events.store import UndecodableEvent
from truebond.projections.follower import Follower, Projector
from truebond.projections.ledger import coins
from truebond.projections.views import StreamGap
from truebond.verify import verify

READ_MODELS = ("users", "sessions", "balances", "credit_transactions", "adminLogs")


async def snapshot(unit: Unit) -> dict[str, list[dict[str, Any]]]:
    """Every document of every read model, in _id order."""
    return {name: await unit.db[name].find({}).sort("_id", 1).to_list(None) for name in READ_MODELS}


async def drop_read_models(unit: Unit) -> None:
    """Forget every read model and the projector's checkpoint (a fresh projector deployment)."""
    for name in (*READ_MODELS, "projection_checkpoints"):
        await unit.db.drop_collection(name)


async def event_count(unit: Unit) -> int:
    n: int = await unit.db["events"].count_documents({})
    return n


# --------------------------------------------------------------------------- projector


async def test_history_fills_every_read_model(runtime: Runtime) -> None:
    unit = runtime.unit
    h = await build_history(unit)

    snap = await snapshot(unit)

    assert {name: len(docs) for name, docs in snap.items()} == {
        "users": 2,
        "sessions": 3,
        "balances": 2,
        "credit_transactions": 5,
        "adminLogs": 1,
    }
    assert await coins(unit.db, h.alice) == 10 - 2 - 3
    assert await coins(unit.db, h.bob) == 10 - 4
    audit = snap["adminLogs"][0]
    assert (audit["actor"], audit["target_id"], audit["before"], audit["after"]) == (
        "system:cli",
        h.alice,
        {"role": "user"},
        {"role": "admin"},
    )


async def test_uninterrupted_projector_rebuilds_what_inline_applies_built(runtime: Runtime) -> None:
    unit = runtime.unit
    await build_history(unit)
    inline = await snapshot(unit)
    await drop_read_models(unit)

    applied = await Projector(unit.projections, batch=4).run_once()

    assert applied == await event_count(unit)
    assert await snapshot(unit) == inline


@pytest.mark.parametrize("overlap", [timedelta(0), timedelta(seconds=10)])
async def test_projector_cancelled_mid_run_and_restarted_equals_uninterrupted_and_replay(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, overlap: timedelta
) -> None:
    unit = runtime.unit
    h = await build_history(unit)
    inline = await snapshot(unit)
    await drop_read_models(unit)
    total = await event_count(unit)
    stop_after = total // 2
    applied = 0
    reached = asyncio.Event()
    real_apply = unit.projections.apply

    async def apply_then_hang(rec: Recorded) -> None:
        nonlocal applied
        await real_apply(rec)
        applied += 1
        if applied == stop_after:
            reached.set()
            await asyncio.Event().wait()  # the process is killed here

    monkeypatch.setattr(unit.projections, "apply", apply_then_hang)
    task = asyncio.create_task(Projector(unit.projections, overlap=overlap, batch=3).run(asyncio.Event(), poll_seconds=0.01))
    await asyncio.wait_for(reached.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    monkeypatch.undo()

    # Killed mid-run: part of the history is projected and the checkpoint is somewhere inside it.
    partial = await snapshot(unit)
    assert partial != inline
    assert sum(map(len, partial.values())) < sum(map(len, inline.values()))
    checkpoint = await unit.db["projection_checkpoints"].find_one({"_id": Projector.CHECKPOINT_ID})
    assert checkpoint is not None

    # A new process resumes from the checkpoint and ends where an uninterrupted run ends.
    stop = asyncio.Event()
    restarted = asyncio.create_task(Projector(unit.projections, overlap=overlap, batch=3).run(stop, poll_seconds=0.01))
    for _ in range(200):
        if await snapshot(unit) == inline:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(restarted, 10)
    assert await snapshot(unit) == inline
    assert await coins(unit.db, h.alice) == 5

    # And a replay from the events into fresh collections gives the same documents again.
    assert await unit.projections.replay() == total
    assert await snapshot(unit) == inline


async def test_projector_heals_events_appended_without_their_inline_apply(runtime: Runtime) -> None:
    unit = runtime.unit
    h = await build_history(unit)
    projector = Projector(unit.projections, batch=4)
    await projector.run_once()
    before = await snapshot(unit)

    # The process died right after each append, before applying the read models.
    account = account_stream(h.bob)
    lost_charge = CoinsDeducted(user_id=h.bob, amount=-5, reason="call", reference="call:2", balance_after=1)
    await unit.store.append(account, await unit.store.head(account), lost_charge, event_id="charge:bob:2", meta=Meta(actor="system"))
    lost_role = RoleGranted(role="super_admin", previous_role="user", reason="on call")
    user_stream = f"user-{h.bob}"
    await unit.store.append(
        user_stream, await unit.store.head(user_stream), lost_role, event_id="role:bob:lost", meta=Meta(actor="system:cli")
    )
    assert await snapshot(unit) == before
    assert await coins(unit.db, h.bob) == 6

    healed = await projector.run_once()

    assert healed == 2
    assert await coins(unit.db, h.bob) == 1
    after = await snapshot(unit)
    tx = {d["_id"]: d for d in after["credit_transactions"]}["charge:bob:2"]
    assert (tx["user_id"], tx["amount"], tx["balance_after"]) == (h.bob, -5, 1)
    bob = {d["_id"]: d for d in after["users"]}[h.bob]
    assert bob["role"] == "super_admin"
    assert [d["_id"] for d in after["adminLogs"] if d["target_id"] == h.bob] == ["role:bob:lost"]
    assert await verify(unit) == []
    await unit.projections.replay()
    assert await snapshot(unit) == after


async def test_an_unreadable_event_stops_projection_instead_of_being_skipped(runtime: Runtime) -> None:
    unit = runtime.unit
    h = await build_history(unit)
    before = await snapshot(unit)
    target = h.alice_charges[0]
    await unit.db["events"].update_one({"_id": target}, {"$set": {"data.refund_to": "someone-else"}})

    with pytest.raises(UndecodableEvent, match=rf"{target} .*refund_to"):
        await Projector(unit.projections, batch=4).run_once()
    # A replay that cannot read every event swaps nothing in: the live read models stay whole.
    with pytest.raises(UndecodableEvent, match=target):
        await unit.projections.replay()
    assert await snapshot(unit) == before


# --------------------------------------------------------------------------- idempotence and gaps


async def test_a_quiet_poll_decodes_nothing_and_a_late_event_inside_the_overlap_is_still_applied(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    unit = runtime.unit
    h = await build_history(unit)
    projector = Projector(unit.projections, batch=4)
    await projector.run_once()
    checkpoint = await projector.checkpoint()
    assert checkpoint is not None
    decoded: list[str] = []
    real_decode = unit.store._decode

    async def counting_decode(doc: dict[str, Any]) -> Recorded:
        decoded.append(doc["_id"])
        return await real_decode(doc)

    monkeypatch.setattr(unit.store, "_decode", counting_decode)

    # Nothing new: the events of the overlap window are not read again.
    assert await projector.run_once() == 0
    assert decoded == []

    # An event committed late, stamped before the checkpoint but inside the overlap.
    account = account_stream(h.bob)
    late = CoinsDeducted(user_id=h.bob, amount=-5, reason="call", reference="call:late", balance_after=1)
    await unit.store.append(account, await unit.store.head(account), late, event_id="charge:bob:late", meta=Meta(actor="system"))
    await unit.db["events"].update_one({"_id": "charge:bob:late"}, {"$set": {"at": checkpoint - timedelta(seconds=1)}})

    assert await projector.run_once() == 1
    assert decoded == ["charge:bob:late"]
    assert await coins(unit.db, h.bob) == 1
    assert await projector.checkpoint() == checkpoint  # never moved back


async def test_followers_with_different_names_keep_separate_checkpoints(runtime: Runtime, clock: OffsetClock) -> None:
    unit = runtime.unit
    h = await build_history(unit)
    total = await event_count(unit)
    seen: dict[str, list[str]] = {"mailer": [], "search": []}

    def follower(name: str) -> Follower:
        async def process(rec: Recorded) -> None:
            seen[name].append(rec.id)

        return Follower(name, unit.store, unit.db["projection_checkpoints"], process, batch=4)

    mailer, search = follower("mailer"), follower("search")

    assert await mailer.run_once() == total
    first = await mailer.checkpoint()
    assert first is not None
    assert await search.checkpoint() is None  # the other consumer has not moved

    clock.advance(1)
    account = account_stream(h.bob)
    later = CoinsDeducted(user_id=h.bob, amount=-1, reason="call", reference="call:later", balance_after=5)
    await unit.store.append(account, await unit.store.head(account), later, event_id="charge:bob:later", meta=Meta(actor="system"))

    assert await mailer.run_once() == 1
    moved = await mailer.checkpoint()
    assert moved is not None and moved > first
    assert await search.checkpoint() is None

    assert await search.run_once() == total + 1
    assert await search.checkpoint() == moved
    assert await mailer.checkpoint() == moved

    # A quiet poll processes nothing again, for either consumer.
    assert await mailer.run_once() == 0
    assert await search.run_once() == 0
    assert seen["mailer"] == seen["search"]
    assert len(set(seen["mailer"])) == len(seen["mailer"]) == total + 1
    docs = await unit.db["projection_checkpoints"].find({}).sort("_id", 1).to_list(None)
    assert [(d["_id"], d["event_id"]) for d in docs] == [("mailer", "charge:bob:later"), ("search", "charge:bob:later")]


async def test_redelivered_events_change_nothing(runtime: Runtime) -> None:
    unit = runtime.unit
    await build_history(unit)
    before = await snapshot(unit)
    events = [rec async for rec in unit.store.all_events()]

    for rec in events + events[::-1] + events:
        await unit.projections.apply(rec)

    assert await snapshot(unit) == before


async def test_redelivered_charge_is_not_counted_twice(runtime: Runtime) -> None:
    unit = runtime.unit
    h = await build_history(unit)
    charge = await unit.store.get(h.alice_charges[0])
    assert charge is not None

    await unit.projections.apply(charge)
    await unit.projections.apply(charge)

    assert await coins(unit.db, h.alice) == 5
    assert await unit.db["credit_transactions"].count_documents({"user_id": h.alice}) == 3
    doc = await unit.db["credit_transactions"].find_one({"_id": charge.id})
    assert doc is not None and doc["_applied"] == [charge.id]


async def test_a_version_gap_makes_the_stream_view_read_the_missing_events_first(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    unit = runtime.unit
    user_id = "gapuser"
    stream = f"user-{user_id}"
    meta = Meta(actor=f"user:{user_id}")
    registered = UserRegistered(
        user_id=user_id, name="Gap User", email="gap@example.com", mobile_number="9111111111", password_hash="hash-1", referral_code="GAP1"
    )
    r1 = await unit.store.append(stream, Head(), registered, event_id="gap:1", meta=meta, subject=user_id)
    r2 = await unit.store.append(
        stream, r1.recorded.head, PasswordChanged(password_hash="hash-2"), event_id="gap:2", meta=meta, subject=user_id
    )
    r3 = await unit.store.append(
        stream, r2.recorded.head, RoleGranted(role="admin", previous_role="user"), event_id="gap:3", meta=Meta(actor="system:cli")
    )
    loads: list[tuple[str, int, int | None]] = []
    real_load = unit.store.load

    async def spy_load(stream: str, after_version: int = 0, until_version: int | None = None) -> list[Recorded]:
        loads.append((stream, after_version, until_version))
        return await real_load(stream, after_version, until_version)

    monkeypatch.setattr(unit.store, "load", spy_load)

    await unit.projections.apply(r3.recorded)  # version 3 arrives first

    assert loads == [(stream, 0, 2)]
    doc = await unit.db["users"].find_one({"_id": user_id})
    assert doc is not None
    assert (doc["_v"], doc["email"], doc["name"], doc["password_hash"], doc["role"]) == (
        3,
        "gap@example.com",
        "Gap User",
        "hash-2",
        "admin",
    )

    # The late versions 2 and 1 then change nothing.
    await unit.projections.apply(r2.recorded)
    await unit.projections.apply(r1.recorded)
    assert await unit.db["users"].find_one({"_id": user_id}) == doc


async def test_a_gap_that_the_store_cannot_fill_is_reported_not_looped_on(runtime: Runtime) -> None:
    unit = runtime.unit
    h = await build_history(unit)
    await unit.db["events"].delete_one({"_id": h.alice_charges[0]})
    last = await unit.store.get(h.alice_charges[1])
    assert last is not None
    await unit.db.drop_collection("balances")

    with pytest.raises(StreamGap, match=rf"{account_stream(h.alice)} lacks versions 1\.\.2"):
        await unit.projections.apply(last)


# --------------------------------------------------------------------------- verify


async def test_verify_finds_nothing_wrong_in_an_intact_history(runtime: Runtime) -> None:
    unit = runtime.unit
    await build_history(unit)

    assert await verify(unit) == []
    # verify leaves no scratch collections behind and the live read models untouched.
    assert not [c for c in await unit.db.list_collection_names() if "__" in c]


async def test_verify_names_a_tampered_event(runtime: Runtime) -> None:
    unit = runtime.unit
    h = await build_history(unit)
    target = h.alice_charges[0]
    await unit.db["events"].update_one({"_id": target}, {"$set": {"data.amount": -1}})

    problems = await verify(unit)

    assert problems
    assert any(target in p and account_stream(h.alice) in p and "hash mismatch" in p for p in problems)
    # The altered amount also shows as a difference in the re-derived history.
    assert any(p.startswith(f"credit_transactions/{target}:") for p in problems)


async def test_verify_reports_a_deleted_event_as_a_gap(runtime: Runtime) -> None:
    unit = runtime.unit
    h = await build_history(unit)
    await unit.db["events"].delete_one({"_id": h.alice_charges[0]})

    problems = await verify(unit)

    stream = account_stream(h.alice)
    assert any(f"{stream}@3 ({h.alice_charges[1]})" in p and "version gap, expected 2" in p for p in problems)
    assert any("prev does not link" in p for p in problems)


async def test_verify_reports_a_deleted_last_event_through_the_balance(runtime: Runtime) -> None:
    unit = runtime.unit
    h = await build_history(unit)
    # Removing the newest event leaves a shorter chain that links; the balance gives it away.
    await unit.db["events"].delete_one({"_id": h.alice_charges[1]})

    problems = await verify(unit)

    assert any(p.startswith(f"balances/{h.alice}:") and "live {_v=3, coins=5" in p and "derived {_v=2, coins=8" in p for p in problems)
    assert any(p.startswith(f"credit_transactions/{h.alice_charges[1]}:") and "derived missing" in p for p in problems)


async def test_verify_reports_an_edited_balance(runtime: Runtime) -> None:
    unit = runtime.unit
    h = await build_history(unit)
    await unit.db["balances"].update_one({"_id": h.alice}, {"$set": {"coins": 1000}})

    problems = await verify(unit)

    assert len(problems) == 1
    assert problems[0].startswith(f"balances/{h.alice}: live {{")
    assert "coins=1000" in problems[0] and "derived {" in problems[0] and "coins=5" in problems[0]


async def test_verify_reports_an_unreadable_event_instead_of_crashing(runtime: Runtime) -> None:
    unit = runtime.unit
    h = await build_history(unit)
    target = h.alice_charges[0]
    await unit.db["events"].update_one({"_id": target}, {"$set": {"data.amount": "lots"}})

    problems = await verify(unit)

    assert any(target in p and "hash mismatch" in p for p in problems)
    assert any(p.startswith("read models cannot be re-derived") and target in p for p in problems)


async def test_replay_keeps_events_appended_while_it_rebuilt(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    unit = runtime.unit
    h = await build_history(unit)
    projections = unit.projections
    rebuild = projections.rebuild_into
    account = account_stream(h.bob)

    async def rebuild_then_a_writer_appends(views: Any, suffix: str) -> int:
        count = await rebuild(views, suffix)
        # A live writer appends (and applies inline to the old collections) between rebuild and swap.
        late = CoinsDeducted(user_id=h.bob, amount=-1, reason="message", reference="msg:late", balance_after=5)
        await unit.append(account, await unit.store.head(account), late, event_id="msg:late", meta=Meta(actor=f"user:{h.bob}"))
        return count

    monkeypatch.setattr(projections, "rebuild_into", rebuild_then_a_writer_appends)
    await projections.replay()

    assert await coins(unit.db, h.bob) == 5
    history = await unit.db["credit_transactions"].find_one({"_id": "msg:late"})
    assert history is not None and history["balance_after"] == 5
    monkeypatch.undo()
    assert await verify(unit) == []


async def test_accounts_without_a_referral_code_do_not_collide_in_the_users_read_model(runtime: Runtime) -> None:
    unit = runtime.unit
    for n in (1, 2):
        user_id = f"legacy{n}"
        event = UserRegistered(
            user_id=user_id, name=f"Legacy {n}", email=f"legacy{n}@example.com", mobile_number=f"900000000{n}", password_hash="x"
        )
        await unit.append(f"user-{user_id}", Head(), event, event_id=f"signup:{user_id}", meta=Meta(actor="system"), subject=user_id)
    docs = await unit.db["users"].find({"_id": {"$in": ["legacy1", "legacy2"]}}).to_list(None)
    assert sorted(d["email"] for d in docs) == ["legacy1@example.com", "legacy2@example.com"]
    assert all("referral_code" not in d for d in docs)


def test_referral_codes_are_long_and_random() -> None:
    codes = {identity.new_referral_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(len(c) == 12 and c.isalnum() and c.upper() == c for c in codes)
