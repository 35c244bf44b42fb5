"""Redis killed (SIGKILL) and hung (SIGSTOP) under a running app, then brought back on the same port.

While it is away, every route that needs Redis to answer safely fails closed with 503: OTP send
and login (a code mailed before the outage is not accepted unchecked), the rate-limited routes
(a wrong password is never checked while the limiter cannot count it: no 401s, only 503s), and
the authenticated routes (their per-user limit). Nothing is stored half-done meanwhile. When
Redis is back (empty: it kept nothing), the same app recovers without a restart: tokens issued
before still work (the allow-list falls back to the sessions read model), the limits count
again, a new code logs in, and every event written before and after is there with the balances
right (`truebond verify`'s check).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.fakes import sendgrid
from tests.fakes.sendgrid import FakeSendGrid
from tests.support import otp_support
from tests.support import sockets as socket_support
from tests.support.accounts import auth, signup_body
from tests.support.chaos import StoppableRedis, stoppable_redis
from tests.support.chat import coins, history, send, two_users, uid
from tests.support.payments_support import events_of_type
from tests.support.secrets import TEST_JWT_SECRET
from tests.support.sockets import Listener, base_url
from truebond.bootstrap import Runtime
from truebond.config import Settings
from truebond.verify import verify

mail = otp_support.mail
listeners = socket_support.listeners
__all__ = ["stoppable_redis"]

OUTAGE_SECONDS = 40.0  # a hang would be a failure too


@pytest.fixture
def settings(stoppable_redis: StoppableRedis, mail: FakeSendGrid) -> Settings:
    """The app on the test's own redis-server (one this test may kill), mail through the fake."""
    return sendgrid.settings_for(stoppable_redis.url, mail, TEST_JWT_SECRET)


async def call(client: Any, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    resp = await client.request(method, path, **kwargs)
    return resp.status, await resp.json()


def unavailable(answer: tuple[int, Any]) -> bool:
    status, body = answer
    return status == 503 and body.get("code") == "dependency_unavailable" and "access_token" not in body


async def test_redis_killed_mid_run_fails_closed_and_the_app_recovers_when_it_is_back(
    client: Any, runtime: Runtime, stoppable_redis: StoppableRedis, mail: FakeSendGrid
) -> None:
    alice, bob = await two_users(client)
    email, token = alice["user"]["email"], alice["access_token"]
    assert (await send(client, alice, bob, "before", client_message_id="m-before"))[0] == 200
    assert (await call(client, "POST", "/api/auth/otp/send-for-login", json={"email": email}))[0] == 200
    code_before = mail.last_code(email)

    stoppable_redis.kill()
    async with asyncio.timeout(OUTAGE_SECONDS):
        down = {
            "otp send": await call(client, "POST", "/api/auth/otp/send-for-login", json={"email": email}),
            "otp login": await call(client, "POST", "/api/auth/login-with-otp", json={"email": email, "otp_code": code_before}),
            "password login": await call(client, "POST", "/api/auth/login", json={"email": email, "password": "correct-horse-1"}),
            "signup": await call(client, "POST", "/api/auth/signup", json=signup_body()),
            "me": await call(client, "GET", "/api/auth/me", headers=auth(token)),
            "refresh": await call(client, "POST", "/api/auth/refresh", json={"refresh_token": alice["refresh_token"]}),
            "send": await send(client, alice, bob, "during", client_message_id="m-during"),
        }
        guesses = [await call(client, "POST", "/api/auth/login", json={"email": email, "password": f"wrong-{i}"}) for i in range(12)]
    assert {name: answer[0] for name, answer in down.items() if not unavailable(answer)} == {}
    assert all(unavailable(g) for g in guesses), [g[0] for g in guesses]  # never checked unlimited
    assert [e["_id"] for e in await events_of_type(runtime, "MessageSent")] == [f"msg:{uid(alice)}:m-before"]
    assert len(mail.to(email)) == 1  # no code was mailed while its store was away

    stoppable_redis.start()  # empty, on the same port; the app is not restarted
    async with asyncio.timeout(OUTAGE_SECONDS):
        assert (await call(client, "GET", "/api/auth/me", headers=auth(token)))[0] == 200
        assert (await send(client, alice, bob, "during", client_message_id="m-during"))[0] == 200
        assert (await send(client, alice, bob, "after", client_message_id="m-after"))[0] == 200
        # The code mailed before the outage died with Redis; a new one logs in.
        stale = await call(client, "POST", "/api/auth/login-with-otp", json={"email": email, "otp_code": code_before})
        assert stale[0] == 401, stale
        assert (await call(client, "POST", "/api/auth/otp/send-for-login", json={"email": email}))[0] == 200
        fresh = await call(client, "POST", "/api/auth/login-with-otp", json={"email": email, "otp_code": mail.last_code(email)})
        assert fresh[0] == 200 and fresh[1]["access_token"], fresh
        # The limiter counts again: the 11th wrong password of 15 minutes is refused unchecked.
        statuses = [(await call(client, "POST", "/api/auth/login", json={"email": email, "password": f"no-{i}"}))[0] for i in range(11)]
    assert statuses == [401] * 10 + [429]
    sent = [e["_id"] for e in await events_of_type(runtime, "MessageSent")]
    assert sorted(sent) == sorted(f"msg:{uid(alice)}:{k}" for k in ("m-before", "m-during", "m-after"))
    assert [m["content"] for m in (await history(client, bob, alice))["messages"]] == ["before", "during", "after"]
    # (the first proof of the email by code ended the older sessions, by design: read with the new token)
    me = await call(client, "GET", "/api/auth/me", headers=auth(fresh[1]["access_token"]))
    assert me[0] == 200 and me[1]["coins"] == 7, me
    assert await verify(runtime.unit) == []


async def test_a_hung_redis_answers_503_within_the_timeouts_and_recovers_on_resume(
    client: Any, runtime: Runtime, stoppable_redis: StoppableRedis
) -> None:
    alice, bob = await two_users(client)
    email, token = alice["user"]["email"], alice["access_token"]
    stoppable_redis.pause()
    try:
        async with asyncio.timeout(OUTAGE_SECONDS):
            answers = await asyncio.gather(
                call(client, "GET", "/api/auth/me", headers=auth(token)),
                call(client, "POST", "/api/auth/login", json={"email": email, "password": "correct-horse-1"}),
                call(client, "POST", "/api/auth/otp/send-for-login", json={"email": email}),
                send(client, alice, bob, "hung", client_message_id="m-hung"),
            )
    finally:
        stoppable_redis.resume()
    assert [a[0] for a in answers if not unavailable(a)] == []
    async with asyncio.timeout(OUTAGE_SECONDS):
        assert (await call(client, "GET", "/api/auth/me", headers=auth(token)))[0] == 200
        assert (await send(client, alice, bob, "hung", client_message_id="m-hung"))[0] == 200
    assert await coins(client, alice) == 9
    assert await verify(runtime.unit) == []


async def test_sockets_get_503_acks_while_redis_is_down_and_pushes_flow_again_after_it_is_back(
    client: Any, runtime: Runtime, stoppable_redis: StoppableRedis, listeners: Callable[[], Listener]
) -> None:
    alice, bob = await two_users(client)
    sender, receiver = listeners(), listeners()
    await sender.connect(base_url(client), alice["access_token"])
    await receiver.connect(base_url(client), bob["access_token"])
    payload = {"receiver_id": uid(bob), "content": "over the socket", "client_message_id": "s-1"}

    stoppable_redis.kill()
    async with asyncio.timeout(OUTAGE_SECONDS):
        ack = await sender.sio.call("message:send", payload, timeout=OUTAGE_SECONDS)
    assert ack["success"] is False and ack["code"] == "dependency_unavailable", ack
    assert await events_of_type(runtime, "MessageSent") == []

    stoppable_redis.start()
    async with asyncio.timeout(OUTAGE_SECONDS):
        # The Socket.IO Redis channel resubscribes by itself; a fresh socket is served again too.
        late = listeners()
        await late.connect(base_url(client), bob["access_token"])
        ack = await sender.sio.call("message:send", payload, timeout=OUTAGE_SECONDS)
        assert ack["success"] is True, ack
        pushed = await late.wait_for("message:new", timeout=OUTAGE_SECONDS)
    assert pushed["content"] == "over the socket"
    assert [e["_id"] for e in await events_of_type(runtime, "MessageSent")] == [f"msg:{uid(alice)}:s-1"]
    assert await coins(client, alice) == 9
