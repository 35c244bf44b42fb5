"""The projector and the billing worker killed with SIGKILL mid-stream, then started again.

Why in-process: the tests' MongoDB is mongomock, an in-memory database that a second process
cannot share (no mongod can be installed here, and `truebond dev --data-dir` saves only at a
clean exit, so a SIGKILLed process would take its writes with it). So a worker "process" is a
runtime of its own (own store, read-model writers, Redis client, in-memory state) whose every
MongoDB and Redis call goes through a KillSwitch (tests/support/chaos.py). At a random call
number, just before the call or just after it, the process dies: that call and every later one
raise ProcessKilled, a BaseException no `except Exception` of the worker stops, so nothing it
still runs (a `finally`, a logging handler) reaches the shared stores. That is what SIGKILL
leaves behind: the shared MongoDB and Redis hold exactly a prefix of the process's calls, and a
fresh process starts from them alone. The web process keeps writing all along.

What is checked: no event lost (every id the writers were told was stored is in the store), read
models equal to a full replay (`truebond verify`), every call charged ticks 0..n-1 exactly once
(`call:<id>:tick:<n>`), none skipped while the call was live, balances = start - price x ticks.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.calls_support import balance, call, connected_call, expected_ticks, give, pair, tick_ids
from tests.support.chaos import Killable, KillSwitch, ProcessKilled
from tests.support.history import build_history
from truebond import bootstrap
from truebond.clock import OffsetClock, to_ms
from truebond.commands.bus import Context
from truebond.commands.calls import EndCall
from truebond.commands.ledger import deduct
from truebond.config import Settings
from truebond.projections.follower import Projector
from truebond.verify import verify
from truebond.workers.billing import BillingWorker

KILLS = 4
PRE_EVENTS = 150
BILLING_KILLS = 8
AUDIO_PRICE = 5


@contextlib.asynccontextmanager
async def worker_process(settings: Settings, db: Any, clock: OffsetClock, switch: KillSwitch | None) -> AsyncIterator[bootstrap.Runtime]:
    """A worker's runtime (as `truebond project` / `truebond bill` build it) that `switch` can kill."""
    shared_db = db if switch is None else Killable(db, switch)
    rt = await bootstrap.build(settings, db=shared_db, clock=clock, fast_hashing=True, sockets=False)
    real_redis = rt.unit.redis
    if switch is not None:
        rt.unit.redis = Killable(real_redis, switch)
    try:
        yield rt
    finally:
        rt.unit.redis = real_redis  # the test's own clean-up, not the dead process's
        await rt.close()


async def read_model_collections(runtime: bootstrap.Runtime) -> list[str]:
    return [view.collection for view in runtime.unit.projections.named(None)]


async def test_a_projector_killed_at_random_points_mid_stream_loses_nothing_and_ends_equal_to_a_replay(
    runtime: bootstrap.Runtime, settings: Settings, db: Any, clock: OffsetClock
) -> None:
    unit = runtime.unit
    h = await build_history(unit)
    for _ in range(PRE_EVENTS):
        await give(runtime, h.alice, 1)
    # A fresh projector deployment: every read model and checkpoint gone, the events alone remain.
    for name in (*await read_model_collections(runtime), "projection_checkpoints"):
        await db.drop_collection(name)
    rng = random.Random(12)
    written: list[str] = []
    meta = Context(actor="system:test").meta()

    async def web_writes(n: int) -> None:
        """The web process goes on charging while the projector works and dies."""
        for _ in range(n):
            event_id = f"chaos-debit:{len(written)}"
            await deduct(unit, h.bob, 1, reason="test", reference="chaos", event_id=event_id, meta=meta)
            written.append(event_id)
            await asyncio.sleep(0)

    killed = 0
    for _ in range(KILLS):
        switch = KillSwitch(at=rng.randint(3, 600), after=rng.random() < 0.5)
        async with worker_process(settings, db, clock, switch) as proc:
            projector = Projector(proc.unit.projections, batch=rng.choice([3, 7, 50]))
            task = asyncio.create_task(projector.run(asyncio.Event(), poll_seconds=0.001))
            await web_writes(1)
            done, _ = await asyncio.wait([task], timeout=20)
            assert done, "the projector neither died nor stopped"
            assert isinstance(task.exception(), ProcessKilled)
            killed += 1
            if killed == 1:
                # Killed mid-stream: part of the history is in the read models, part is not yet.
                projected = await db["credit_transactions"].count_documents({})
                assert 0 < projected < PRE_EVENTS, projected

    # A process that is not killed resumes from the checkpoint the dead ones left.
    async with worker_process(settings, db, clock, None) as proc:
        projector = Projector(proc.unit.projections)
        while await projector.run_once():
            pass
    stored = {d["_id"] for d in await db["events"].find({"_id": {"$regex": "^chaos-debit:"}}).to_list(None)}
    assert stored == set(written)
    assert await verify(unit) == []  # chains intact, every read model equal to a replay
    assert await balance(runtime, h.bob) == 10 - 4 - len(written)


async def test_a_billing_worker_killed_at_random_points_mid_call_charges_every_tick_once(
    runtime: bootstrap.Runtime, settings: Settings, db: Any, clock: OffsetClock
) -> None:
    calls: list[tuple[Any, str]] = []
    for _ in range(3):
        p = await pair(runtime)
        await give(runtime, p.caller, 190)  # 200 coins: 40 audio minutes
        calls.append((p, await connected_call(runtime, p)))
    rng = random.Random(7)
    charged_unrecorded = 0  # kills that fell between a tick's charge and the call recording it

    for _ in range(BILLING_KILLS):
        switch = KillSwitch(at=rng.randint(2, 120), after=rng.random() < 0.5)
        async with worker_process(settings, db, clock, switch) as proc:
            worker = BillingWorker(proc.bus)
            with pytest.raises(ProcessKilled):
                await worker.rebuild()
                for _step in range(200):
                    clock.advance(7)
                    await worker.run_once()
                raise AssertionError("the worker was never killed")
        for _, call_id in calls:
            charged_unrecorded += len(await tick_ids(runtime, call_id)) > (await call(runtime, call_id))["paid_ticks"]
        # The dead worker's leases run out; the next process starts on its own schedule rebuild.
        clock.advance(rng.choice([0, 31]))

    assert charged_unrecorded, "no kill fell inside a tick: the seed no longer tests that window"
    p0, hung_up = calls[0]
    await runtime.bus.handle(EndCall(p0.caller, hung_up), p0.as_caller)
    async with worker_process(settings, db, clock, None) as proc:
        worker = BillingWorker(proc.bus)
        await worker.rebuild()
        clock.advance(31)  # past any lease a dead worker held
        await worker.run_once()
        for p, call_id in calls:
            doc = await call(runtime, call_id)
            ticks = sorted(await tick_ids(runtime, call_id), key=lambda i: int(i.rsplit(":", 1)[1]))
            assert ticks == expected_ticks(call_id, doc["paid_ticks"]), ticks  # none twice, none skipped
            assert await balance(runtime, p.caller) == 200 - AUDIO_PRICE * doc["paid_ticks"]
            assert doc["credits_spent"] == AUDIO_PRICE * doc["paid_ticks"]
            if call_id != hung_up:
                # Still live: every minute that has started is paid, however often the worker died.
                elapsed = (to_ms(clock.now()) - to_ms(doc["connected_at"])).total_seconds()
                assert doc["state"] == "connected" and doc["paid_ticks"] == int(elapsed // 60) + 1, (doc["paid_ticks"], elapsed)
            else:
                assert doc["state"] == "ended" and doc["duration_seconds"] <= 60 * doc["paid_ticks"]
    assert await verify(runtime.unit) == []
