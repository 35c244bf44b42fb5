"""One cattrs converter for every event class, with upcasters for old shapes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import cattrs

from truebond.errors import InfrastructureError
from truebond.events.base import REGISTRY, Event

converter = cattrs.Converter(forbid_extra_keys=True)
converter.register_unstructure_hook(datetime, lambda d: d.astimezone(UTC).isoformat())
converter.register_structure_hook(datetime, lambda v, _: datetime.fromisoformat(v))

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

# (type name, from schema) -> function returning the data in schema + 1.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcaster(type_name: str, from_schema: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function that upgrades `type_name` data from `from_schema` to the next one."""

    def register(fn: Upcaster) -> Upcaster:
        UPCASTERS[(type_name, from_schema)] = fn
        return fn

    return register


class UnknownEventType(InfrastructureError):
    """A stored event names a type this code does not know."""


def encode(event: Event) -> dict[str, Any]:
    """The JSON-compatible data of an event (its fields, nothing else)."""
    data: dict[str, Any] = converter.unstructure(event)
    return data


def event_class(type_name: str) -> type[Event]:
    """The registered class of a stored type name; UnknownEventType when none is."""
    cls = REGISTRY.get(type_name)
    if cls is None:
        raise UnknownEventType(type_name)
    return cls


def decode(type_name: str, schema: int, data: dict[str, Any]) -> Event:
    """Rebuild an event from stored data, upcasting older schemas first."""
    cls = event_class(type_name)
    while schema < cls.schema:
        step = UPCASTERS.get((type_name, schema))
        if step is None:
            raise UnknownEventType(f"{type_name} schema {schema}")
        data = step(dict(data))
        schema += 1
    event: Event = converter.structure(data, cls)
    return event


def to_plain(value: Any) -> Any:
    """Unstructure any attrs value (commands, views) through the same converter."""
    return converter.unstructure(value)


def from_plain(value: Any, cls: type[Any]) -> Any:
    """Structure plain data into `cls` through the same converter."""
    return converter.structure(value, cls)
