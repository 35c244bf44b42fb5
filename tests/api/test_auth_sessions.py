"""Identity over HTTP: signup, login, refresh rotation, logout, sessions, token checks, log hygiene."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import jwt
import pytest
import redis

from tests.support.accounts import auth, signup, signup_body
from tests.support.secrets import TEST_JWT_SECRET
from truebond import bootstrap
from truebond.adapters.tokens import ACCESS_TTL_SECONDS
from truebond.clock import OffsetClock
from truebond.commands.account import FinishErasure
from truebond.commands.bus import Context
from truebond.commands.identity import PasswordLogin
from truebond.errors import Unauthorized
from truebond.workers.reactions import reactions_follower

ANDROID_CHROME = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"
WINDOWS_FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0"


async def login(client: Any, email: str, password: str = "correct-horse-1", **headers: str) -> Any:
    return await client.post("/api/auth/login", json={"email": email, "password": password}, headers=headers or None)


async def logged_in(client: Any, email: str, user_agent: str | None = None) -> dict[str, Any]:
    resp = await client.post(
        "/api/auth/login",
        json={"email": email, "password": "correct-horse-1"},
        headers={"User-Agent": user_agent} if user_agent else None,
    )
    body: dict[str, Any] = await resp.json()
    assert resp.status == 200, body
    return body


async def me_status(client: Any, token: str) -> int:
    resp = await client.get("/api/auth/me", headers=auth(token))
    status: int = resp.status
    return status


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "request_id"}


# --------------------------------------------------------------------------- signup


async def test_signup_answers_201_with_tokens_user_and_ten_coins(client: Any) -> None:
    payload = signup_body(email="  Meera.Nair@Example.COM ")
    resp = await client.post("/api/auth/signup", json=payload)
    body = await resp.json()
    assert resp.status == 201, body
    assert body["token_type"] == "bearer"
    assert body["access_token"] and body["refresh_token"]
    assert body["message"]
    user = body["user"]
    assert user["coins"] == 10
    assert user["role"] == "user"
    assert user["email"] == "meera.nair@example.com"
    assert user["name"] == "Asha Rao"
    assert "password_hash" not in json.dumps(body)
    assert "correct-horse-1" not in json.dumps(body)
    cookie = resp.headers.get("Set-Cookie", "")
    assert cookie.startswith("__Host-tb_refresh=")
    lowered = cookie.lower()
    assert "secure" in lowered and "httponly" in lowered and "samesite=strict" in lowered and "path=/" in lowered

    me = await client.get("/api/auth/me", headers=auth(body["access_token"]))
    me_body = await me.json()
    assert me.status == 200
    assert me_body["coins"] == 10
    assert me_body["id"] == user["id"]
    assert me_body["age"] == 27
    assert me_body["preferences"]["max_distance_km"] == 25
    assert "password_hash" not in me_body


async def test_the_same_email_twice_is_409_even_with_other_case(client: Any) -> None:
    first = await signup(client)
    again = await client.post("/api/auth/signup", json=signup_body(email=first["user"]["email"].upper()))
    body = await again.json()
    assert again.status == 409, body
    assert body["code"] == "email_taken"
    assert "access_token" not in body


async def test_ten_concurrent_signups_with_one_email_make_exactly_one_account(client: Any, runtime: bootstrap.Runtime) -> None:
    email = signup_body()["email"]
    responses = await asyncio.gather(*(client.post("/api/auth/signup", json=signup_body(email=email)) for _ in range(10)))
    statuses = sorted(r.status for r in responses)
    bodies = [await r.json() for r in responses]
    assert statuses == [201] + [409] * 9, bodies
    assert sum(1 for b in bodies if "access_token" in b) == 1
    assert await runtime.unit.db["users"].count_documents({"email": email}) == 1
    winner = next(b for b in bodies if "access_token" in b)
    assert (await logged_in(client, email))["user"]["id"] == winner["user"]["id"]


async def test_released_mobile_number_is_not_taken_by_a_losing_signup(client: Any) -> None:
    first = await signup(client)
    phone = signup_body()["mobile_number"]
    loser = await client.post("/api/auth/signup", json=signup_body(email=first["user"]["email"], mobile_number=phone))
    assert loser.status == 409
    # The phone of the failed signup is free again for a real account.
    ok = await client.post("/api/auth/signup", json=signup_body(mobile_number=phone))
    assert ok.status == 201, await ok.json()


# --------------------------------------------------------------------------- login


async def test_login_answers_tokens_and_verified_flag(client: Any) -> None:
    account = await signup(client)
    body = await logged_in(client, account["user"]["email"].upper())
    assert body["user"]["id"] == account["user"]["id"]
    assert body["user"]["coins"] == 10
    assert body["user"]["is_verified"] is False
    assert body["token_type"] == "bearer"
    assert await me_status(client, body["access_token"]) == 200


async def test_wrong_email_and_wrong_password_look_the_same(client: Any) -> None:
    account = await signup(client)
    wrong_password = await login(client, account["user"]["email"], "not-the-password")
    unknown_email = await login(client, "nobody-here@example.com", "not-the-password")
    a, b = await wrong_password.json(), await unknown_email.json()
    assert wrong_password.status == unknown_email.status == 401
    assert without_request_id(a) == without_request_id(b)
    assert a["code"] == "unauthorized"
    assert a["request_id"] != b["request_id"]
    assert a["detail"] == "Invalid email or password"


async def test_a_hundred_failures_in_an_hour_lock_the_account_for_an_hour(client: Any, runtime: bootstrap.Runtime, redis_url: str) -> None:
    account = await signup(client)
    email = account["user"]["email"]
    bystander = await signup(client)
    # 98 failures from all over the place, through the login command itself: over HTTP one
    # email+IP pair gets only 10 tries per 15 minutes, and the lock is per account, not per IP.
    for n in range(98):
        with pytest.raises(Unauthorized):
            await runtime.bus.handle(PasswordLogin(email, f"guess-{n}"), Context(actor="anonymous", ip=f"198.51.{n}.x", device="botnet"))

    # The 99th failure, over HTTP, does not lock yet: the right password still opens a session.
    assert (await login(client, email, "guess-99")).status == 401
    assert (await login(client, email)).status == 200
    # The 100th does: from now on the right password gets the same answer as a wrong one.
    wrong = await login(client, email, "guess-100")
    locked = await login(client, email)
    wrong_body, locked_body = await wrong.json(), await locked.json()
    assert (wrong.status, locked.status) == (401, 401), locked_body
    assert without_request_id(locked_body) == without_request_id(wrong_body)
    assert "access_token" not in locked_body
    # Only that account is locked, and the sessions it already has keep working.
    assert (await login(client, bystander["user"]["email"])).status == 200
    assert await me_status(client, account["access_token"]) == 200

    # The lock lasts an hour, then password login works again.
    r = redis.Redis.from_url(redis_url)
    [lock_key] = [k for k in r.scan_iter(match="*lock*") if account["user"]["id"].encode() in k]
    assert 3590 <= int(r.ttl(lock_key)) <= 3600
    r.delete(lock_key)  # an hour later
    assert (await login(client, email)).status == 200


async def test_failures_of_unknown_emails_lock_nothing(client: Any, runtime: bootstrap.Runtime) -> None:
    for n in range(3):
        with pytest.raises(Unauthorized):
            await runtime.bus.handle(
                PasswordLogin("ghost@example.com", f"guess-{n}"), Context(actor="anonymous", ip="198.51.100.x", device="x")
            )
    account = await signup(client, email="ghost@example.com")
    assert (await login(client, account["user"]["email"])).status == 200


# --------------------------------------------------------------------------- refresh


async def test_refresh_rotates_and_reuse_of_the_old_token_revokes_the_session(client: Any) -> None:
    account = await signup(client)
    old_refresh = account["refresh_token"]

    rotated = await client.post("/api/auth/refresh", json={"refresh_token": old_refresh})
    new = await rotated.json()
    assert rotated.status == 200, new
    assert new["token_type"] == "bearer"
    assert new["user_id"] == account["user"]["id"]
    assert new["refresh_token"] != old_refresh
    assert await me_status(client, new["access_token"]) == 200

    # The rotated-away token is presented again: refused, and the whole session ends.
    reuse = await client.post("/api/auth/refresh", json={"refresh_token": old_refresh})
    assert reuse.status == 401
    assert (await reuse.json())["code"] == "unauthorized"
    assert await me_status(client, new["access_token"]) == 401
    assert await me_status(client, account["access_token"]) == 401
    # The newest refresh token of that session is dead too.
    after = await client.post("/api/auth/refresh", json={"refresh_token": new["refresh_token"]})
    assert after.status == 401


async def test_two_concurrent_uses_of_one_refresh_token_count_as_reuse(
    client: Any, runtime: bootstrap.Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await signup(client)
    store = runtime.unit.store
    real_append = store.append

    async def slow_append(*args: Any, **kwargs: Any) -> Any:
        # A real MongoDB round-trip: both requests read the session before either writes.
        await asyncio.sleep(0.05)
        return await real_append(*args, **kwargs)

    monkeypatch.setattr(store, "append", slow_append)
    first, second = await asyncio.gather(
        *(client.post("/api/auth/refresh", json={"refresh_token": account["refresh_token"]}) for _ in range(2))
    )
    bodies = [await first.json(), await second.json()]
    assert sorted([first.status, second.status]) == [200, 401], bodies
    # The race is a reuse: the session is revoked, so no token from it works any more.
    winner = next(b for b in bodies if "access_token" in b)
    assert await me_status(client, winner["access_token"]) == 401
    assert (await client.post("/api/auth/refresh", json={"refresh_token": winner["refresh_token"]})).status == 401


async def test_refresh_with_the_cookie(client: Any) -> None:
    account = await signup(client)
    resp = await client.post("/api/auth/refresh", json={}, cookies={"__Host-tb_refresh": account["refresh_token"]})
    body = await resp.json()
    assert resp.status == 200, body
    assert await me_status(client, body["access_token"]) == 200


async def test_refresh_with_a_made_up_token_is_401(client: Any) -> None:
    account = await signup(client)
    session_id = account["refresh_token"].split(".")[0]
    for token in (f"{session_id}.guessed-secret-value", "no-dot-in-this-token", "0" * 32 + ".x" * 10):
        resp = await client.post("/api/auth/refresh", json={"refresh_token": token})
        assert resp.status == 401, token
    # A wrong guess is not a reuse: the real session keeps working.
    assert await me_status(client, account["access_token"]) == 200


async def test_refresh_after_thirty_days_is_refused(client: Any, clock: OffsetClock) -> None:
    account = await signup(client)
    clock.advance(30 * 24 * 3600 + 60)
    resp = await client.post("/api/auth/refresh", json={"refresh_token": account["refresh_token"]})
    assert resp.status == 401


# --------------------------------------------------------------------------- logout and sessions


async def test_logout_stops_that_access_token_at_once(client: Any) -> None:
    account = await signup(client)
    other = await logged_in(client, account["user"]["email"])
    assert await me_status(client, account["access_token"]) == 200

    resp = await client.post("/api/auth/logout", headers=auth(account["access_token"]))
    assert resp.status == 200
    assert "__Host-tb_refresh" in resp.headers.get("Set-Cookie", "")
    assert await me_status(client, account["access_token"]) == 401
    refresh = await client.post("/api/auth/refresh", json={"refresh_token": account["refresh_token"]})
    assert refresh.status == 401
    # The other session of the same user is untouched.
    assert await me_status(client, other["access_token"]) == 200


async def test_logout_all_revokes_every_session(client: Any) -> None:
    account = await signup(client)
    email = account["user"]["email"]
    others = [await logged_in(client, email) for _ in range(2)]
    bystander = await signup(client)

    resp = await client.post("/api/auth/logout-all", headers=auth(account["access_token"]))
    body = await resp.json()
    assert resp.status == 200, body
    assert body["revoked"] == 3
    for tokens in [account, *others]:
        assert await me_status(client, tokens["access_token"]) == 401
        refreshed = await client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status == 401
    assert await me_status(client, bystander["access_token"]) == 200


async def test_sessions_list_masks_the_ip_and_marks_the_current_one(client: Any) -> None:
    account = await client.post("/api/auth/signup", json=signup_body(device_id="pixel-8-abc"), headers={"User-Agent": ANDROID_CHROME})
    first = await account.json()
    assert account.status == 201
    second = await logged_in(client, first["user"]["email"], user_agent=WINDOWS_FIREFOX)

    resp = await client.get("/api/auth/sessions", headers=auth(second["access_token"]))
    body = await resp.json()
    assert resp.status == 200, body
    sessions = body["sessions"]
    assert len(sessions) == 2
    by_device = {s["device"]: s for s in sessions}
    assert set(by_device) == {"Chrome on Android", "Firefox on Windows"}
    assert by_device["Chrome on Android"]["device_id"] == "pixel-8-abc"
    assert by_device["Firefox on Windows"]["current"] is True
    assert by_device["Chrome on Android"]["current"] is False
    for s in sessions:
        assert s["ip"].endswith(".x"), s["ip"]
        assert s["ip"] != "127.0.0.1"
        assert s["id"] and s["created_at"] and s["last_seen_at"]
        assert ANDROID_CHROME not in json.dumps(s)
        assert set(s) == {"id", "device_id", "device", "ip", "created_at", "last_seen_at", "current"}


async def test_deleting_my_other_session_ends_it(client: Any) -> None:
    account = await signup(client)
    other = await logged_in(client, account["user"]["email"])
    listing = await (await client.get("/api/auth/sessions", headers=auth(account["access_token"]))).json()
    other_id = next(s["id"] for s in listing["sessions"] if not s["current"])

    resp = await client.delete(f"/api/auth/sessions/{other_id}", headers=auth(account["access_token"]))
    assert resp.status == 200
    assert await me_status(client, other["access_token"]) == 401
    assert await me_status(client, account["access_token"]) == 200
    listing = await (await client.get("/api/auth/sessions", headers=auth(account["access_token"]))).json()
    assert [s["id"] for s in listing["sessions"]] != [] and other_id not in [s["id"] for s in listing["sessions"]]


async def test_deleting_another_users_session_is_404_and_changes_nothing(client: Any) -> None:
    alice = await signup(client)
    mallory = await signup(client)
    alice_sessions = await (await client.get("/api/auth/sessions", headers=auth(alice["access_token"]))).json()
    alice_session = alice_sessions["sessions"][0]["id"]

    resp = await client.delete(f"/api/auth/sessions/{alice_session}", headers=auth(mallory["access_token"]))
    body = await resp.json()
    assert resp.status == 404, body
    assert body["code"] == "not_found"
    unknown = await client.delete("/api/auth/sessions/" + "f" * 32, headers=auth(mallory["access_token"]))
    assert unknown.status == 404
    assert without_request_id(await unknown.json()) == without_request_id(body)
    assert await me_status(client, alice["access_token"]) == 200


# --------------------------------------------------------------------------- access tokens


def forge(claims: dict[str, Any], key: str = TEST_JWT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def claims_of(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


async def test_a_genuine_token_re_signed_correctly_is_accepted(client: Any) -> None:
    # Control for the forgery tests below: the same claims with the right key work.
    account = await signup(client)
    assert await me_status(client, forge(claims_of(account["access_token"]))) == 200


async def test_alg_none_token_is_401(client: Any) -> None:
    account = await signup(client)
    token = jwt.encode(claims_of(account["access_token"]), key=None, algorithm="none")
    assert await me_status(client, token) == 401


async def test_token_signed_with_another_key_is_401(client: Any) -> None:
    account = await signup(client)
    token = forge(claims_of(account["access_token"]), key="another-secret-that-is-long-enough-9876543210")
    assert await me_status(client, token) == 401


async def test_token_for_another_audience_or_issuer_is_401(client: Any) -> None:
    account = await signup(client)
    claims = claims_of(account["access_token"])
    assert await me_status(client, forge({**claims, "aud": "someone-else"})) == 401
    assert await me_status(client, forge({**claims, "iss": "someone-else"})) == 401
    no_sid = {k: v for k, v in claims.items() if k != "sid"}
    assert await me_status(client, forge(no_sid)) == 401


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_token_with_hs512_is_refused_even_with_the_right_key(client: Any) -> None:
    account = await signup(client)
    assert await me_status(client, forge(claims_of(account["access_token"]), algorithm="HS512")) == 401


async def test_expired_token_is_401(client: Any, clock: OffsetClock) -> None:
    account = await signup(client)
    assert await me_status(client, account["access_token"]) == 200
    clock.advance(16 * 60)
    resp = await client.get("/api/auth/me", headers=auth(account["access_token"]))
    assert resp.status == 401
    assert (await resp.json())["code"] == "unauthorized"
    # The refresh token still gets a fresh access token.
    refreshed = await client.post("/api/auth/refresh", json={"refresh_token": account["refresh_token"]})
    assert refreshed.status == 200
    assert await me_status(client, (await refreshed.json())["access_token"]) == 200


async def test_token_issued_in_the_future_is_401(client: Any) -> None:
    account = await signup(client)
    claims = claims_of(account["access_token"])
    later = int(time.time()) + 3600
    assert await me_status(client, forge({**claims, "iat": later, "exp": later + 900})) == 401


async def test_token_with_non_numeric_expiry_is_401_not_500(client: Any) -> None:
    account = await signup(client)
    resp = await client.get("/api/auth/me", headers=auth(forge({**claims_of(account["access_token"]), "exp": "tomorrow"})))
    assert resp.status == 401


async def test_token_of_a_revoked_session_is_401_even_when_freshly_signed(client: Any) -> None:
    account = await signup(client)
    claims = claims_of(account["access_token"])
    await client.post("/api/auth/logout", headers=auth(account["access_token"]))
    now = int(time.time())
    assert await me_status(client, forge({**claims, "iat": now, "exp": now + 600})) == 401


async def test_token_pointing_at_someone_elses_session_is_401(client: Any) -> None:
    alice = await signup(client)
    bob = await signup(client)
    forged = forge({**claims_of(alice["access_token"]), "sid": claims_of(bob["access_token"])["sid"]})
    assert await me_status(client, forged) == 401


async def test_malformed_authorization_headers_are_401(client: Any) -> None:
    account = await signup(client)
    for header in (account["access_token"], f"Basic {account['access_token']}", "Bearer ", "Bearer not.a.jwt"):
        resp = await client.get("/api/auth/me", headers={"Authorization": header})
        assert resp.status == 401, header


async def test_access_token_is_hs256_with_the_design_claims_and_lives_fifteen_minutes(client: Any, clock: OffsetClock) -> None:
    account = await signup(client)
    token = account["access_token"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = claims_of(token)
    assert set(claims) == {"sub", "sid", "role", "iss", "aud", "exp", "iat", "jti"}
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert (claims["sub"], claims["role"]) == (account["user"]["id"], "user")

    clock.advance(14 * 60 + 30)
    assert await me_status(client, token) == 200
    clock.advance(60)
    assert await me_status(client, token) == 401


async def test_a_session_redis_forgot_is_checked_against_the_sessions_read_model(
    client: Any, runtime: bootstrap.Runtime, redis_url: str
) -> None:
    account = await signup(client)
    ended = await logged_in(client, account["user"]["email"])
    assert (await client.post("/api/auth/logout", headers=auth(ended["access_token"]))).status == 200
    session_id = claims_of(account["access_token"])["sid"]
    assert await runtime.unit.sessions.owner(session_id) == account["user"]["id"]

    redis.Redis.from_url(redis_url).flushdb()  # Redis restarted empty: the allow-list is gone
    assert await runtime.unit.sessions.owner(session_id) is None

    # The live session still works (the read model says so) and is put back on the allow-list;
    # the revoked one stays refused.
    assert await me_status(client, account["access_token"]) == 200
    assert await runtime.unit.sessions.owner(session_id) == account["user"]["id"]
    assert await me_status(client, ended["access_token"]) == 401


async def test_answers_carry_the_fields_api_md_names(client: Any) -> None:
    resp = await client.post("/api/auth/signup", json=signup_body())
    created = await resp.json()
    assert resp.status == 201
    assert set(created) == {"message", "access_token", "refresh_token", "token_type", "user"}
    assert {"id", "name", "email", "role", "coins"} <= set(created["user"])
    assert "password_hash" not in created["user"] and "phone" not in created["user"]

    logged = await logged_in(client, created["user"]["email"])
    assert set(logged) == {"message", "access_token", "refresh_token", "token_type", "user"}
    assert set(logged["user"]) == {"id", "name", "email", "role", "coins", "credits_balance", "is_verified"}

    resp = await client.post("/api/auth/refresh", json={"refresh_token": logged["refresh_token"]})
    refreshed = await resp.json()
    assert resp.status == 200
    # API.md, last section: the refresh answer's user object carries credits_balance like the others.
    assert set(refreshed) == {"access_token", "refresh_token", "token_type", "user_id", "user"}
    assert refreshed["user"]["credits_balance"] == refreshed["user"]["coins"]

    resp = await client.post("/api/auth/logout-all", headers=auth(refreshed["access_token"]))
    ended = await resp.json()
    assert resp.status == 200
    assert ended["revoked"] == 2 and isinstance(ended["revoked"], int)


# --------------------------------------------------------------------------- logs


async def test_logs_of_signup_and_logins_hold_no_email_password_or_token(client: Any, log_output: Any) -> None:
    payload = signup_body(password="Very-Secret-Pass-42")
    resp = await client.post("/api/auth/signup", json=payload)
    account = await resp.json()
    assert resp.status == 201
    good = await login(client, payload["email"], "Very-Secret-Pass-42")
    session = await good.json()
    assert good.status == 200
    bad = await login(client, payload["email"], "Wrong-Secret-Pass-43")
    assert bad.status == 401
    refreshed = await client.post("/api/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refreshed.status == 200
    await client.get("/api/auth/me", headers=auth(session["access_token"]))

    logs = log_output.getvalue()
    assert "http.request" in logs  # something was logged
    for secret in (
        payload["email"],
        payload["email"].split("@")[0],
        payload["mobile_number"],
        "Very-Secret-Pass-42",
        "Wrong-Secret-Pass-43",
        account["access_token"],
        account["refresh_token"],
        account["refresh_token"].split(".", 1)[1],
        session["access_token"],
        session["refresh_token"],
        (await refreshed.json())["refresh_token"],
    ):
        assert secret not in logs, secret


async def test_a_lost_revocation_in_redis_cannot_outlive_an_access_token(client: Any, runtime: bootstrap.Runtime, redis_url: str) -> None:
    account = await signup(client)
    token = account["access_token"]
    key = f"tb:sess:{claims_of(token)['sid']}"
    cache = redis.Redis.from_url(redis_url)
    # The allow-list entry lives no longer than an access token, as written at login and as
    # written again from the read model after a miss.
    assert 0 < cache.ttl(key) <= ACCESS_TTL_SECONDS
    cache.delete(key)
    assert await me_status(client, token) == 200
    assert 0 < cache.ttl(key) <= ACCESS_TTL_SECONDS

    # The revocation is recorded, but its DEL never reaches Redis (a blip at the wrong moment).
    async def lost(session_id: str) -> None:
        return None

    runtime.unit.sessions.revoke = lost  # type: ignore[method-assign]
    assert (await client.post("/api/auth/logout", headers=auth(token))).status == 200
    assert cache.exists(key)  # the stale entry still vouches for the session, for at most its TTL
    # Redis's clock cannot be moved from a test: remove the entry as its expiry would.
    cache.delete(key)
    assert await me_status(client, token) == 401
    assert not cache.exists(key)  # the revoked session is not put back on the allow-list


async def test_refresh_for_an_account_deleted_with_its_revocation_still_pending_is_401(
    client: Any, runtime: bootstrap.Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deletion is recorded but the step that revokes sessions failed (the sweep will finish
    it): the session is still live, and only the account's status stops its refresh token."""

    async def erasure_fails(*args: Any, **kwargs: Any) -> int:
        raise ConnectionError("redis unavailable")

    monkeypatch.setitem(runtime.bus.handlers, FinishErasure, erasure_fails)
    user = await signup(client)
    session_id = user["refresh_token"].split(".")[0]
    assert (await client.delete("/api/users/account", headers=auth(user["access_token"]))).status == 200
    session = await runtime.unit.db["sessions"].find_one({"_id": session_id})
    assert session is not None and session.get("revoked_at") is None  # the revocation is pending
    resp = await client.post("/api/auth/refresh", json={"refresh_token": user["refresh_token"]})
    body = await resp.json()
    assert resp.status == 401, body
    assert "access_token" not in body


async def test_a_revocation_whose_reaction_was_lost_is_redriven_from_the_store(
    client: Any, runtime: bootstrap.Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The logout's SessionRevoked is stored; its reaction (allow-list entry and sockets go) fails
    in-process, and the reactions follower runs it again from the store."""
    account = await signup(client)
    token = account["access_token"]

    async def redis_blip(session_id: str) -> None:
        raise ConnectionError("redis unavailable")

    with monkeypatch.context() as patched:
        patched.setattr(runtime.unit.sessions, "revoke", redis_blip)
        assert (await client.post("/api/auth/logout", headers=auth(token))).status == 200
    assert await me_status(client, token) == 200  # the stale allow-list entry still vouches for it

    assert await reactions_follower(runtime.bus).run_once() > 0
    assert await me_status(client, token) == 401
