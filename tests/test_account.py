"""Password reset by emailed link, and GDPR-style account deletion, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import socketio

from tests.conftest import TEST_JWT_SECRET, auth, signup, signup_body
from tests.fakes import sendgrid
from tests.fakes.sendgrid import FakeSendGrid
from truebond import bootstrap
from truebond.clock import OffsetClock
from truebond.config import Settings

FORGOT = "/api/auth/forgot-password"
VALIDATE = "/api/auth/validate-reset-token"
RESET = "/api/auth/reset-password"
PASSWORD = "correct-horse-1"
NEW_PASSWORD = "Brand-new-Pass9"


@pytest.fixture
async def mail(aiohttp_server: Any) -> FakeSendGrid:
    """The fake SendGrid."""
    return await sendgrid.start(aiohttp_server)


@pytest.fixture
def settings(redis_url: str, mail: FakeSendGrid) -> Settings:
    """Mail through the fake."""
    return sendgrid.settings_for(redis_url, mail, TEST_JWT_SECRET)


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


async def test_the_link_is_built_only_from_frontend_url(client: Any, mail: FakeSendGrid) -> None:
    email = (await signup(client))["user"]["email"]
    hostile = await client.post(
        FORGOT,
        json={"email": email, "redirect_url": "https://evil.example/steal"},
        headers={"Host": "evil.example", "Origin": "https://evil.example"},
    )
    assert hostile.status == 422
    resp = await client.post(FORGOT, json={"email": email}, headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"})
    assert resp.status == 200
    assert "evil" not in mail.to(email)[-1].text
    assert mail.last_link(email).startswith("https://app.truebond.test/reset-password?token=")


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


async def test_deletion_shreds_personal_data_and_frees_the_email(client: Any, runtime: bootstrap.Runtime, aiohttp_client: Any) -> None:
    body = signup_body(**PERSONAL)
    email, phone = body["email"], body["mobile_number"]
    resp = await client.post("/api/auth/signup", json=body)
    user = await resp.json()
    user_id = user["user"]["id"]
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
    assert (await login(client, email, PASSWORD)).status == 401

    # Nothing readable is left in the raw events.
    raw = json.dumps([d async for d in runtime.unit.db["events"].find({})], default=str).lower()
    for value in (email, phone, *PERSONAL.values(), email.split("@")[0]):
        assert value.lower() not in raw, value
    assert (await runtime.unit.db["subject_keys"].find_one({"_id": user_id}))["key"] is None
    decoded = [rec.event for rec in await runtime.unit.store.load(f"user-{user_id}")]
    assert decoded[0].name == "[erased]"  # type: ignore[attr-defined]

    # The read model is anonymised; the coin history stays.
    doc = await runtime.unit.db["users"].find_one({"_id": user_id})
    assert doc["status"] == "deleted"
    for field in ("email", "phone", "name", "address", "bio", "profile_pictures", "password_hash"):
        assert field not in doc, field
    history = [d async for d in runtime.unit.db["credit_transactions"].find({"user_id": user_id})]
    assert [h["amount"] for h in history] == [10]
    assert (await runtime.unit.db["balances"].find_one({"_id": user_id}))["coins"] == 10

    # The email and phone can be used again.
    again = await client.post("/api/auth/signup", json=signup_body(email=email, mobile_number=phone))
    assert again.status == 201, await again.json()
    assert (await again.json())["user"]["id"] != user_id


async def test_read_models_rebuild_the_same_after_deletions(client: Any, runtime: bootstrap.Runtime) -> None:
    for _ in range(2):
        user = await signup(client)
        assert (await client.delete("/api/users/account", headers=auth(user["access_token"]))).status == 200
    await signup(client)
    assert await runtime.unit.projections.diff() == []
    await runtime.unit.projections.replay()
    assert await runtime.unit.db["users"].count_documents({"status": "deleted"}) == 2
