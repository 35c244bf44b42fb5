"""`truebond dev --admin EMAIL[:ROLE]`: the embedded database lives in the dev process, so the
roles command cannot reach it; these grants go through the same audited role command (actor
`system:dev`), at start for an existing account and at signup for a new one.

`Settings.dev_admins` is empty unless `truebond dev` was given `--admin` (serve has no such flag).
"""

from __future__ import annotations

from truebond.commands.bus import Bus, Context, HandlerTable, Reaction, ReactionTable
from truebond.commands.identity import SetRole, normalise_email
from truebond.events.base import Recorded
from truebond.events.identity import UserRegistered
from truebond.logging import get_logger
from truebond.projections import users as users_view

log = get_logger(__name__)

REASON = "truebond dev --admin"
ROLES = ("admin", "super_admin")


def parse_admin(value: str) -> tuple[str, str]:
    """`EMAIL[:ROLE]` as (normalised email, role); ROLE defaults to super_admin."""
    email, _, role = value.rpartition(":") if value.rsplit(":", 1)[-1] in ROLES else (value, "", "super_admin")
    email = normalise_email(email)
    if "@" not in email:
        raise ValueError(f"not an email: {value!r}")
    return email, role


async def grant_dev_admins(bus: Bus) -> int:
    """At start: grant each listed existing account its role (already holding it: nothing); returns how many changed."""
    changed = 0
    for email, role in bus.deps.settings.dev_admins:
        user = await users_view.by_email(bus.deps.db, email)
        if user is None or user.get("status") != "active" or user.get("role") == role:
            continue
        await bus.handle(SetRole(email, role, REASON), Context.system("dev"))
        changed += 1
    return changed


async def grant_at_signup(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """Reaction to UserRegistered: a listed email gets its role as soon as it signs up."""
    event = rec.event
    assert isinstance(event, UserRegistered)
    roles = dict(bus.deps.settings.dev_admins)
    role = roles.get(normalise_email(event.email))
    if role is not None:
        await bus.handle(SetRole(event.email, role, REASON), Context.system("dev", causation_id=rec.id))
        log.info("dev.admin_granted", role=role)


HANDLERS: HandlerTable = {}
REACTIONS: ReactionTable = {UserRegistered: [Reaction(grant_at_signup)]}
