"""Chat helpers: two accounts, coins for a test, sends over HTTP, and no per-minute message limit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.accounts import auth, signup
from truebond.adapters.auth_gate import AuthGate, Verdict
from truebond.adapters.ratelimit import Policy, RateLimiter
from truebond.bootstrap import Runtime
from truebond.commands.bus import Context
from truebond.commands.ledger import credit, deduct
from truebond.commands.unit import new_id
from truebond.events.ledger import ReferralRewardGranted

SEND = "/api/messages/send"


async def two_users(client: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two fresh accounts (10 coins each), as signup answers them."""
    return await signup(client), await signup(client)


def uid(user: dict[str, Any]) -> str:
    """The id of a signed-up account."""
    return str(user["user"]["id"])


def hdr(user: dict[str, Any]) -> dict[str, str]:
    """The Authorization header of a signed-up account."""
    return auth(user["access_token"])


async def set_coins(runtime: Runtime, user_id: str, coins: int, current: int = 10) -> None:
    """Move a balance from `current` to `coins` through the ledger (test set-up)."""
    meta = Context(actor="system:test").meta()
    if coins > current:
        await credit(
            runtime.unit,
            user_id,
            coins - current,
            event_class=ReferralRewardGranted,
            reason="referral",
            reference="test",
            event_id=f"test-credit:{new_id()}",
            meta=meta,
        )
    elif coins < current:
        await deduct(runtime.unit, user_id, current - coins, reason="test", reference="test", event_id=f"test-debit:{new_id()}", meta=meta)


async def send(client: Any, sender: dict[str, Any], receiver: dict[str, Any], content: str = "hello", **extra: Any) -> tuple[int, Any]:
    """POST /api/messages/send; returns (status, body)."""
    resp = await client.post(SEND, json={"receiver_id": uid(receiver), "content": content, **extra}, headers=hdr(sender))
    return resp.status, await resp.json()


async def history(client: Any, viewer: dict[str, Any], other: dict[str, Any], **query: Any) -> dict[str, Any]:
    """GET /api/messages/{other}; asserts 200."""
    resp = await client.get(f"/api/messages/{uid(other)}", params=query, headers=hdr(viewer))
    body: dict[str, Any] = await resp.json()
    assert resp.status == 200, body
    return body


async def coins(client: Any, user: dict[str, Any]) -> int:
    """The balance the user sees on /api/auth/me."""
    resp = await client.get("/api/auth/me", headers=hdr(user))
    return int((await resp.json())["coins"])


@pytest.fixture
def no_message_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Lift the 30-messages-a-minute policy (tests that send more than that)."""
    original = RateLimiter.hit

    async def hit(self: RateLimiter, policy: Policy, key: str) -> None:
        if policy.name != "chat_message":
            await original(self, policy, key)

    original_check = AuthGate.check

    async def check(self: AuthGate, *args: Any, limits: Any = (), **kwargs: Any) -> Verdict:
        # The HTTP auth path counts a route's limits in its one Redis call.
        return await original_check(self, *args, limits=[(p, k) for p, k in limits if p.name != "chat_message"], **kwargs)

    monkeypatch.setattr(RateLimiter, "hit", hit)
    monkeypatch.setattr(AuthGate, "check", check)
    yield
