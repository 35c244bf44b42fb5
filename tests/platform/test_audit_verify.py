"""`truebond verify` proves the admin audit history unbroken; a tampered audit event fails it."""

from __future__ import annotations

import contextlib
import functools
import io
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.secrets import TEST_JWT_SECRET
from truebond import __main__ as cli
from truebond import bootstrap
from truebond.commands.admin import ShadowBan, SuspendUser
from truebond.commands.bus import Context
from truebond.commands.identity import SetRole, Signup
from truebond.config import load_settings
from truebond.logging import configure_logging


@pytest.fixture
def mongo_url() -> Iterator[str]:
    """An in-memory database the test and the `verify` command both open by URL."""
    name = f"audittest{uuid.uuid4().hex[:10]}"
    yield f"mongomock://{name}"
    bootstrap._MOCK_CLIENTS.pop(name, None)
    configure_logging(json=True)


def _verify(mongo_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setenv("MONGO_URL", mongo_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setattr(cli, "configure_logging", functools.partial(configure_logging, stream=io.StringIO()))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["verify"])
    return code, out.getvalue()


async def _admin_history(mongo_url: str, redis_url: str) -> str:
    settings = load_settings("test", {"MONGO_URL": mongo_url, "REDIS_URL": redis_url, "JWT_SECRET": TEST_JWT_SECRET})
    runtime = await bootstrap.build(settings, fast_hashing=True, sockets=False)
    try:
        await bootstrap.ensure_indexes(runtime.unit)
        ids = []
        for n in range(2):
            body: dict[str, Any] = {
                "name": "Asha Rao",
                "email": f"audit{n}-{uuid.uuid4().hex[:6]}@example.com",
                "mobile_number": f"98765{uuid.uuid4().int % 10**5:05d}",
                "password": "correct-horse-1",
                "age": 27,
                "gender": "female",
                "interested_in": "male",
                "intent": "dating",
                "min_age": 24,
                "max_age": 35,
                "max_distance_km": 25,
            }
            tokens = await runtime.bus.handle(Signup(**body), Context(actor="anonymous"))
            ids.append((tokens.user_id, body["email"]))
        (admin_id, admin_email), (user_id, _) = ids
        await runtime.bus.handle(SetRole(admin_email, "admin", "on call"), Context.system("cli"))
        ctx = Context(actor=f"admin:{admin_id}", request_id="req-1")
        await runtime.bus.handle(ShadowBan(user_id, "admin", "spam"), ctx)
        await runtime.bus.handle(SuspendUser(user_id, "admin", "spam"), ctx)
        event = await runtime.unit.db["events"].find_one({"type": "UserSuspended"})
        return str(event["_id"])
    finally:
        await runtime.close()


async def _tamper(mongo_url: str, event_id: str) -> None:
    db = bootstrap.mongo_database(mongo_url)
    await db["events"].update_one({"_id": event_id}, {"$set": {"data.reason": "nothing happened here"}})


def test_verify_passes_on_an_admin_history_and_fails_on_a_tampered_audit_event(
    mongo_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    event_id = asyncio.run(_admin_history(mongo_url, redis_url))
    code, out = _verify(mongo_url, redis_url, monkeypatch)
    assert (code, out.strip()) == (0, "verify: OK")

    asyncio.run(_tamper(mongo_url, event_id))
    code, out = _verify(mongo_url, redis_url, monkeypatch)
    assert code == 1
    assert any(event_id in line and "hash mismatch" in line for line in out.splitlines()), out
