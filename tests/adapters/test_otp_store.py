"""The OTP store fails closed, stores only HMACs, and the email adapters behave."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import redis.asyncio as aioredis

from tests.fakes import sendgrid
from tests.fakes.sendgrid import FakeSendGrid
from tests.support import otp_support
from tests.support.accounts import auth, signup
from tests.support.otp_support import closed_port_url
from tests.support.secrets import TEST_JWT_SECRET
from truebond import bootstrap
from truebond.adapters.email import ConsoleEmail, EmailFailed, Mail, SendGridEmail, build_email_sender
from truebond.adapters.otp_store import ExpiredCode, OtpStore, derive_key
from truebond.adapters.redis_client import connect
from truebond.clock import OffsetClock
from truebond.commands.identity import digest
from truebond.config import Settings, load_settings
from truebond.errors import DependencyDown

OTP_ROUTES = (
    ("/api/auth/otp/send-for-login", {"email": "a@example.com"}),
    ("/api/auth/login-with-otp", {"email": "a@example.com", "otp_code": "123456"}),
    ("/api/auth/email/send-otp", {"email": "a@example.com"}),
    ("/api/auth/email/verify-otp", {"email": "a@example.com", "otp": "123456"}),
)

mail = otp_support.mail
settings = otp_support.settings


@pytest.fixture
async def dead_redis_runtime(settings: Settings, db: Any, clock: OffsetClock) -> AsyncIterator[bootstrap.Runtime]:
    """The service with REDIS_URL pointing at a closed port (same database as `runtime`)."""
    rt = await bootstrap.build(attrs.evolve(settings, redis_url=closed_port_url()), db=db, clock=clock, fast_hashing=True)
    yield rt
    await rt.close()


async def test_every_otp_endpoint_answers_503_when_redis_is_down(
    client: Any, dead_redis_runtime: bootstrap.Runtime, aiohttp_client: Any, mail: FakeSendGrid
) -> None:
    # A real account and token made while Redis was up; then the service loses Redis.
    user = await signup(client)
    dead = await aiohttp_client(bootstrap.web_app(dead_redis_runtime))
    for path, body in OTP_ROUTES:
        resp = await dead.post(path, json=body, headers=auth(user["access_token"]))
        payload = await resp.json()
        assert resp.status == 503, (path, payload)
        assert payload["code"] == "dependency_unavailable"
        assert "redis" not in payload["detail"].lower()
    assert mail.mails == []


async def test_the_otp_store_itself_fails_closed(client: Any, runtime: bootstrap.Runtime, mail: FakeSendGrid) -> None:
    """Rate limiter healthy, OTP store's Redis gone: still 503 and no mail, never a skipped check."""
    user = await signup(client)
    dead = connect(closed_port_url())
    runtime.unit.otp = OtpStore(dead, derive_key(TEST_JWT_SECRET), runtime.unit.clock)
    try:
        for path, body in OTP_ROUTES:
            body = {**body, "email": user["user"]["email"]}
            resp = await client.post(path, json=body, headers=auth(user["access_token"]))
            assert resp.status == 503, (path, await resp.json())
        forgot = await client.post("/api/auth/forgot-password", json={"email": user["user"]["email"]})
        assert forgot.status == 503
        assert mail.mails == []
    finally:
        await dead.aclose()


async def test_redis_holds_only_an_hmac_of_the_code(redis_url: str) -> None:
    client = aioredis.from_url(redis_url, decode_responses=True)
    clock = OffsetClock()
    store = OtpStore(client, derive_key(TEST_JWT_SECRET), clock, prefix="tb:test-otp:")
    ehash = digest("someone@example.com")
    await store.reserve_send("otp", "login", ehash, "203.0.113.9", "ticket-1")
    await store.store_code("login", ehash, "424242", "code-1")
    dump = ""
    async for key in client.scan_iter("tb:test-otp:*"):
        dump += key + repr(await client.dump(key))
    assert "424242" not in dump
    assert "someone@example.com" not in dump
    assert "203.0.113.9" not in dump
    # The purpose is part of the MAC: the same code for another purpose is another value.
    assert store.mac("login", ehash, "424242") != store.mac("email_verify", ehash, "424242")
    outcome = await store.verify("email_verify", ehash, "424242", "203.0.113.9", "a1")
    assert outcome.status == "missing"
    assert (await store.verify("login", ehash, "424242", "203.0.113.9", "a2")).status == "ok"
    assert (await store.verify("login", ehash, "424242", "203.0.113.9", "a3")).status == "missing"
    await client.aclose()


async def test_store_raises_dependency_down_on_every_call() -> None:
    client = connect(closed_port_url())
    store = OtpStore(client, derive_key(TEST_JWT_SECRET), OffsetClock())
    ehash = digest("x@example.com")
    calls = (
        store.reserve_send("otp", "login", ehash, "ip", "t"),
        store.release_send("otp", ehash, "ip", "t"),
        store.store_code("login", ehash, "123456", "c"),
        store.verify("login", ehash, "123456", "ip", "a"),
        store.put_reset_token("tok", "u"),
        store.reset_token_user("tok", consume=True),
        store.expired_codes(),
        store.forget_expired([ExpiredCode("login", ehash, "c", f"login:{ehash}:c")]),
    )
    for call in calls:
        with pytest.raises(DependencyDown):
            await call
    await client.aclose()


async def test_console_email_writes_dev_only_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    await ConsoleEmail().send(Mail(to="a@example.com", subject="Your code", text="Your code: 123456"))
    err = capsys.readouterr().err
    assert "DEV ONLY" in err
    assert "123456" in err


def test_console_email_is_refused_outside_dev() -> None:
    values = {"JWT_SECRET": TEST_JWT_SECRET, "EMAIL_PROVIDER": "console"}
    dev = load_settings("dev", values)
    assert isinstance(build_email_sender(dev), ConsoleEmail)
    with pytest.raises(ValueError, match="sendgrid"):
        build_email_sender(attrs.evolve(dev, mode="serve"))


async def test_the_store_runs_on_dev_mode_in_process_redis() -> None:
    """`truebond dev` uses fakeredis over TCP: the same Lua scripts must work there."""
    from truebond.adapters.redis_client import EmbeddedRedis

    embedded = EmbeddedRedis()
    client = connect(embedded.start())
    try:
        clock = OffsetClock()
        store = OtpStore(client, derive_key(TEST_JWT_SECRET), clock)
        ehash = digest("dev@example.com")
        await store.reserve_send("otp", "login", ehash, "ip", "t1")
        await store.store_code("login", ehash, "111111", "c1")
        outcomes = [(await store.verify("login", ehash, "222222", "ip", f"a{i}")).status for i in range(5)]
        assert outcomes == ["wrong", "wrong", "wrong", "wrong", "locked_now"]
        assert (await store.verify("login", ehash, "111111", "ip", "a9")).status == "locked"
        await store.store_code("email_verify", ehash, "333333", "c2")
        assert await store.expired_codes() == []
        clock.advance(5 * 60)
        assert [c.code_id for c in await store.expired_codes()] == ["c2"]  # c1 was voided by the lock
        await store.put_reset_token("reset-token-value", "user-1")
        assert await store.reset_token_user("reset-token-value", consume=True) == "user-1"
        assert await store.reset_token_user("reset-token-value", consume=True) is None
    finally:
        await client.aclose()
        embedded.stop()


async def test_sendgrid_adapter_speaks_v3_mail_send(mail: FakeSendGrid) -> None:
    sender = SendGridEmail(sendgrid.API_KEY, sendgrid.SENDER, mail.url)
    try:
        await sender.send(Mail(to="someone@example.com", subject="Hello", text="Your code: 123456"))
        assert [(m.to, m.sender, m.subject, m.text) for m in mail.mails] == [
            ("someone@example.com", sendgrid.SENDER, "Hello", "Your code: 123456")
        ]
    finally:
        await sender.close()


async def test_sendgrid_refusals_and_outages_are_email_failed(mail: FakeSendGrid) -> None:
    message = Mail(to="someone@example.com", subject="Hello", text="Your code: 123456")
    senders = (
        SendGridEmail("SG.wrong-key", sendgrid.SENDER, mail.url),  # 401
        SendGridEmail(sendgrid.API_KEY, sendgrid.SENDER, closed_port_url().replace("redis://", "http://")),
    )
    for sender in senders:
        try:
            with pytest.raises(EmailFailed) as failed:
                await sender.send(message)
            assert "SG." not in str(failed.value) and "123456" not in str(failed.value)
        finally:
            await sender.close()
    mail.fail_with = 503
    sender = SendGridEmail(sendgrid.API_KEY, sendgrid.SENDER, mail.url)
    try:
        with pytest.raises(EmailFailed):
            await sender.send(message)
    finally:
        await sender.close()
    assert mail.mails == []
