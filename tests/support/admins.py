"""Admins for tests: an account promoted with the CLI's role command, logged in as an admin."""

from __future__ import annotations

from typing import Any

from tests.support.accounts import auth, signup
from truebond import bootstrap
from truebond.commands.bus import Context
from truebond.commands.identity import SetRole

PASSWORD = "correct-horse-1"


async def make_admin(client: Any, runtime: bootstrap.Runtime, role: str = "admin") -> dict[str, Any]:
    """A new account granted `role` through SetRole (as `truebond roles grant`), with its admin token."""
    account = await signup(client)
    email = account["user"]["email"]
    await runtime.bus.handle(SetRole(email, role, "test setup"), Context.system("cli"))
    resp = await client.post("/api/admin/login", json={"email": email, "password": PASSWORD})
    body: dict[str, Any] = await resp.json()
    assert resp.status == 200, body
    return {**body, "email": email, "user_id": account["user"]["id"], "headers": auth(body["access_token"])}


async def confirmed_post(client: Any, url: str, headers: dict[str, str], **kwargs: Any) -> Any:
    """The two steps an admin screen takes: the 409 with a token, then the same call with it."""
    first = await client.post(url, headers=headers, **kwargs)
    body = await first.json()
    assert first.status == 409 and body["code"] == "confirmation_required", body
    return await client.post(url, headers={**headers, "X-Confirm-Token": body["confirm_token"]}, **kwargs)
