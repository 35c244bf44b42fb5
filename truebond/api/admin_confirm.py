"""The two-step confirmation of destructive admin actions (API.md "Admin").

Without a valid `confirm_token` (body field or `X-Confirm-Token` header) nothing changes and the
answer is 409 `confirmation_required` with a fresh token for exactly this admin, action and target;
the repeated call with it performs the action once.
"""

from __future__ import annotations

from typing import Any

from truebond.adapters.confirm_tokens import TTL_SECONDS, ConfirmTokens
from truebond.api.routing import Req
from truebond.errors import ConfirmationRequired

HEADER = "X-Confirm-Token"


def presented(req: Req) -> str | None:
    """The token the call carries: the body's `confirm_token`, else the header."""
    for source in (req.body, req.query):
        if isinstance(source, dict) and isinstance(source.get("confirm_token"), str):
            return str(source["confirm_token"])
    return req.request.headers.get(HEADER)


async def confirmed(req: Req, action: str, target_id: str) -> None:
    """Return when the call carries this admin's unused token for `action` on `target_id`; else 409 with one."""
    tokens = ConfirmTokens(req.unit.redis, req.unit.clock)
    admin_id = req.me.user_id
    token = presented(req)
    if token and await tokens.consume(token, admin_id, action, target_id):
        return
    fresh = await tokens.issue(admin_id, action, target_id)
    extra: dict[str, Any] = {"confirm_token": fresh, "expires_in": TTL_SECONDS, "action": action, "target_id": target_id}
    raise ConfirmationRequired(**extra)
