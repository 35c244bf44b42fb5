"""The bus: one handler per command, the outcome logged once, reactions after the events."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from truebond.bootstrap import Runtime
from truebond.commands.bus import Bus, Command, Context, Reaction, merge_handlers, merge_reactions
from truebond.commands.decide import Decision, decide_and_append, head_only
from truebond.commands.unit import Unit
from truebond.errors import Conflict
from truebond.events.base import Recorded
from truebond.events.otp import OtpExpired


@attrs.frozen
class Note(Command[int]):
    """A test command: append one OtpExpired to `otp-<stream>` (any registered event will do)."""

    stream: str
    code_id: str


@attrs.frozen
class Refuse(Command[None]):
    """A test command that the rules refuse."""


async def note(cmd: Note, ctx: Context, deps: Unit) -> int:
    done = await decide_and_append(
        deps,
        f"otp-{cmd.stream}",
        head_only(f"otp-{cmd.stream}"),
        lambda _: Decision(OtpExpired(code_id=cmd.code_id, purpose="login"), f"note:{cmd.code_id}"),
        ctx.meta(),
    )
    return done[0].recorded.version


async def refuse(cmd: Refuse, ctx: Context, deps: Unit) -> None:
    raise Conflict("no")


def _bus(runtime: Runtime, reactions: dict[Any, list[Reaction]]) -> Bus:
    return Bus(runtime.unit, {Note: note, Refuse: refuse}, reactions)


async def test_reactions_run_after_the_command_with_its_context(runtime: Runtime) -> None:
    seen: list[tuple[str, str | None, str]] = []

    async def remember(rec: Recorded, ctx: Context, bus: Bus) -> None:
        # The event is stored and projected before any reaction runs.
        assert await bus.deps.store.get(rec.id) is not None
        seen.append((rec.id, ctx.causation_id, ctx.actor))

    bus = _bus(runtime, {OtpExpired: [Reaction(remember)]})
    ctx = Context(actor="user:u1", request_id="req-1")
    assert await bus.handle(Note("s1", "c1"), ctx) == 1
    assert seen == [("note:c1", "note:c1", "user:u1")]
    # A repeated idempotency id appends nothing, so nothing reacts again.
    assert await bus.handle(Note("s1", "c1"), ctx) == 1
    assert len(seen) == 1
    stored = await runtime.unit.store.get("note:c1")
    assert stored is not None and (stored.meta.actor, stored.meta.request_id) == ("user:u1", "req-1")


async def test_a_failing_reaction_is_logged_and_does_not_stop_the_others(runtime: Runtime, log_output: Any) -> None:
    ran: list[str] = []

    async def breaks(rec: Recorded, ctx: Context, bus: Bus) -> None:
        raise ConnectionError("socket gone")

    async def works(rec: Recorded, ctx: Context, bus: Bus) -> None:
        ran.append(rec.id)

    bus = _bus(runtime, {OtpExpired: [Reaction(breaks), Reaction(works)]})
    assert await bus.handle(Note("s2", "c2"), Context(actor="system:test")) == 1
    assert ran == ["note:c2"]
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.strip()]
    failed = [line for line in lines if line.get("event") == "reaction.failed"]
    assert failed and failed[0]["error"] == "ConnectionError"
    assert any(line.get("event") == "command.handled" and line.get("command") == "Note" for line in lines)


async def test_a_refusal_propagates_and_is_logged_with_its_code(runtime: Runtime, log_output: Any) -> None:
    bus = _bus(runtime, {})
    with pytest.raises(Conflict):
        await bus.handle(Refuse(), Context(actor="anonymous"))
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.strip()]
    assert any(line.get("event") == "command.refused" and line.get("error_code") == "conflict" for line in lines)


async def test_redrive_only_runs_just_the_reactions_whose_loss_matters(runtime: Runtime) -> None:
    ran: list[str] = []

    async def push(rec: Recorded, ctx: Context, bus: Bus) -> None:
        ran.append("push")

    async def revoke(rec: Recorded, ctx: Context, bus: Bus) -> None:
        ran.append("revoke")

    bus = _bus(runtime, {OtpExpired: [Reaction(push), Reaction(revoke, redrive=True)]})
    await bus.handle(Note("s3", "c3"), Context(actor="system:test"))
    assert ran == ["push", "revoke"]
    rec = await runtime.unit.store.get("note:c3")
    assert rec is not None
    await bus.react(rec, Context.system("reactions"), redrive_only=True)
    assert ran == ["push", "revoke", "revoke"]


async def test_an_unknown_command_and_a_doubly_handled_command_are_wiring_bugs(runtime: Runtime) -> None:
    with pytest.raises(LookupError):
        await Bus(runtime.unit, {}, {}).handle(Note("s", "c"), Context(actor="system:test"))
    with pytest.raises(ValueError, match="two handlers"):
        merge_handlers([{Note: note}, {Note: note}])
    merged = merge_reactions([{OtpExpired: [Reaction(note)]}, {OtpExpired: [Reaction(refuse)]}])  # type: ignore[arg-type]
    assert len(merged[OtpExpired]) == 2


def test_the_context_names_its_person_and_makes_the_meta() -> None:
    ctx = Context(actor="admin:a1", request_id="r", causation_id="c")
    assert ctx.user_id == "a1"
    assert Context.system("bill").user_id is None
    meta = ctx.meta(actor="user:u2")
    assert (meta.actor, meta.request_id, meta.causation_id) == ("user:u2", "r", "c")


async def test_what_a_handler_appended_before_refusing_is_reacted_to(runtime: Runtime) -> None:
    """Stored events are facts: a handler that appends, then refuses (a reused refresh token
    revokes its session, then answers 401), still has its events' reactions run."""
    seen: list[str] = []

    async def note_then_refuse(cmd: Note, ctx: Context, deps: Unit) -> int:
        await note(cmd, ctx, deps)
        raise Conflict("no")

    async def remember(rec: Recorded, ctx: Context, bus: Bus) -> None:
        seen.append(rec.id)

    bus = Bus(runtime.unit, {Note: note_then_refuse}, {OtpExpired: [Reaction(remember)]})
    with pytest.raises(Conflict):
        await bus.handle(Note("s4", "c4"), Context(actor="system:test"))
    assert seen == ["note:c4"]
