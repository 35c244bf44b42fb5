"""A small history made through the real commands: two accounts, sessions, charges, a role grant.

The projection tests rebuild read models from it; the operator-command tests run `verify` and
`replay` over it.
"""

from __future__ import annotations

from typing import Any

import attrs

from truebond import bootstrap
from truebond.commands.bus import Bus, Context, merge_handlers, merge_reactions
from truebond.commands.identity import Logout, PasswordLogin, Refresh, SetRole, Signup
from truebond.commands.ledger import deduct
from truebond.commands.unit import Unit
from truebond.events.base import Meta

CONTEXT = Context(actor="anonymous", request_id="req-test", ip="127.0.0.0", device="pytest")


@attrs.frozen
class History:
    """What build_history made: two accounts and the ids of their ledger events."""

    alice: str
    bob: str
    alice_email: str
    alice_charges: tuple[str, ...]


def signup_cmd(n: int, **overrides: Any) -> Signup:
    """A valid signup command for person number `n`."""
    fields: dict[str, Any] = {
        "name": f"Person {n}",
        "email": f"person{n}@example.com",
        "mobile_number": f"98{n:08d}",
        "password": "correct-horse-1",
        "age": 30,
        "gender": "female",
        "interested_in": "male",
        "intent": "dating",
        "min_age": 25,
        "max_age": 40,
        "max_distance_km": 20,
        "city": "Pune",
    }
    fields.update(overrides)
    return Signup(**fields)


def bus_of(unit: Unit) -> Bus:
    """A bus over `unit` with every area's handlers and reactions, as bootstrap wires it."""
    areas = bootstrap.AREAS
    return Bus(unit, merge_handlers(a.HANDLERS for a in areas), merge_reactions(a.REACTIONS for a in areas))


async def build_history(unit: Unit) -> History:
    """Accounts, sessions, charges, a refresh, a revocation and a role grant, all through the commands."""
    bus = bus_of(unit)
    a = await bus.handle(signup_cmd(1), CONTEXT)
    b = await bus.handle(signup_cmd(2), CONTEXT)
    charges = []
    for n in (1, 2):
        event_id = f"charge:alice:{n}"
        await deduct(
            unit, a.user_id, n + 1, reason="message", reference=f"msg:{n}", event_id=event_id, meta=Meta(actor=f"user:{a.user_id}")
        )
        charges.append(event_id)
    await deduct(unit, b.user_id, 4, reason="call", reference="call:1", event_id="charge:bob:1", meta=Meta(actor=f"user:{b.user_id}"))
    await bus.handle(Refresh(a.refresh_token), CONTEXT)
    await bus.handle(PasswordLogin("person2@example.com", "correct-horse-1", device_id="device-2"), CONTEXT)
    await bus.handle(Logout(b.user_id, b.session_id), attrs.evolve(CONTEXT, actor=f"user:{b.user_id}"))
    await bus.handle(SetRole("person1@example.com", "admin", "support lead"), Context.system("cli"))
    return History(a.user_id, b.user_id, "person1@example.com", tuple(charges))
