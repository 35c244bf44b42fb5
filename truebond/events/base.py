"""Event classes: frozen attrs records registered under a type name and schema version."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import attrs

PERSONAL = "personal"
GENESIS_HASH = "0" * 64


class Event:
    """Base of every domain event; subclasses are `@event`-decorated attrs frozen classes."""

    type_name: ClassVar[str] = ""
    schema: ClassVar[int] = 1


E = TypeVar("E", bound=type[Event])

REGISTRY: dict[str, type[Event]] = {}


def event(type_name: str, *, schema: int = 1) -> Callable[[E], E]:
    """Register an event class under `type_name` (the name stored in the event store)."""

    def register(cls: E) -> E:
        if type_name in REGISTRY and REGISTRY[type_name] is not cls:
            raise ValueError(f"event type {type_name} registered twice")
        cls.type_name = type_name
        cls.schema = schema
        REGISTRY[type_name] = cls
        return cls

    return register


def personal(**kwargs: Any) -> Any:
    """An attrs field holding personal data: encrypted at rest with the subject's key."""
    metadata = dict(kwargs.pop("metadata", {}))
    metadata[PERSONAL] = True
    return attrs.field(metadata=metadata, **kwargs)


def personal_fields(cls: type[Event]) -> tuple[str, ...]:
    """Names of the fields of `cls` that hold personal data."""
    return tuple(f.name for f in attrs.fields(cls) if f.metadata.get(PERSONAL))  # type: ignore[arg-type]


@attrs.frozen
class Meta:
    """Who caused an event and why: actor (`user:<id>`, `admin:<id>`, `stripe`, `system`)."""

    actor: str
    request_id: str | None = None
    causation_id: str | None = None


@attrs.frozen
class Head:
    """Where a stream ends: its last version and hash (version 0 is an empty stream)."""

    version: int = 0
    hash: str = GENESIS_HASH


@attrs.frozen
class Recorded:
    """An event as stored: position, payload, metadata and chain links."""

    id: str
    stream: str
    version: int
    event: Event
    meta: Meta
    at: datetime
    prev: str
    hash: str
    subject: str | None = None

    @property
    def type(self) -> str:
        """The registered type name of the payload."""
        return self.event.type_name

    @property
    def head(self) -> Head:
        """The stream head right after this event."""
        return Head(self.version, self.hash)
