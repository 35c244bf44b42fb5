"""Password reset by emailed link, and GDPR-style account deletion, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import socketio
from pymongo.errors import AutoReconnect

from tests.fakes.sendgrid import FakeSendGrid
from tests.support import otp_support
from tests.support.accounts import auth, signup, signup_body
from truebond import bootstrap
from truebond.adapters.redis_client import connect
from truebond.adapters.session_cache import SessionCache
from truebond.clock import OffsetClock
from truebond.commands.account import FinishErasure
from truebond.commands.bus import Context
from truebond.config import Settings
from truebond.workers import maintenance
from truebond.workers.reactions import reactions_follower

FORGOT = "/api/auth/forgot-password"
VALIDATE = "/api/auth/validate-reset-token"
RESET = "/api/auth/reset-password"
PASSWORD = "correct-horse-1"
NEW_PASSWORD = "Brand-new-Pass9"

mail = otp_support.mail
settings = otp_support.settings


def token_of(link: str) -> str:
    """The token query parameter of a reset link."""
    return parse_qs(urlsplit(link).query)["token"][0]


async def login(client: Any, email: str, password: str) -> Any:
    """A password login."""
    return await client.post("/api/auth/login", json={"email": email, "password": password})


# -- password reset ------------------------------------------------------------------------


async def test_reset_revokes_every_session(client: Any, runtime: bootstrap.Runtime, mail: FakeSendGrid) -> None:
    user = await signup(client)
    email = user["user"]["email"]
    second = await (await login(client, email, PASSWORD)).json()

    resp = await client.post(FORGOT, json={"email": email})
    assert resp.status == 200
    link = mail.last_link(email)
    assert link.startswith("https://app.truebond.test/reset-password?token=")
    token = token_of(link)
    assert (await (await client.get(VALIDATE, params={"token": token})).json()) == {"valid": True}

    weak = await client.post(RESET, json={"token": token, "new_password": "alllowercase1"})
    assert weak.status == 422
    resp = await client.post(RESET, json={"token": token, "new_password": NEW_PASSWORD})
    assert resp.status == 200, await resp.json()

    for tokens in (user, second):
        assert (await client.get("/api/auth/me", headers=auth(tokens["access_token"]))).status == 401
        assert (await client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})).status == 401
    assert (await login(client, email, PASSWORD)).status == 401
    assert (await login(client, email, NEW_PASSWORD)).status == 200

    # Single use.
    again = await client.post(RESET, json={"token": token, "new_password": "Another-pass7"})
    assert again.status == 400
    assert (await again.json())["code"] == "invalid_reset_token"
    assert (await (await client.get(VALIDATE, params={"token": token})).json()) == {"valid": False}
    raw = json.dumps([d async for d in runtime.unit.db["events"].find({})], default=str)
    assert token not in raw


async def test_forgot_password_answers_the_same_for_unknown_emails(client: Any, mail: FakeSendGrid) -> None:
    email = (await signup(client))["user"]["email"]
    answers = []
    for address in (email, f"ghost{uuid.uuid4().hex[:8]}@example.com"):
        resp = await client.post(FORGOT, json={"email": address})
        answers.append((resp.status, await resp.json()))
    assert answers[0] == answers[1]
    assert len(mail.mails) == 1


HOSTILE = "https://evil.example/steal"
LINK = re.compile(r"^https://app\.truebond\.test/reset-password\?token=[A-Za-z0-9_-]{40,}$")


async def test_the_link_is_built_only_from_frontend_url(client: Any, mail: FakeSendGrid) -> None:
    email = (await signup(client))["user"]["email"]
    # A redirect target in the body is refused outright (unknown fields are 422), and mails nothing.
    for field in ("redirect", "redirect_url", "next", "return_to", "callback_url", "frontend_url"):
        refused = await client.post(FORGOT, json={"email": email, field: HOSTILE})
        assert refused.status == 422, field
    assert mail.to(email) == []

    # In the query string and the headers it is ignored: the link is FRONTEND_URL's, nothing else.
    hostile_query = {"redirect": HOSTILE, "next": HOSTILE, "redirect_url": HOSTILE, "return_to": HOSTILE}
    hostile_headers = {
        "Host": "evil.example",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Prefix": "/steal",
        "X-Original-URL": HOSTILE,
        "Forwarded": "host=evil.example;proto=http",
        "Origin": "https://evil.example",
        "Referer": HOSTILE,
    }
    resp = await client.post(FORGOT, params=hostile_query, json={"email": email}, headers=hostile_headers)
    assert resp.status == 200, await resp.json()
    assert len(mail.to(email)) == 1
    text = mail.to(email)[-1].text
    assert "evil" not in text and "steal" not in text
    urls = re.findall(r"\S+://\S+", text)
    assert len(urls) == 1 and LINK.match(urls[0]), urls
    assert urls[0] == mail.last_link(email)


async def test_reset_tokens_are_kept_only_as_a_hash(client: Any, runtime: bootstrap.Runtime, mail: FakeSendGrid) -> None:
    email = (await signup(client))["user"]["email"]
    await client.post(FORGOT, json={"email": email})
    token = token_of(mail.last_link(email))
    stored = ""
    async for key in runtime.unit.redis.scan_iter("*"):
        stored += key + repr(await runtime.unit.redis.dump(key))
    assert "tb:otp:reset:" in stored
    assert token not in stored and email not in stored
    events = json.dumps([d async for d in runtime.unit.db["events"].find({})], default=str)
    assert token not in events


async def test_one_reset_link_used_twice_at_once_works_once(client: Any, runtime: bootstrap.Runtime, mail: FakeSendGrid) -> None:
    user = await signup(client)
    email = user["user"]["email"]
    await client.post(FORGOT, json={"email": email})
    token = token_of(mail.last_link(email))
    passwords = [f"Racing-pass{i}" for i in range(5)]
    answers = await asyncio.gather(*(client.post(RESET, json={"token": token, "new_password": p}) for p in passwords))
    statuses = [resp.status for resp in answers]
    assert sorted(statuses) == [200, 400, 400, 400, 400]
    winner = passwords[statuses.index(200)]
    stream = await runtime.unit.store.load(f"user-{user['user']['id']}")
    assert [rec.type for rec in stream].count("PasswordChanged") == 1
    for password in passwords:
        assert (await login(client, email, password)).status == (200 if password == winner else 401)


async def test_a_reset_link_dies_with_its_account(client: Any, mail: FakeSendGrid) -> None:
    user = await signup(client)
    email = user["user"]["email"]
    await client.post(FORGOT, json={"email": email})
    token = token_of(mail.last_link(email))
    assert (await (await client.get(VALIDATE, params={"token": token})).json()) == {"valid": True}
    assert (await client.delete("/api/users/account", headers=auth(user["access_token"]))).status == 200
    assert (await (await client.get(VALIDATE, params={"token": token})).json()) == {"valid": False}
    assert (await client.post(RESET, json={"token": token, "new_password": NEW_PASSWORD})).status == 400


async def test_reset_links_expire_after_fifteen_minutes(client: Any, mail: FakeSendGrid, clock: OffsetClock) -> None:
    email = (await signup(client))["user"]["email"]
    await client.post(FORGOT, json={"email": email})
    token = token_of(mail.last_link(email))
    clock.advance(15 * 60 + 1)
    assert (await (await client.get(VALIDATE, params={"token": token})).json()) == {"valid": False}
    assert (await client.post(RESET, json={"token": token, "new_password": NEW_PASSWORD})).status == 400


async def test_a_newer_link_replaces_the_older_one(client: Any, mail: FakeSendGrid, clock: OffsetClock) -> None:
    email = (await signup(client))["user"]["email"]
    await client.post(FORGOT, json={"email": email})
    first = token_of(mail.last_link(email))
    clock.advance(61)
    await client.post(FORGOT, json={"email": email})
    second = token_of(mail.last_link(email))
    assert (await client.post(RESET, json={"token": first, "new_password": NEW_PASSWORD})).status == 400
    assert (await client.post(RESET, json={"token": second, "new_password": NEW_PASSWORD})).status == 200


async def test_forgot_password_mail_failure_is_503(client: Any, mail: FakeSendGrid) -> None:
    email = (await signup(client))["user"]["email"]
    mail.fail_with = 500
    resp = await client.post(FORGOT, json={"email": email})
    assert resp.status == 503
    mail.fail_with = None
    assert (await client.post(FORGOT, json={"email": email})).status == 200


# -- deletion ------------------------------------------------------------------------------

PERSONAL = {
    "name": "Zenobia Quillfeather",
    "address_line": "42 Lanternmaker Lane",
    "city": "Thornbury-on-Wye",
    "state": "Westmarch",
    "country": "Elbonia",
    "pincode": "ELB-Q7X",
}
LATER_NAME = "Yolanda Brightwater"
BIO = "Tea at the Gloamwick bandstand"
FCM_TOKEN = "fcm-device-token-Vexillum-0042"


async def personal_account(client: Any, mail: FakeSendGrid, clock: OffsetClock) -> tuple[dict[str, Any], list[str]]:
    """An account that has put personal data into many kinds of events; returns it and those values."""
    body = signup_body(**PERSONAL)
    resp = await client.post("/api/auth/signup", json=body)
    user: dict[str, Any] = await resp.json()
    assert resp.status == 201, user
    email, headers = body["email"], auth(user["access_token"])
    edits = (
        ("PUT", "/api/users/profile", {"name": LATER_NAME, "bio": BIO}),
        ("PUT", "/api/users/preferences", {"interested_in": "everyone"}),
        ("POST", "/api/users/fcm-token", {"token": FCM_TOKEN}),
        ("POST", "/api/auth/email/send-otp", {"email": email}),
    )
    for method, path, payload in edits:
        done = await client.request(method, path, json=payload, headers=headers)
        assert done.status == 200, (path, await done.json())
    verified = await client.post("/api/auth/email/verify-otp", json={"email": email, "otp": mail.last_code(email)}, headers=headers)
    assert verified.status == 200
    clock.advance(61)
    assert (await client.post(FORGOT, json={"email": email})).status == 200
    names = [part for value in (PERSONAL["name"], LATER_NAME) for part in value.split()]
    values = [email, email.split("@")[0], body["mobile_number"], *PERSONAL.values(), *names, LATER_NAME, BIO, FCM_TOKEN]
    return user, values


async def readable_anywhere(runtime: bootstrap.Runtime, values: list[str]) -> list[str]:
    """The values that can still be read in any MongoDB collection (events and every read model)."""
    dump = ""
    for name in await runtime.unit.db.list_collection_names():
        dump += json.dumps([d async for d in runtime.unit.db[name].find({})], default=str).lower()
    return [value for value in values if value.lower() in dump]


async def stream_types(runtime: bootstrap.Runtime, user_id: str) -> list[str]:
    """The event types of a user's stream."""
    return [rec.type for rec in await runtime.unit.store.load(f"user-{user_id}")]


async def test_deletion_shreds_personal_data_and_frees_the_email(
    client: Any, runtime: bootstrap.Runtime, mail: FakeSendGrid, clock: OffsetClock
) -> None:
    user, values = await personal_account(client, mail, clock)
    user_id, email, phone = user["user"]["id"], values[0], values[2]
    # The check does see what the read model holds in the clear while the account exists.
    shown = [email, phone, PERSONAL["address_line"], PERSONAL["city"], LATER_NAME, BIO, FCM_TOKEN]
    assert set(shown) <= set(await readable_anywhere(runtime, values))
    second = await (await login(client, email, PASSWORD)).json()
    sock = socketio.AsyncClient(reconnection=False)
    gone = asyncio.Event()
    sock.on("disconnect", lambda *args: gone.set())
    await sock.connect(str(client.make_url("")), transports=["websocket"], auth={"token": second["access_token"]}, wait_timeout=5)

    with_body = await client.delete("/api/users/account", json={"confirm": True}, headers=auth(user["access_token"]))
    assert with_body.status == 422
    resp = await client.delete("/api/users/account", headers=auth(user["access_token"]))
    assert resp.status == 200, await resp.json()

    # Sessions and sockets are gone.
    await asyncio.wait_for(gone.wait(), 5)
    for tokens in (user, second):
        assert (await client.get("/api/auth/me", headers=auth(tokens["access_token"]))).status == 401
        assert (await client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})).status == 401
    assert (await login(client, email, PASSWORD)).status == 401

    # Nothing readable is left: not in the raw events, not in any read model.
    assert await readable_anywhere(runtime, values) == []
    assert (await runtime.unit.db["subject_keys"].find_one({"_id": user_id}))["key"] is None
    decoded = [rec.event for rec in await runtime.unit.store.load(f"user-{user_id}")]
    assert decoded[0].name == "[erased]"  # type: ignore[attr-defined]
    assert (await stream_types(runtime, user_id))[-2:] == ["AccountDeleted", "AccountErased"]

    # The read model is anonymised; the coin history stays, amounts only.
    doc = await runtime.unit.db["users"].find_one({"_id": user_id})
    assert doc["status"] == "deleted" and "erasure_pending" not in doc
    for field in ("email", "phone", "name", "address", "bio", "profile_pictures", "password_hash", "fcm_tokens"):
        assert field not in doc, field
    history = [d async for d in runtime.unit.db["credit_transactions"].find({"user_id": user_id})]
    assert [(h["reason"], h["amount"], h["balance_after"]) for h in history] == [("signup_bonus", 10, 10)]
    assert (await runtime.unit.db["balances"].find_one({"_id": user_id}))["coins"] == 10

    # The email and phone can be used again.
    again = await client.post("/api/auth/signup", json=signup_body(email=email, mobile_number=phone))
    assert again.status == 201, await again.json()
    assert (await again.json())["user"]["id"] != user_id


async def test_an_erasure_step_that_fails_is_finished_by_the_sweep(
    client: Any, runtime: bootstrap.Runtime, mail: FakeSendGrid, clock: OffsetClock, monkeypatch: pytest.MonkeyPatch, log_output: Any
) -> None:
    user, values = await personal_account(client, mail, clock)
    user_id = user["user"]["id"]
    viewer = await signup(client)
    keys = runtime.unit.store.keys
    real_erase = keys.erase
    attempts: list[str] = []

    async def flaky_erase(subject: str) -> None:
        attempts.append(subject)
        if len(attempts) == 1:
            raise AutoReconnect("primary stepped down")
        await real_erase(subject)

    monkeypatch.setattr(keys, "erase", flaky_erase)
    resp = await client.delete("/api/users/account", headers=auth(user["access_token"]))
    assert resp.status == 200, await resp.json()

    # The account is gone for everyone at once...
    assert (await client.get("/api/auth/me", headers=auth(user["access_token"]))).status == 401
    assert (await client.get(f"/api/users/profile/{user_id}", headers=auth(viewer["access_token"]))).status == 404
    # ...but its key survived the failed step, and the erasure is marked pending.
    assert (await runtime.unit.db["subject_keys"].find_one({"_id": user_id}))["key"] is not None
    assert (await runtime.unit.db["users"].find_one({"_id": user_id}))["erasure_pending"] is True
    assert "AccountErased" not in await stream_types(runtime, user_id)
    assert await readable_anywhere(runtime, values) == []  # not readable in storage, only decryptable
    deferred = [json.loads(line) for line in log_output.getvalue().splitlines() if "erasure_deferred" in line]
    assert deferred and deferred[0]["error"] == "AutoReconnect"
    assert values[0] not in log_output.getvalue()

    assert (await maintenance.sweep_once(runtime.bus)).erasures_finished == 1
    assert (await runtime.unit.db["subject_keys"].find_one({"_id": user_id}))["key"] is None
    assert (await runtime.unit.store.load(f"user-{user_id}"))[0].event.name == "[erased]"  # type: ignore[attr-defined]
    assert "erasure_pending" not in await runtime.unit.db["users"].find_one({"_id": user_id})
    assert (await stream_types(runtime, user_id)).count("AccountErased") == 1

    # Running it again changes nothing: no new events anywhere.
    count = await runtime.unit.db["events"].count_documents({})
    assert (await maintenance.sweep_once(runtime.bus)).erasures_finished == 0
    assert await runtime.bus.handle(FinishErasure(user_id), Context.system("test")) == 0
    assert await runtime.unit.db["events"].count_documents({}) == count
    assert await runtime.unit.projections.diff() == []


async def test_redis_down_while_revoking_is_finished_by_the_sweep(
    client: Any, runtime: bootstrap.Runtime, settings: Settings, db: Any, clock: OffsetClock, aiohttp_client: Any
) -> None:
    """Server 2 loses Redis mid-deletion: the socket on server 1 stays up until the sweep drops it."""
    other = await bootstrap.build(settings, db=db, clock=clock, fast_hashing=True)
    live = other.unit.redis
    dead = connect(otp_support.closed_port_url())
    sock = socketio.AsyncClient(reconnection=False)
    gone, pinged = asyncio.Event(), asyncio.Event()
    sock.on("disconnect", lambda *args: gone.set())
    sock.on("new_notification", lambda *args: pinged.set())
    try:
        client2 = await aiohttp_client(bootstrap.web_app(other))
        user = await signup(client)
        user_id = user["user"]["id"]
        await sock.connect(str(client.make_url("")), transports=["websocket"], auth={"token": user["access_token"]}, wait_timeout=5)
        for _ in range(50):  # until server 1 listens on the shared Redis channel
            await other.unit.notifier.emit_to_user(user_id, "new_notification", {})
            if pinged.is_set():
                break
            await asyncio.sleep(0.05)
        assert pinged.is_set()

        # Server 2's session cache, socket registry and Redis client now fail; its rate limiter still answers.
        other.unit.redis, other.unit.sessions = dead, SessionCache(dead)
        other.unit.notifier._redis = dead  # type: ignore[attr-defined]
        resp = await client2.delete("/api/users/account", headers=auth(user["access_token"]))
        assert resp.status == 200, await resp.json()
        assert (await client.get("/api/auth/me", headers=auth(user["access_token"]))).status == 401
        # The key did not wait for Redis; the socket on server 1 could not be reached.
        assert (await runtime.unit.db["subject_keys"].find_one({"_id": user_id}))["key"] is None
        await asyncio.sleep(0.3)
        assert sock.connected and not gone.is_set()
        assert (await maintenance.sweep_once(other.bus)).erasures_finished == 0  # Redis still down

        other.unit.redis, other.unit.sessions = live, SessionCache(live)
        other.unit.notifier._redis = live  # type: ignore[attr-defined]
        assert (await maintenance.sweep_once(other.bus)).erasures_finished == 1
        await asyncio.wait_for(gone.wait(), 5)
        assert (await stream_types(runtime, user_id)).count("AccountErased") == 1
        assert (await stream_types(runtime, user_id)).count("AccountDeleted") == 1
    finally:
        other.unit.redis = live
        other.unit.notifier._redis = live  # type: ignore[attr-defined]
        if sock.connected:
            await sock.disconnect()
        await dead.aclose()
        await other.close()


async def test_concurrent_deletions_erase_once(client: Any, runtime: bootstrap.Runtime) -> None:
    user = await signup(client)
    user_id = user["user"]["id"]
    answers = await asyncio.gather(*(client.delete("/api/users/account", headers=auth(user["access_token"])) for _ in range(4)))
    statuses = [resp.status for resp in answers]
    assert 200 in statuses and set(statuses) <= {200, 401}, statuses
    types = await stream_types(runtime, user_id)
    assert types.count("AccountDeleted") == 1 and types.count("AccountErased") == 1
    session_events = await runtime.unit.store.load(f"session-{user['refresh_token'].split('.')[0]}")
    assert [rec.type for rec in session_events].count("SessionRevoked") == 1
    assert (await maintenance.sweep_once(runtime.bus)).erasures_finished == 0
    assert await runtime.unit.projections.diff() == []


async def test_read_models_rebuild_the_same_after_deletions(client: Any, runtime: bootstrap.Runtime) -> None:
    for _ in range(2):
        user = await signup(client)
        assert (await client.delete("/api/users/account", headers=auth(user["access_token"]))).status == 200
    await signup(client)
    assert await runtime.unit.projections.diff() == []
    await runtime.unit.projections.replay()
    assert await runtime.unit.db["users"].count_documents({"status": "deleted"}) == 2


async def test_an_erasure_lost_in_process_is_finished_by_the_reactions_follower(
    client: Any, runtime: bootstrap.Runtime, monkeypatch: pytest.MonkeyPatch, log_output: Any
) -> None:
    """The erasure is a reaction to AccountDeleted: when it fails before the answer, the follower
    (beside the sweep) runs it again from the store."""
    user = await signup(client)
    user_id = user["user"]["id"]

    async def erasure_fails(*args: Any) -> int:
        raise ConnectionError("mongodb unavailable")

    with monkeypatch.context() as patched:
        patched.setitem(runtime.bus.handlers, FinishErasure, erasure_fails)
        assert (await client.delete("/api/users/account", headers=auth(user["access_token"]))).status == 200
    assert "AccountErased" not in await stream_types(runtime, user_id)
    deferred = [json.loads(line) for line in log_output.getvalue().splitlines() if "erasure_deferred" in line]
    assert [line["error"] for line in deferred] == ["ConnectionError"]

    await reactions_follower(runtime.bus).run_once()
    assert (await stream_types(runtime, user_id)).count("AccountErased") == 1
    assert (await runtime.unit.db["subject_keys"].find_one({"_id": user_id}))["key"] is None
    assert (await maintenance.sweep_once(runtime.bus)).erasures_finished == 0
