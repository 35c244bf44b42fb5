"""The one way in: every state change is a command handled through the `Bus`.

HTTP routes, socket routes, workers and the CLI build a command (an attrs frozen class of an
area module) and a `Context` (who acts, for which request, from where) and call
`bus.handle(cmd, ctx)`. The bus finds the handler in the merged `HANDLERS` tables, logs the
outcome once, and, after the handler has appended and projected its events, runs the
`REACTIONS` to those events (socket pushes, revocations reaching sockets, referral credit,
erasure steps). Reactions whose loss matters are marked `redrive`: the reactions follower
(`truebond project`) runs them again from the event store, so a crash between an append and its
reaction loses nothing.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from truebond.errors import DomainError, TrueBondError
from truebond.events.base import Event, Meta, Recorded
from truebond.logging import get_logger

if TYPE_CHECKING:
    from truebond.commands.unit import Unit

log = get_logger(__name__)

R = TypeVar("R")


class Command(Generic[R]):
    """Base of every command class; `R` is what handling it returns."""


@attrs.frozen
class Context:
    """Who issues a command and from where; built once per entry point (request, socket event, job).

    `actor` is `user:<id>`, `admin:<id>`, `stripe`, `anonymous` or `system:<worker>`; `ip` is
    already masked and `remote` is the hashed rate-limit key of the client's address;
    `socket_id` is the socket a socket event came from (its own pushes may skip it).
    """

    actor: str
    request_id: str | None = None
    causation_id: str | None = None
    ip: str = "unknown"
    device: str = "unknown"
    remote: str = ""
    socket_id: str | None = None

    @classmethod
    def system(cls, worker: str, *, causation_id: str | None = None) -> Context:
        """The context of a worker or operator command (`system:<worker>`)."""
        return cls(actor=f"system:{worker}", causation_id=causation_id)

    @property
    def user_id(self) -> str | None:
        """The id of the user or admin acting, if a person acts."""
        kind, _, ident = self.actor.partition(":")
        return ident if kind in ("user", "admin") and ident else None

    def meta(self, *, actor: str | None = None, causation_id: str | None = None) -> Meta:
        """Event metadata for this context (the only place `Meta` is made outside the store)."""
        return Meta(actor=actor or self.actor, request_id=self.request_id, causation_id=causation_id or self.causation_id)

    def caused_by(self, rec: Recorded) -> Context:
        """The context of work a recorded event causes: same request, caused by that event."""
        return attrs.evolve(self, causation_id=rec.id)


Handler = Callable[[Any, Context, "Unit"], Awaitable[Any]]
ReactionFn = Callable[[Recorded, Context, "Bus"], Awaitable[None]]


@attrs.frozen
class Reaction:
    """A side effect of an event; `redrive` ones are re-run from the store by the reactions follower."""

    run: ReactionFn
    redrive: bool = False

    @property
    def name(self) -> str:
        """The reaction function's qualified name (for logs)."""
        return getattr(self.run, "__qualname__", repr(self.run))


HandlerTable = Mapping[type[Any], Handler]
ReactionTable = Mapping[type[Event], Sequence[Reaction]]

# The events the command being handled appended (in order), for its reactions.
_collected: contextvars.ContextVar[list[Recorded] | None] = contextvars.ContextVar("truebond_collected", default=None)


def collect(rec: Recorded) -> None:
    """Note an event this command appended (called by `Unit.append` for new events only)."""
    bucket = _collected.get()
    if bucket is not None:
        bucket.append(rec)


def merge_handlers(tables: Iterable[HandlerTable]) -> dict[type[Any], Handler]:
    """One table from the areas' `HANDLERS`; a command handled twice is a wiring bug."""
    merged: dict[type[Any], Handler] = {}
    for table in tables:
        for cmd, handler in table.items():
            if cmd in merged:
                raise ValueError(f"{cmd.__name__} has two handlers")
            merged[cmd] = handler
    return merged


def merge_reactions(tables: Iterable[ReactionTable]) -> dict[type[Event], list[Reaction]]:
    """One table from the areas' `REACTIONS`, in the order the tables are given."""
    merged: dict[type[Event], list[Reaction]] = {}
    for table in tables:
        for event_class, reactions in table.items():
            merged.setdefault(event_class, []).extend(reactions)
    return merged


class Bus:
    """Dispatches commands to their handlers and events to their reactions."""

    def __init__(self, deps: Unit, handlers: HandlerTable, reactions: ReactionTable) -> None:
        self.deps = deps
        self.handlers = dict(handlers)
        self.reactions = dict(reactions)

    async def handle(self, cmd: Command[R], ctx: Context) -> R:
        """Handle one command, then react to the events it appended; returns the handler's result.

        A refusal (`DomainError`) and a failure propagate to the caller after being logged here,
        and after the reactions to whatever the handler appended before it refused or failed.
        """
        handler = self.handlers.get(type(cmd))
        if handler is None:
            raise LookupError(f"no handler for {type(cmd).__name__}")
        name = type(cmd).__name__
        bucket: list[Recorded] = []
        token = _collected.set(bucket)
        started = time.perf_counter()
        try:
            result: R = await handler(cmd, ctx, self.deps)
        except DomainError as exc:
            log.info("command.refused", command=name, error_code=exc.code, ms=_ms(started))
            raise
        except TrueBondError as exc:
            log.warning("command.failed", command=name, error_code=exc.code, error=type(exc).__name__, ms=_ms(started))
            raise
        except Exception as exc:
            log.warning("command.failed", command=name, error=type(exc).__name__, ms=_ms(started))
            raise
        else:
            log.info("command.handled", command=name, events=len(bucket), ms=_ms(started))
        finally:
            _collected.reset(token)
            # What a handler appended is stored even when it then refuses or fails (a reused
            # refresh token revokes its session, then answers 401): its reactions run all the same.
            for rec in bucket:
                await self.react(rec, ctx.caused_by(rec))
        return result

    def reactions_to(self, rec: Recorded) -> list[Reaction]:
        """The reactions registered for the event's class and its base classes."""
        found: list[Reaction] = []
        for cls in type(rec.event).__mro__:
            found.extend(self.reactions.get(cls, ()))
        return found

    async def react(self, rec: Recorded, ctx: Context, *, redrive_only: bool = False) -> None:
        """Run the reactions to one event; a failing reaction is logged and does not stop the others.

        The command's events are stored whatever a reaction does; the `redrive` ones are run
        again by the reactions follower.
        """
        for reaction in self.reactions_to(rec):
            if redrive_only and not reaction.redrive:
                continue
            try:
                await reaction.run(rec, ctx, self)
            except Exception as exc:
                log.warning("reaction.failed", reaction=reaction.name, event_type=rec.type, error=type(exc).__name__, exc_info=True)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
