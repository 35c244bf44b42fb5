"""The one decide-and-append step every command uses: load state to the stream head, decide, append.

A writer appends with the version it read + 1; when another writer got there first the unique
(stream, version) index refuses the append and the whole step starts again from fresh state
(optimistic concurrency, `with_retry`). `decide` sees the state and returns the events to append
(or none), or raises a `DomainError` to refuse.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import attrs

from truebond.commands.unit import Unit
from truebond.events.base import Event, Head, Meta, Recorded
from truebond.events.store import Appended, ConcurrencyError, with_retry
from truebond.projections.views import Projection

S = TypeVar("S")


@attrs.frozen
class Decision:
    """One event to append, with its idempotency id (and the person whose key encrypts it)."""

    event: Event
    event_id: str
    subject: str | None = None


Decided = Decision | Sequence[Decision] | None
Loader = Callable[[Unit], Awaitable[tuple[S, Head]]]


def read_model(view: Projection, stream: str, doc_id: str) -> Loader[dict[str, Any] | None]:
    """State as the stream's read-model document, caught up to the stream head."""

    async def load(unit: Unit) -> tuple[dict[str, Any] | None, Head]:
        return await unit.load(view, stream, doc_id)

    return load


def history(stream: str) -> Loader[list[Recorded]]:
    """State as the stream's events themselves (for streams without a read model)."""

    async def load(unit: Unit) -> tuple[list[Recorded], Head]:
        events = await unit.store.load(stream)
        return events, (events[-1].head if events else Head())

    return load


def head_only(stream: str) -> Loader[None]:
    """No state, only the head: for audit streams that record whatever happens."""

    async def load(unit: Unit) -> tuple[None, Head]:
        return None, await unit.store.head(stream)

    return load


async def decide_and_append(
    unit: Unit,
    stream: str,
    load: Loader[S],
    decide: Callable[[S], Decided],
    meta: Meta,
    *,
    existing_is_conflict: bool = False,
) -> list[Appended]:
    """Load, decide and append to `stream`, retried from fresh state on a version conflict.

    Returns what was appended (an id that was already stored comes back with `created=False`).
    With `existing_is_conflict`, finding a decided event already stored counts as losing a race
    (e.g. two uses of one refresh token): the step is decided again on fresh state.
    """

    async def attempt() -> list[Appended]:
        state, head = await load(unit)
        decided = decide(state)
        decisions = [decided] if isinstance(decided, Decision) else list(decided or ())
        done: list[Appended] = []
        for decision in decisions:
            appended = await unit.append(stream, head, decision.event, event_id=decision.event_id, meta=meta, subject=decision.subject)
            if existing_is_conflict and not appended.created:
                raise ConcurrencyError(stream)
            done.append(appended)
            head = appended.recorded.head
        return done

    return await with_retry(attempt)
