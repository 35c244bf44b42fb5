"""Red-team regressions: each test is an attack that once worked (or a guard worth pinning)."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request

from tests.fakes import sendgrid
from tests.fakes.sendgrid import FakeSendGrid
from tests.support import otp_support
from tests.support.accounts import auth, signup, signup_body
from tests.support.secrets import TEST_JWT_SECRET
from truebond import bootstrap
from truebond.adapters.passwords import Passwords
from truebond.api import routing, socket_guards
from truebond.api.app import all_routes
from truebond.clock import OffsetClock
from truebond.commands.bus import Context
from truebond.commands.identity import Logout, PasswordLogin
from truebond.errors import RateLimited
from truebond.events.base import Meta
from truebond.projections import sessions as sessions_view

FRONTEND = "https://app.truebond.test"
REFRESH_COOKIE = "__Host-tb_refresh"


async def me_status(client: Any, token: str) -> int:
    status: int = (await client.get("/api/auth/me", headers=auth(token))).status
    return status


# --------------------------------------------------------------------------- sessions


@pytest.fixture
def motor_to_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """mongomock-motor ignores `to_list(length)`; Motor on a real MongoDB returns at most `length`."""
    import mongomock_motor

    original = mongomock_motor.AsyncCursor.to_list

    async def to_list(self: Any, length: int | None = None) -> list[Any]:
        docs: list[Any] = await original(self)
        return docs if length is None else docs[:length]

    monkeypatch.setattr(mongomock_motor.AsyncCursor, "to_list", to_list)


@pytest.mark.usefixtures("motor_to_list")
async def test_logout_all_ends_every_session_even_past_two_hundred(client: Any, runtime: bootstrap.Runtime, clock: OffsetClock) -> None:
    """An attacker with a stolen password keeps an old session, then buries it under 200 newer
    ones: logout-all and a password reset (the same revoke_all) must still end it."""
    victim = await signup(client)
    email, somewhere = victim["user"]["email"], Context(actor="anonymous", ip="x", device="x")
    planted = (await runtime.bus.handle(PasswordLogin(email, "correct-horse-1", device_id="attacker"), somewhere)).tokens
    clock.advance(1)
    for _ in range(205):
        await runtime.bus.handle(PasswordLogin(email, "correct-horse-1"), somewhere)
    clock.advance(1)

    resp = await client.post("/api/auth/logout-all", headers=auth(victim["access_token"]))
    assert resp.status == 200
    assert (await resp.json())["revoked"] == 207
    assert await me_status(client, planted.access_token) == 401
    refreshed = await client.post("/api/auth/refresh", json={"refresh_token": planted.refresh_token})
    assert refreshed.status == 401


async def test_a_logout_racing_a_cache_miss_does_not_leave_the_session_allowed(
    client: Any, runtime: bootstrap.Runtime, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    account = await signup(client)
    session_id = account["refresh_token"].split(".")[0]
    await runtime.unit.sessions.revoke(session_id)  # a cache miss: the read model decides
    real_get = sessions_view.get

    async def stale_then_revoked(db: Any, sid: str) -> dict[str, Any] | None:
        doc = await real_get(db, sid)
        # The logout lands between the read and the allow-list write.
        monkeypatch.setattr(sessions_view, "get", real_get)
        await runtime.bus.handle(Logout(account["user"]["id"], sid), Context(actor=f"user:{account['user']['id']}"))
        return doc

    monkeypatch.setattr(sessions_view, "get", stale_then_revoked)
    await client.get("/api/auth/me", headers=auth(account["access_token"]))
    assert await me_status(client, account["access_token"]) == 401


# --------------------------------------------------------------------------- refresh cookie and CSRF


async def test_cookie_refresh_from_another_origin_is_refused(client: Any) -> None:
    account = await signup(client)
    cookies = {REFRESH_COOKIE: account["refresh_token"]}
    for origin in ("https://evil.example", "null", "https://app.truebond.test.evil.example"):
        # The form a page can send without a preflight is not even read as JSON...
        plain = await client.post("/api/auth/refresh", data="{}", headers={"Origin": origin, "Content-Type": "text/plain"}, cookies=cookies)
        assert plain.status == 415, origin
        # ...and a JSON post from another origin (a client that skips CORS) is refused too.
        resp = await client.post("/api/auth/refresh", json={}, headers={"Origin": origin}, cookies=cookies)
        assert resp.status == 403, origin
    # The token was not rotated by the refused attempts: the real frontend still refreshes with it.
    ok = await client.post("/api/auth/refresh", json={}, headers={"Origin": FRONTEND}, cookies=cookies)
    assert ok.status == 200, await ok.json()


async def test_body_refresh_is_not_an_origin_matter(client: Any) -> None:
    account = await signup(client)
    resp = await client.post(
        "/api/auth/refresh", json={"refresh_token": account["refresh_token"]}, headers={"Origin": "capacitor://localhost"}
    )
    assert resp.status == 200


# --------------------------------------------------------------------------- rate-limit keys


def test_ipv6_clients_are_limited_per_slash_64() -> None:
    assert routing.ip_key("2001:db8:1:2::1") == routing.ip_key("2001:db8:1:2:ffff:ffff:ffff:fffe")
    assert routing.ip_key("2001:db8:1:2::1") != routing.ip_key("2001:db8:1:3::1")
    assert routing.ip_key("::ffff:203.0.113.7") == routing.ip_key("203.0.113.7")
    assert routing.ip_key("203.0.113.7") != routing.ip_key("203.0.113.8")
    # Hashed: no address is stored in Redis as-is.
    assert "203.0.113" not in routing.ip_key("203.0.113.7")
    assert routing.ip_key(None) == routing.ip_key("garbage")


class _Peer:
    def __init__(self, address: str) -> None:
        self._address = address

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return (self._address, 40000, 0, 0) if name == "peername" else default

    def is_closing(self) -> bool:
        return False


async def test_rotating_ipv6_addresses_does_not_escape_the_per_ip_limit(runtime: bootstrap.Runtime) -> None:
    app = bootstrap.web_app(runtime)
    route = next(r for r in all_routes() if r.path == "/api/openapi.json")
    handler = routing.wrap(route)
    with pytest.raises(RateLimited):
        for n in range(200):
            request = make_mocked_request("GET", route.path, app=app, transport=_Peer(f"2001:db8:77:1::{n:x}"))
            await handler(request)
    assert n == 120


# --------------------------------------------------------------------------- login


class _ThreadSpy(Passwords):
    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8192)
        self.threads: list[int] = []

    def hash(self, password: str) -> str:
        self.threads.append(threading.get_ident())
        return super().hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        self.threads.append(threading.get_ident())
        return super().verify(stored_hash, password)


async def test_argon2_never_blocks_the_event_loop(client: Any, runtime: bootstrap.Runtime) -> None:
    """Unauthenticated logins cost ~20-50 ms of argon2 each: run on the loop they would freeze the server."""
    spy = _ThreadSpy()
    runtime.unit.passwords = spy
    account = await signup(client)
    await client.post("/api/auth/login", json={"email": account["user"]["email"], "password": "wrong-password-1"})
    await client.post("/api/auth/login", json={"email": "nobody@example.com", "password": "wrong-password-1"})
    assert len(spy.threads) == 3
    assert threading.get_ident() not in spy.threads


async def test_a_locked_account_costs_a_password_check_like_any_other(client: Any, runtime: bootstrap.Runtime) -> None:
    """Otherwise the fast 401 of a locked account tells an enumerator the email has an account."""
    spy = _ThreadSpy()
    account = await signup(client)
    runtime.unit.passwords = spy
    await runtime.unit.redis.set(f"tb:loginlock:{account['user']['id']}", "1", ex=3600)
    resp = await client.post("/api/auth/login", json={"email": account["user"]["email"], "password": "correct-horse-1"})
    assert resp.status == 401
    assert len(spy.threads) == 1


# --------------------------------------------------------------------------- signup


@pytest.mark.parametrize("template", ["#####-#####", "##### #####", "###-###-####", "### ### ####"])
async def test_mobile_number_formatting_does_not_make_a_second_account(client: Any, template: str) -> None:
    """Mobile numbers are unique per account; separators must not make a number new again."""
    first = await signup(client)
    digits = iter(signup_body()["mobile_number"])
    number = "".join(next(digits) if c == "#" else c for c in template)
    plain = number.replace(" ", "").replace("-", "")
    assert (await client.post("/api/auth/signup", json=signup_body(mobile_number=plain))).status == 201
    resp = await client.post("/api/auth/signup", json=signup_body(mobile_number=number))
    body = await resp.json()
    assert resp.status == 409, body
    assert body["code"] == "mobile_taken"
    assert first


# --------------------------------------------------------------------------- sockets


def _ws_url(client: Any) -> str:
    return str(client.make_url("/socket.io/")).replace("http://", "ws://") + "?EIO=4&transport=websocket"


async def _open(client: Any, **headers: str) -> aiohttp.ClientWebSocketResponse:
    session = aiohttp.ClientSession()
    try:
        ws = await session.ws_connect(_ws_url(client), headers=headers or None)
    except Exception:
        await session.close()
        raise
    ws._truebond_session = session  # type: ignore[attr-defined]
    return ws


async def _close(ws: aiohttp.ClientWebSocketResponse) -> None:
    await ws.close()
    await ws._truebond_session.close()  # type: ignore[attr-defined]


async def _closed_within(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> bool:
    """Whether the server closes `ws` within `seconds` (answering pings meanwhile)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return False
        try:
            msg = await ws.receive(timeout=remaining)
        except TimeoutError:
            return False
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
            return True
        if msg.type == aiohttp.WSMsgType.TEXT and msg.data == "2":
            await ws.send_str("3")


async def test_socket_handshake_advertises_the_design_limits(client: Any) -> None:
    ws = await _open(client, Origin=FRONTEND)
    try:
        opened = await ws.receive(timeout=5)
        assert opened.data.startswith("0")
        info = json.loads(opened.data[1:])
        assert (info["pingInterval"], info["pingTimeout"], info["maxPayload"]) == (25000, 20000, 64 * 1024)
        assert info["upgrades"] == []
    finally:
        await _close(ws)


async def test_socket_refuses_other_origins_and_polling(client: Any) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await _open(client, Origin="https://evil.example")
    polling = await client.get("/socket.io/?EIO=4&transport=polling", headers={"Origin": FRONTEND})
    assert polling.status == 400


async def test_a_socket_that_never_authenticates_is_closed(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Engine.IO accepts the websocket before any Socket.IO CONNECT: without a deadline an
    unauthenticated client could hold sockets open forever (file descriptors, memory)."""
    monkeypatch.setattr(socket_guards, "CONNECT_TIMEOUT_SECONDS", 0.5)
    ws = await _open(client)
    try:
        assert (await ws.receive(timeout=5)).data.startswith("0")
        assert await _closed_within(ws, 5)
    finally:
        await _close(ws)


async def test_a_refused_connect_closes_the_websocket(client: Any) -> None:
    ws = await _open(client)
    try:
        assert (await ws.receive(timeout=5)).data.startswith("0")
        await ws.send_str('40{"token":"not-a-jwt"}')
        refused = await ws.receive(timeout=5)
        assert refused.data.startswith("44")
        assert await _closed_within(ws, 3)
    finally:
        await _close(ws)


async def test_binary_attachments_cannot_pile_up_past_the_payload_limit(client: Any) -> None:
    """Each frame is ≤ 64 KiB, but a packet may announce millions of attachments that the server
    buffers until the last one arrives: an authenticated socket could fill the server's memory."""
    user = await signup(client)
    ws = await _authenticated(client, user["access_token"])
    try:
        placeholders = [{"_placeholder": True, "num": i} for i in range(3)]
        await ws.send_str("45999999-" + json.dumps(["message:typing", *placeholders]))
        closed = False
        for _ in range(4):
            try:
                await ws.send_bytes(b"\x00" * (60 * 1024))
            except (ConnectionResetError, RuntimeError):
                closed = True
                break
        assert closed or await _closed_within(ws, 3)
    finally:
        await _close(ws)


async def _authenticated(client: Any, token: str) -> aiohttp.ClientWebSocketResponse:
    ws = await _open(client)
    assert (await ws.receive(timeout=5)).data.startswith("0")
    await ws.send_str("40" + json.dumps({"token": token}))
    assert (await ws.receive(timeout=5)).data.startswith("40")
    return ws


async def test_malformed_socketio_packets_close_the_socket(client: Any) -> None:
    """python-socketio logs a traceback per malformed packet and keeps reading: a log flood."""
    user = await signup(client)
    ws = await _authenticated(client, user["access_token"])
    try:
        await ws.send_str("49garbage")
        assert await _closed_within(ws, 3)
    finally:
        await _close(ws)


async def test_socket_library_logs_are_masked_and_throttled(client: Any, log_output: Any, capfd: pytest.CaptureFixture[str]) -> None:
    """Engine.IO logs a traceback for each malformed packet, before any token is checked, through
    a plain handler of its own that skipped the masking processor."""
    ws = await _open(client)
    try:
        assert (await ws.receive(timeout=5)).data.startswith("0")
        for _ in range(50):
            await ws.send_str("9garbage-from-test-0123456789@example.com")
        await asyncio.sleep(0.3)
    finally:
        await _close(ws)
    raw = capfd.readouterr()
    assert "0123456789@example.com" not in raw.err + raw.out
    logged = log_output.getvalue()
    assert "0123456789@example.com" not in logged
    assert sum("Unknown receive error" in line for line in logged.splitlines()) <= 5


async def test_a_revoked_session_loses_its_websocket_even_if_the_client_ignores_the_disconnect(client: Any) -> None:
    """python-socketio only sends a Socket.IO DISCONNECT; a client that ignores it kept the
    websocket (and its server resources) for as long as it answered pings."""
    user = await signup(client)
    ws = await _authenticated(client, user["access_token"])
    try:
        assert (await client.post("/api/auth/logout", headers=auth(user["access_token"]))).status == 200
        assert await _closed_within(ws, 3)
    finally:
        await _close(ws)


async def test_socket_connects_count_against_the_ip_limit_before_authentication(client: Any, runtime: bootstrap.Runtime) -> None:
    """Opening websockets (no Socket.IO CONNECT, no token) is limited per IP like any public request."""
    for _ in range(120):
        await runtime.unit.limiter.hit(routing.DEFAULT_IP, routing.ip_key("127.0.0.1"))
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await _open(client)


# --------------------------------------------------------------------------- pre-account takeover

mail = otp_support.mail


async def test_the_first_code_login_ends_sessions_opened_before_anyone_proved_the_inbox(
    mail: FakeSendGrid, redis_url: str, db: Any, clock: OffsetClock, aiohttp_client: Any
) -> None:
    """An attacker signs up with the victim's email (nobody checks it) and keeps the session; the
    victim, told the email is taken, logs in with a mailed code and uses the account: the
    attacker must not be inside it."""
    settings = sendgrid.settings_for(redis_url, mail, TEST_JWT_SECRET)
    rt = await bootstrap.build(settings, db=db, clock=clock, fast_hashing=True)
    try:
        client = await aiohttp_client(bootstrap.web_app(rt))
        victim_email = otp_support.unknown_email()
        squatter = await signup(client, email=victim_email)
        assert await me_status(client, squatter["access_token"]) == 200

        assert (await client.post("/api/auth/otp/send-for-login", json={"email": victim_email})).status == 200
        code = mail.last_code(victim_email)
        resp = await client.post("/api/auth/login-with-otp", json={"email": victim_email, "otp_code": code})
        victim = await resp.json()
        assert resp.status == 200, victim

        assert await me_status(client, squatter["access_token"]) == 401
        assert (await client.post("/api/auth/refresh", json={"refresh_token": squatter["refresh_token"]})).status == 401
        assert await me_status(client, victim["access_token"]) == 200

        # Once the inbox is proven, a further code login keeps the account's other sessions.
        clock.advance(61)
        await client.post("/api/auth/otp/send-for-login", json={"email": victim_email})
        again = await client.post("/api/auth/login-with-otp", json={"email": victim_email, "otp_code": mail.last_code(victim_email)})
        assert again.status == 200
        assert await me_status(client, victim["access_token"]) == 200
    finally:
        await rt.close()


# --------------------------------------------------------------------------- pinned guards


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/auth/login", {"email": {"$ne": ""}, "password": {"$ne": ""}}),
        ("/api/auth/login", {"email": "a@example.com", "password": ["x"]}),
        ("/api/auth/refresh", {"refresh_token": {"$gt": ""}}),
        ("/api/auth/otp/send-for-login", {"email": {"$regex": ".*"}}),
        ("/api/auth/login-with-otp", {"email": "a@example.com", "otp_code": {"$ne": "000000"}}),
        ("/api/auth/forgot-password", {"email": ["a@example.com"]}),
        ("/api/auth/reset-password", {"token": {"$ne": ""}, "new_password": "Abcdefg1"}),
        ("/api/admin/login", {"email": {"$ne": ""}, "password": "x"}),
    ],
)
async def test_operator_objects_never_reach_a_query(client: Any, path: str, body: dict[str, Any]) -> None:
    resp = await client.post(path, json=body)
    assert resp.status == 422, await resp.json()


async def test_operator_objects_in_user_routes_are_422(client: Any) -> None:
    user = await signup(client)
    headers = auth(user["access_token"])
    for path, body in (
        ("/api/payments/verify", {"payment_intent_id": {"$ne": ""}}),
        ("/api/payments/order", {"package_id": {"$in": ["premium"]}}),
        ("/api/auth/email/verify-otp", {"email": user["user"]["email"], "otp": {"$gt": ""}}),
    ):
        resp = await client.post(path, json=body, headers=headers)
        assert resp.status == 422, (path, await resp.json())
    resp = await client.put("/api/users/profile", json={"profile_pictures": [{"$ne": ""}]}, headers=headers)
    assert resp.status == 422


async def test_deeply_nested_json_is_400_not_500(client: Any) -> None:
    body = "[" * 50_000 + "]" * 50_000
    resp = await client.post("/api/auth/login", data=body[: 60 * 1024], headers={"Content-Type": "application/json"})
    assert resp.status == 400
    resp = await client.post("/api/auth/login", data="[" * 30_000 + "]" * 30_000, headers={"Content-Type": "application/json"})
    assert resp.status == 400


async def test_access_tokens_are_read_from_the_authorization_header_only(client: Any) -> None:
    user = await signup(client)
    token = user["access_token"]
    assert (await client.get(f"/api/auth/me?access_token={token}")).status == 401
    assert (await client.get(f"/api/auth/me?token={token}")).status == 401
    assert (await client.get("/api/auth/me", cookies={"access_token": token, REFRESH_COOKIE: user["refresh_token"]})).status == 401


@pytest.mark.parametrize("limit", ["0", "101", "-5", "1e3", "true", "9" * 5000, ""])
async def test_query_limits_are_bounded(client: Any, limit: str) -> None:
    user = await signup(client)
    resp = await client.get(f"/api/credits/history?limit={limit}", headers=auth(user["access_token"]))
    assert resp.status == 422


async def test_verify_of_another_users_payment_intent_is_404_like_an_unknown_one(client: Any, runtime: bootstrap.Runtime) -> None:
    from truebond.commands import payments

    owner, other = await signup(client), await signup(client)
    await payments.record_order(
        runtime.unit,
        intent_id="pi_attack123",
        payment_id="p1",
        user_id=owner["user"]["id"],
        package=payments.PACKAGES["starter"],
        meta=Meta(actor="test"),
    )
    mine = await client.post("/api/payments/verify", json={"payment_intent_id": "pi_attack123"}, headers=auth(owner["access_token"]))
    assert (await mine.json())["status"] == "pending"
    theirs = await client.post("/api/payments/verify", json={"payment_intent_id": "pi_attack123"}, headers=auth(other["access_token"]))
    unknown = await client.post("/api/payments/verify", json={"payment_intent_id": "pi_nothing999"}, headers=auth(other["access_token"]))
    assert theirs.status == unknown.status == 404
    assert {k: v for k, v in (await theirs.json()).items() if k != "request_id"} == {
        k: v for k, v in (await unknown.json()).items() if k != "request_id"
    }


async def test_logout_really_expires_the_host_prefixed_refresh_cookie(client: Any) -> None:
    """Browsers drop a Set-Cookie for a __Host- name that lacks Secure: the old expiry was ignored."""
    for path, method in (("/api/auth/logout", "post"), ("/api/auth/logout-all", "post"), ("/api/users/account", "delete")):
        user = await signup(client)
        resp = await getattr(client, method)(path, headers=auth(user["access_token"]))
        assert resp.status == 200
        cookie = resp.headers["Set-Cookie"]
        assert cookie.startswith(f'{REFRESH_COOKIE}=""'), cookie
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"secure", "path", "max-age"} <= attributes, (path, cookie)


async def _connect_answer(client: Any, token: str) -> str:
    ws = await _open(client)
    try:
        assert (await ws.receive(timeout=5)).data.startswith("0")
        await ws.send_str("40" + json.dumps({"token": token}))
        answer: str = (await ws.receive(timeout=5)).data
        return answer
    finally:
        await _close(ws)


async def test_sockets_refuse_expired_tokens_and_unavailable_accounts(client: Any, runtime: bootstrap.Runtime, clock: OffsetClock) -> None:
    fresh, suspended, deleted = await signup(client), await signup(client), await signup(client)
    assert (await _connect_answer(client, fresh["access_token"])).startswith("40")
    await runtime.unit.db["users"].update_one({"_id": suspended["user"]["id"]}, {"$set": {"status": "suspended"}})
    assert (await _connect_answer(client, suspended["access_token"])).startswith("44")
    assert (await client.delete("/api/users/account", headers=auth(deleted["access_token"]))).status == 200
    assert (await _connect_answer(client, deleted["access_token"])).startswith("44")
    clock.advance(16 * 60)
    assert (await _connect_answer(client, fresh["access_token"])).startswith("44")
