"""Roles: the operator's `truebond roles` grants and revokes, audited as RoleGranted."""

from __future__ import annotations

from typing import Any

import attrs

from truebond.commands.bus import Command, Context
from truebond.commands.decide import Decided, Decision, decide_and_append, read_model
from truebond.commands.identity.common import ROLES, normalise_email
from truebond.commands.unit import Unit
from truebond.errors import NotFound, RoleMismatch
from truebond.events.identity import RoleGranted
from truebond.projections import users as users_view
from truebond.projections.users import USERS


@attrs.frozen
class RoleChange:
    """What a role change did: whose role changed, and from what."""

    user_id: str
    previous: str


@attrs.frozen
class SetRole(Command[RoleChange]):
    """Give the account of `email` the role `role` (audited).

    With `expected` (a revoke), the change happens only while the account holds that role;
    otherwise RoleMismatch is raised and nothing is appended.
    """

    email: str
    role: str
    reason: str = ""
    expected: str | None = None


async def set_role(cmd: SetRole, ctx: Context, deps: Unit) -> RoleChange:
    """Append RoleGranted to the account's stream, decided against its current role."""
    if cmd.role not in ROLES:
        raise ValueError(f"unknown role {cmd.role}")
    user = await users_view.by_email(deps.db, normalise_email(cmd.email))
    if user is None:
        raise NotFound("No account with that email")
    user_id = str(user["_id"])

    def decide(doc: dict[str, Any] | None) -> Decided:
        current = doc or {}
        previous = str(current.get("role", "user"))
        if cmd.expected is not None and previous != cmd.expected:
            raise RoleMismatch(f"The account's role is {previous}, not {cmd.expected}")
        # `_v` is the stream version the document is caught up to: the id names the next one.
        version = int(current.get("_v", 0)) + 1
        return Decision(RoleGranted(role=cmd.role, previous_role=previous, reason=cmd.reason), f"role:{user_id}:{version}")

    stream = f"user-{user_id}"
    done = await decide_and_append(deps, stream, read_model(USERS, stream, user_id), decide, ctx.meta())
    granted = done[0].recorded.event
    assert isinstance(granted, RoleGranted)
    return RoleChange(user_id, granted.previous_role)
