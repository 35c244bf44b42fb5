"""OTP login and email verification over real HTTP, mail through a fake SendGrid."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from tests.fakes import sendgrid
from tests.fakes.sendgrid import FakeSendGrid
from tests.support import otp_support
from tests.support.accounts import auth, signup
from tests.support.otp_support import otp_events, unknown_email, wrong
from truebond import bootstrap
from truebond.clock import OffsetClock
from truebond.commands import otp
from truebond.commands.bus import Context
from truebond.commands.identity import PasswordLogin, digest
from truebond.commands.maintenance import RecordExpiredOtps
from truebond.workers import maintenance

SEND = "/api/auth/otp/send-for-login"
LOGIN = "/api/auth/login-with-otp"
EMAIL_SEND = "/api/auth/email/send-otp"
EMAIL_VERIFY = "/api/auth/email/verify-otp"

mail = otp_support.mail
settings = otp_support.settings


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    """An error body minus its per-request id."""
    return {k: v for k, v in body.items() if k != "request_id"}


def visible_headers(resp: Any) -> dict[str, str]:
    """Response headers that could tell two answers apart (minus per-request and per-moment ones)."""
    return {k: v for k, v in resp.headers.items() if k.lower() not in ("date", "x-request-id", "content-length")}


async def test_login_with_a_mailed_code(client: Any, runtime: bootstrap.Runtime, mail: FakeSendGrid) -> None:
    user = await signup(client)
    email = user["user"]["email"]
    resp = await client.post(SEND, json={"email": email.upper()})
    body = await resp.json()
    assert resp.status == 200, body
    assert body == {"success": True, "message": body["message"], "expires_in_minutes": 5}
    assert len(mail.to(email)) == 1
    sent = mail.to(email)[0]
    assert sent.sender == sendgrid.SENDER
    code = mail.last_code(email)

    resp = await client.post(LOGIN, json={"email": email, "otp_code": code, "device_id": "phone-1"})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["user_id"] == user["user"]["id"]
    assert body["is_verified"] is True
    assert body["user"]["email"] == email
    assert body["refresh_token"] and body["token_type"] == "bearer"
    me = await client.get("/api/auth/me", headers=auth(body["access_token"]))
    assert (await me.json())["is_verified"] is True

    # Single use.
    again = await client.post(LOGIN, json={"email": email, "otp_code": code})
    assert again.status == 401
    assert (await again.json())["code"] == "invalid_otp"

    assert await otp_events(runtime, email) == ["OtpSent", "OtpVerified", "OtpVerifyFailed"]
    raw = [doc async for doc in runtime.unit.db["events"].find({})]
    assert code not in json.dumps(raw, default=str)


async def test_six_wrong_codes_lock_until_the_lock_ends(
    client: Any, runtime: bootstrap.Runtime, mail: FakeSendGrid, clock: OffsetClock
) -> None:
    email = (await signup(client))["user"]["email"]
    assert (await client.post(SEND, json={"email": email})).status == 200
    code = mail.last_code(email)
    statuses = []
    for _ in range(6):
        resp = await client.post(LOGIN, json={"email": email, "otp_code": wrong(code)})
        statuses.append(resp.status)
    assert statuses == [401, 401, 401, 401, 429, 429]

    # The right code fails while locked, with the time left.
    locked = await client.post(LOGIN, json={"email": email, "otp_code": code})
    assert locked.status == 429
    assert (await locked.json())["code"] == "rate_limited"
    assert 800 <= int(locked.headers["Retry-After"]) <= 900
    # A new code cannot even be requested while locked.
    assert (await client.post(SEND, json={"email": email})).status == 429

    clock.advance(14 * 60)
    assert (await client.post(LOGIN, json={"email": email, "otp_code": code})).status == 429

    clock.advance(61)
    # The old code was voided by the lock-out.
    assert (await client.post(LOGIN, json={"email": email, "otp_code": code})).status == 401
    assert (await client.post(SEND, json={"email": email})).status == 200
    fresh = mail.last_code(email)
    resp = await client.post(LOGIN, json={"email": email, "otp_code": fresh})
    assert resp.status == 200, await resp.json()

    types = await otp_events(runtime, email)
    # 6 wrong, the right code twice while locked, the voided code once after.
    assert types.count("OtpVerifyFailed") == 9
    assert types.count("OtpLocked") == 1
    assert types[-1] == "OtpVerified"


async def test_resend_spacing_and_hourly_allowance(client: Any, mail: FakeSendGrid, clock: OffsetClock) -> None:
    email = (await signup(client))["user"]["email"]
    assert (await client.post(SEND, json={"email": email})).status == 200

    clock.advance(30)
    early = await client.post(SEND, json={"email": email})
    assert early.status == 429
    assert 1 <= int(early.headers["Retry-After"]) <= 30
    assert (await early.json())["code"] == "rate_limited"

    clock.advance(31)
    assert (await client.post(SEND, json={"email": email})).status == 200
    clock.advance(61)
    assert (await client.post(SEND, json={"email": email})).status == 200
    clock.advance(61)
    fourth = await client.post(SEND, json={"email": email})
    assert fourth.status == 429
    assert 3000 < int(fourth.headers["Retry-After"]) <= 3600 - 183 + 1
    assert len(mail.to(email)) == 3

    clock.advance(int(fourth.headers["Retry-After"]))
    assert (await client.post(SEND, json={"email": email})).status == 200
    assert len(mail.to(email)) == 4


async def test_ten_sends_per_ip_per_hour(client: Any, clock: OffsetClock) -> None:
    for _ in range(10):
        assert (await client.post(SEND, json={"email": unknown_email()})).status == 200
    over = await client.post(SEND, json={"email": unknown_email()})
    assert over.status == 429
    assert "Retry-After" in over.headers
    clock.advance(3601)
    assert (await client.post(SEND, json={"email": unknown_email()})).status == 200


async def test_thirty_verifications_per_ip_per_hour(client: Any) -> None:
    for _ in range(30):
        resp = await client.post(LOGIN, json={"email": unknown_email(), "otp_code": "123456"})
        assert resp.status == 401
    over = await client.post(LOGIN, json={"email": unknown_email(), "otp_code": "123456"})
    assert over.status == 429
    assert "Retry-After" in over.headers


async def test_answers_do_not_reveal_whether_an_account_exists(client: Any, runtime: bootstrap.Runtime, mail: FakeSendGrid) -> None:
    existing = (await signup(client))["user"]["email"]
    missing = unknown_email()

    answers = []
    for email in (existing, missing):
        resp = await client.post(SEND, json={"email": email})
        answers.append((resp.status, await resp.json()))
    assert answers[0] == answers[1]
    assert answers[0][0] == 200

    # Wrong codes, too soon a resend: the same answers again (headers included).
    wrongs, soon = [], []
    for email in (existing, missing):
        resp = await client.post(LOGIN, json={"email": email, "otp_code": "000000"})
        wrongs.append((resp.status, without_request_id(await resp.json()), visible_headers(resp)))
        resp = await client.post(SEND, json={"email": email})
        soon.append((resp.status, without_request_id(await resp.json()), visible_headers(resp)))
    assert wrongs[0] == wrongs[1] and wrongs[0][0] == 401
    assert soon[0][:2] == soon[1][:2] and soon[0][0] == 429
    assert set(soon[0][2]) == set(soon[1][2])
    assert abs(int(soon[0][2]["Retry-After"]) - int(soon[1][2]["Retry-After"])) <= 1

    # Mail went only to the account, but the unknown email left the same audit trail.
    assert len(mail.to(existing)) == 1 and mail.to(missing) == []
    assert await otp_events(runtime, existing) == await otp_events(runtime, missing) == ["OtpSent", "OtpVerifyFailed"]


async def test_unknown_emails_take_as_long_as_a_real_send(client: Any, mail: FakeSendGrid, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(otp, "DELIVERY", otp.DeliveryTimer(initial_seconds=0.0, weight=1.0))
    email = (await signup(client))["user"]["email"]
    mail.delay = 0.3
    started = time.perf_counter()
    assert (await client.post(SEND, json={"email": email})).status == 200
    known = time.perf_counter() - started
    started = time.perf_counter()
    assert (await client.post(SEND, json={"email": unknown_email()})).status == 200
    unknown = time.perf_counter() - started
    assert known >= 0.3
    assert unknown >= 0.8 * 0.3, (known, unknown)
    started = time.perf_counter()
    assert (await client.post("/api/auth/forgot-password", json={"email": unknown_email()})).status == 200
    assert time.perf_counter() - started >= 0.8 * 0.3


async def test_a_failed_mail_answers_503_and_uses_no_allowance(client: Any, mail: FakeSendGrid, clock: OffsetClock) -> None:
    email = (await signup(client))["user"]["email"]
    mail.fail_with = 500
    for _ in range(2):
        resp = await client.post(SEND, json={"email": email})
        body = await resp.json()
        assert resp.status == 503, body
        assert body["code"] == "dependency_unavailable"
        assert "500" not in body["detail"]
    mail.fail_with = None
    for _ in range(3):
        assert (await client.post(SEND, json={"email": email})).status == 200
        clock.advance(61)
    assert (await client.post(SEND, json={"email": email})).status == 429
    assert len(mail.to(email)) == 3


async def test_codes_expire_after_five_minutes(client: Any, runtime: bootstrap.Runtime, mail: FakeSendGrid, clock: OffsetClock) -> None:
    email = (await signup(client))["user"]["email"]
    await client.post(SEND, json={"email": email})
    code = mail.last_code(email)
    clock.advance(5 * 60 + 1)
    resp = await client.post(LOGIN, json={"email": email, "otp_code": code})
    assert resp.status == 401
    assert await otp_events(runtime, email) == ["OtpSent", "OtpExpired", "OtpVerifyFailed"]


async def test_email_verification_with_a_code(client: Any, runtime: bootstrap.Runtime, mail: FakeSendGrid) -> None:
    user = await signup(client)
    email, token = user["user"]["email"], user["access_token"]

    other = await client.post(EMAIL_SEND, json={"email": unknown_email()}, headers=auth(token))
    assert other.status == 403
    assert (await client.post(EMAIL_SEND, json={"email": email})).status == 401

    resp = await client.post(EMAIL_SEND, json={"email": email}, headers=auth(token))
    body = await resp.json()
    assert resp.status == 200, body
    assert body["success"] is True and body["expires_in_minutes"] == 5
    code = mail.last_code(email)
    bad = await client.post(EMAIL_VERIFY, json={"email": email, "otp": wrong(code)}, headers=auth(token))
    assert bad.status == 400
    assert (await bad.json())["code"] == "invalid_otp"
    ok = await client.post(EMAIL_VERIFY, json={"email": email, "otp": code}, headers=auth(token))
    assert ok.status == 200
    assert await ok.json() == {"success": True, "is_verified": True}

    me = await (await client.get("/api/auth/me", headers=auth(token))).json()
    assert me["is_verified"] is True
    user_events = [rec.type for rec in await runtime.unit.store.load(f"user-{user['user']['id']}")]
    assert user_events.count("EmailVerified") == 1
    again = await client.post(EMAIL_SEND, json={"email": email}, headers=auth(token))
    assert again.status == 409


async def test_codes_are_bound_to_their_purpose(client: Any, mail: FakeSendGrid, clock: OffsetClock) -> None:
    user = await signup(client)
    email, token = user["user"]["email"], user["access_token"]
    await client.post(SEND, json={"email": email})
    login_code = mail.last_code(email)
    clock.advance(61)
    assert (await client.post(EMAIL_SEND, json={"email": email}, headers=auth(token))).status == 200
    verify_code = mail.last_code(email)
    assert login_code != verify_code or pytest.skip("the two random codes collided")

    assert (await client.post(EMAIL_VERIFY, json={"email": email, "otp": login_code}, headers=auth(token))).status == 400
    assert (await client.post(LOGIN, json={"email": email, "otp_code": verify_code})).status == 401
    assert (await client.post(EMAIL_VERIFY, json={"email": email, "otp": verify_code}, headers=auth(token))).status == 200
    assert (await client.post(LOGIN, json={"email": email, "otp_code": login_code})).status == 200


async def test_validation_rejects_malformed_codes_and_unknown_fields(client: Any) -> None:
    for body in (
        {"email": "a@example.com", "otp_code": "12345"},
        {"email": "a@example.com", "otp_code": "abcdef"},
        {"email": "a@example.com", "otp_code": 123456},
        {"email": "a@example.com", "otp_code": "123456", "purpose": "email_verify"},
    ):
        assert (await client.post(LOGIN, json=body)).status == 422
    assert (await client.post(SEND, json={"email": "not-an-email"})).status == 422


async def test_deleted_or_unknown_accounts_cannot_log_in_with_a_code(client: Any, mail: FakeSendGrid) -> None:
    user = await signup(client)
    email = user["user"]["email"]
    resp = await client.delete("/api/users/account", headers=auth(user["access_token"]))
    assert resp.status == 200
    assert (await client.post(SEND, json={"email": email})).status == 200
    assert mail.to(email) == []


# -- single use under concurrency, expiry edges, code source ------------------------------------


async def test_concurrent_logins_with_one_code_succeed_exactly_once(client: Any, runtime: bootstrap.Runtime, mail: FakeSendGrid) -> None:
    user = await signup(client)
    email, token = user["user"]["email"], user["access_token"]
    assert (await client.post(SEND, json={"email": email})).status == 200
    code = mail.last_code(email)
    answers = await asyncio.gather(*(client.post(LOGIN, json={"email": email, "otp_code": code}) for _ in range(6)))
    statuses = sorted(resp.status for resp in answers)
    assert statuses == [200, 401, 401, 401, 401, 401]
    types = await otp_events(runtime, email)
    assert types.count("OtpVerified") == 1 and types.count("OtpVerifyFailed") == 5
    # Exactly one new session: the one winning login. (The signup's ended with it: the first
    # code login is the first proof of the inbox, see test_attacks.)
    winner = next(resp for resp in answers if resp.status == 200)
    sessions = await (await client.get("/api/auth/sessions", headers=auth((await winner.json())["access_token"]))).json()
    assert len(sessions["sessions"]) == 1
    assert (await client.get("/api/auth/sessions", headers=auth(token))).status == 401


async def test_concurrent_email_verifications_with_one_code_succeed_exactly_once(
    client: Any, runtime: bootstrap.Runtime, mail: FakeSendGrid
) -> None:
    user = await signup(client)
    email, token = user["user"]["email"], user["access_token"]
    assert (await client.post(EMAIL_SEND, json={"email": email}, headers=auth(token))).status == 200
    code = mail.last_code(email)
    answers = await asyncio.gather(*(client.post(EMAIL_VERIFY, json={"email": email, "otp": code}, headers=auth(token)) for _ in range(6)))
    assert sorted(resp.status for resp in answers) == [200, 400, 400, 400, 400, 400]
    assert (await otp_events(runtime, email)).count("OtpVerified") == 1
    user_events = [rec.type for rec in await runtime.unit.store.load(f"user-{user['user']['id']}")]
    assert user_events.count("EmailVerified") == 1


async def test_concurrent_sends_mail_one_code(client: Any, runtime: bootstrap.Runtime, mail: FakeSendGrid) -> None:
    email = (await signup(client))["user"]["email"]
    answers = await asyncio.gather(*(client.post(SEND, json={"email": email}) for _ in range(5)))
    assert sorted(resp.status for resp in answers) == [200, 429, 429, 429, 429]
    assert len(mail.to(email)) == 1
    assert await otp_events(runtime, email) == ["OtpSent"]
    resp = await client.post(LOGIN, json={"email": email, "otp_code": mail.last_code(email)})
    assert resp.status == 200


async def test_a_code_works_until_its_fifth_minute_ends(client: Any, mail: FakeSendGrid, clock: OffsetClock) -> None:
    email = (await signup(client))["user"]["email"]
    await client.post(SEND, json={"email": email})
    clock.advance(5 * 60 - 2)
    resp = await client.post(LOGIN, json={"email": email, "otp_code": mail.last_code(email)})
    assert resp.status == 200, await resp.json()


async def test_codes_come_from_secrets(client: Any, mail: FakeSendGrid, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[int] = []

    def randbelow(n: int) -> int:
        drawn.append(n)
        return 4321

    monkeypatch.setattr(otp.secrets, "randbelow", randbelow)
    email = (await signup(client))["user"]["email"]
    assert (await client.post(SEND, json={"email": email})).status == 200
    assert drawn == [10**6]
    assert mail.last_code(email) == "004321"


# -- expiry is audited even when nobody presents the code again ---------------------------------


async def test_an_unused_code_is_recorded_as_expired_by_the_sweep(
    client: Any, runtime: bootstrap.Runtime, mail: FakeSendGrid, clock: OffsetClock
) -> None:
    email = (await signup(client))["user"]["email"]
    await client.post(SEND, json={"email": email})
    code = mail.last_code(email)
    assert (await maintenance.sweep_once(runtime.bus)).otp_expired == 0  # not expired yet
    clock.advance(5 * 60 + 1)
    assert (await maintenance.sweep_once(runtime.bus)).otp_expired == 1
    assert await otp_events(runtime, email) == ["OtpSent", "OtpExpired"]
    assert (await maintenance.sweep_once(runtime.bus)).otp_expired == 0
    # Presenting it later is a failure, and the expiry is not recorded twice.
    assert (await client.post(LOGIN, json={"email": email, "otp_code": code})).status == 401
    assert await otp_events(runtime, email) == ["OtpSent", "OtpExpired", "OtpVerifyFailed"]
    stream = await runtime.unit.store.load(f"otp-{digest(email)}")
    assert stream[1].meta.actor == "system"
    assert stream[0].event.code_id == stream[1].event.code_id  # type: ignore[attr-defined]


async def test_used_replaced_and_voided_codes_are_never_recorded_as_expired(
    client: Any, runtime: bootstrap.Runtime, mail: FakeSendGrid, clock: OffsetClock
) -> None:
    used, replaced, voided, idle = [(await signup(client))["user"]["email"] for _ in range(4)]
    for email in (used, replaced, voided, idle):
        assert (await client.post(SEND, json={"email": email})).status == 200
    assert (await client.post(LOGIN, json={"email": used, "otp_code": mail.last_code(used)})).status == 200
    for _ in range(5):
        await client.post(LOGIN, json={"email": voided, "otp_code": wrong(mail.last_code(voided))})
    clock.advance(61)
    assert (await client.post(SEND, json={"email": replaced})).status == 200
    clock.advance(5 * 60 - 30)
    # Only the idle code has run out; the replacement code is still live.
    assert await runtime.bus.handle(RecordExpiredOtps(), Context.system("test")) == 1
    assert (await otp_events(runtime, idle))[-1] == "OtpExpired"
    for email in (used, replaced, voided):
        assert "OtpExpired" not in await otp_events(runtime, email), email
    clock.advance(60)
    assert await runtime.bus.handle(RecordExpiredOtps(), Context.system("test")) == 1
    assert await otp_events(runtime, replaced) == ["OtpSent", "OtpSent", "OtpExpired"]


async def test_a_login_on_a_new_device_ends_every_other_device_session_past_the_listed_ones(
    client: Any, runtime: bootstrap.Runtime, mail: FakeSendGrid, clock: OffsetClock
) -> None:
    """GET /api/auth/sessions lists the newest 200; a real MongoDB returns no more than that, so
    the one-device-at-a-time logout must not decide on that page (mongomock used to return all)."""
    user = await signup(client)
    email, user_id = user["user"]["email"], user["user"]["id"]
    assert (await client.post(SEND, json={"email": email})).status == 200
    first = await client.post(LOGIN, json={"email": email, "otp_code": mail.last_code(email), "device_id": "phone-a"})
    assert first.status == 200, await first.json()
    clock.advance(1)
    phone_b = PasswordLogin(email, "correct-horse-1", device_id="phone-b")
    somewhere = Context(actor="anonymous", ip="x", device="x")
    for _ in range(205):
        await runtime.bus.handle(phone_b, somewhere)
    clock.advance(61)

    assert (await client.post(SEND, json={"email": email})).status == 200
    resp = await client.post(LOGIN, json={"email": email, "otp_code": mail.last_code(email), "device_id": "phone-c"})
    assert resp.status == 200, await resp.json()

    live = await runtime.unit.db["sessions"].find({"user_id": user_id, "revoked_at": None}).to_list(None)
    assert {doc.get("device_id") for doc in live} <= {None, "phone-c"}
