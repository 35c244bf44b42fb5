"""What the admin commands share: the target account checks and the one append of an action."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from truebond.commands.bus import Context
from truebond.commands.decide import Decision, decide_and_append, read_model
from truebond.commands.unit import Unit
from truebond.errors import Forbidden, NotFound
from truebond.events.admin import AdminAction
from truebond.events.store import Appended
from truebond.projections.users import USERS


def check_target(doc: dict[str, Any] | None, actor_id: str, actor_role: str) -> dict[str, Any]:
    """The target account, refused when unknown or deleted, the admin themselves, or an admin a plain admin may not touch."""
    if doc is None or doc.get("status") == "deleted":
        raise NotFound("User not found")
    if str(doc["_id"]) == actor_id:
        raise Forbidden("Admins cannot act on their own account")
    if doc.get("role", "user") != "user" and actor_role != "super_admin":
        raise Forbidden("Only a super admin can act on an admin account")
    return doc


async def act_on_user(
    deps: Unit,
    ctx: Context,
    *,
    user_id: str,
    actor_role: str,
    event_id: str,
    decide: Callable[[dict[str, Any]], AdminAction | None],
) -> list[Appended]:
    """Decide on the target's users read model (caught up) and append the admin event it returns."""
    stream = f"user-{user_id}"
    actor_id = ctx.user_id or ""

    def step(doc: dict[str, Any] | None) -> Decision | None:
        event = decide(check_target(doc, actor_id, actor_role))
        return None if event is None else Decision(event, event_id)

    return await decide_and_append(deps, stream, read_model(USERS, stream, user_id), step, ctx.meta())
