"""Operator commands: `truebond indexes | roles | verify | replay`, as an operator runs them.

The commands run in-process against an in-memory MongoDB (`MONGO_URL=mongomock://<name>`), and as
real subprocesses (`python -m truebond ...`) against a real MongoDB when TRUEBOND_TEST_MONGO_URL
is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import attrs
import pytest
from aiohttp import web

from tests.support import history
from tests.support.secrets import TEST_JWT_SECRET, WEBHOOK_SECRET
from truebond import __main__ as cli
from truebond import bootstrap
from truebond.clock import OffsetClock
from truebond.commands.bus import Context
from truebond.commands.identity import SetRole
from truebond.commands.unit import Unit
from truebond.config import load_settings
from truebond.errors import NotFound
from truebond.logging import configure_logging
from truebond.projections.ledger import coins

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]  # tests/platform/<this file> -> the project root
REAL_MONGO = os.environ.get("TRUEBOND_TEST_MONGO_URL")
needs_real_mongo = pytest.mark.skipif(
    not REAL_MONGO, reason="subprocess CLI runs need a MongoDB server both processes can reach: set TRUEBOND_TEST_MONGO_URL"
)

EXPECTED_INDEXES = {
    "events._id_",
    "events.stream_version",
    "events.at_id",
    "users.email_unique",
    "users.phone_unique",
    "users.referral_code_unique",
    "users.created_at",
    "sessions.user_live",
    "credit_transactions.user_time",
    "adminLogs.createdAt",
    "payments.userId",
}


# --------------------------------------------------------------------------- a database for a CLI


@attrs.frozen
class Target:
    """A database that both the test and a `truebond` command can open by MONGO_URL."""

    mongo_url: str
    redis_url: str
    subprocess: bool

    def env(self) -> dict[str, str]:
        return {"MONGO_URL": self.mongo_url, "REDIS_URL": self.redis_url}

    def with_unit(self, fn: Callable[[Unit], Awaitable[T]]) -> T:
        """Run `fn` against the target's database through a freshly built service."""

        async def run() -> T:
            settings = load_settings("test", {**self.env(), "JWT_SECRET": TEST_JWT_SECRET})
            runtime = await bootstrap.build(settings, fast_hashing=True)
            try:
                return await fn(runtime.unit)
            finally:
                await runtime.close()
                if self.subprocess:
                    runtime.unit.db.client.close()

        return asyncio.run(run())

    def run(self, *args: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
        """Run `truebond ARGS`; returns the exit code and what it printed on stdout."""
        if self.subprocess:
            done = subprocess.run(
                [sys.executable, "-m", "truebond", *args],
                cwd=REPO,
                env={**os.environ, **self.env()},
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            return done.returncode, done.stdout
        for name, value in self.env().items():
            monkeypatch.setenv(name, value)
        logs = io.StringIO()
        monkeypatch.setattr(cli, "configure_logging", functools.partial(configure_logging, stream=logs))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(list(args))
        return code, out.getvalue()


def _real_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture
def target(redis_url: str) -> Iterator[Target]:
    """A fresh in-memory database reachable by `mongomock://<name>` (or a real one, see below)."""
    name = f"clitest{uuid.uuid4().hex[:10]}"
    yield Target(f"mongomock://{name}", redis_url, subprocess=False)
    bootstrap._MOCK_CLIENTS.pop(name, None)
    configure_logging(json=True)


@pytest.fixture
def real_target(redis_url: str) -> Iterator[Target]:
    """A fresh database on the real MongoDB of TRUEBOND_TEST_MONGO_URL, dropped afterwards."""
    assert REAL_MONGO
    import pymongo

    name = f"truebond_cli_{uuid.uuid4().hex[:10]}"
    yield Target(_real_url(REAL_MONGO, name), redis_url, subprocess=True)
    client: Any = pymongo.MongoClient(REAL_MONGO, serverSelectionTimeoutMS=5000)
    client.drop_database(name)
    client.close()


async def _history(unit: Unit) -> history.History:
    await bootstrap.ensure_indexes(unit)
    return await history.build_history(unit)


# --------------------------------------------------------------------------- indexes


async def test_ensure_indexes_creates_every_named_index(runtime: bootstrap.Runtime) -> None:
    unit = runtime.unit

    names = await bootstrap.ensure_indexes(unit)

    assert EXPECTED_INDEXES <= set(names)
    assert len(names) == len(set(names))
    events = await unit.db["events"].index_information()
    users = await unit.db["users"].index_information()
    assert events["stream_version"]["key"] == [("stream", 1), ("version", 1)] and events["stream_version"]["unique"] is True
    assert users["email_unique"]["key"] == [("email", 1)] and users["email_unique"]["unique"] is True
    assert users["phone_unique"]["unique"] is True and users["phone_unique"]["sparse"] is True
    sessions = await unit.db["sessions"].index_information()
    assert sessions["user_live"]["key"] == [("user_id", 1), ("revoked_at", 1)]
    transactions = await unit.db["credit_transactions"].index_information()
    assert transactions["user_time"]["key"] == [("user_id", 1), ("created_at", -1)]
    audit = await unit.db["adminLogs"].index_information()
    assert audit["createdAt"]["key"] == [("createdAt", -1)]


def test_indexes_command_prints_every_index(target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = target.run("indexes", monkeypatch=monkeypatch)

    assert code == 0
    assert EXPECTED_INDEXES <= set(out.splitlines())

    async def stream_version(unit: Unit) -> dict[str, Any]:
        info: dict[str, Any] = await unit.db["events"].index_information()
        return info

    # The command created them in the database, not only printed names.
    assert target.with_unit(stream_version)["stream_version"]["unique"] is True


@pytest.mark.parametrize("mode", ["dev", "serve"])
def test_serve_and_dev_create_the_indexes_before_they_listen(
    mode: str, redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mongomock_motor import AsyncMongoMockClient

    database = AsyncMongoMockClient(tz_aware=True)["indexes_at_start"]
    steps: list[str] = []
    real_indexes, real_start = bootstrap.ensure_indexes, web.TCPSite.start

    async def indexes(unit: Unit) -> list[str]:
        steps.append("indexes")
        return await real_indexes(unit)

    async def start(site: web.TCPSite) -> None:
        await real_start(site)
        steps.append("listening")
        # Then stop the way an operator does; the handler is installed before the loop runs this.
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(bootstrap, "mongo_database", lambda url: database)
    monkeypatch.setattr(bootstrap, "ensure_indexes", indexes)
    monkeypatch.setattr(web.TCPSite, "start", start)
    monkeypatch.setattr(cli, "configure_logging", functools.partial(configure_logging, stream=io.StringIO()))
    monkeypatch.chdir(tmp_path)
    if mode == "serve":
        strong = {
            "MONGO_URL": "mongodb://db.invalid:27017/truebond",
            "REDIS_URL": redis_url,
            "JWT_SECRET": TEST_JWT_SECRET,
            "STRIPE_SECRET_KEY": "sk_test_not_used_here",
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "EMAIL_PROVIDER": "sendgrid",
            "EMAIL_API_KEY": "SG.not-used-here",
            "EMAIL_FROM": "hello@truebond.test",
            "CLOUD_STORAGE_PROVIDER": "s3",
            "CLOUD_STORAGE_KEY": "not-used-here",
            "CLOUD_STORAGE_SECRET": "not-used-here",
            "CLOUD_STORAGE_BUCKET": "truebond-test",
            "FRONTEND_URL": "https://app.truebond.test",
            "BACKEND_URL": "https://api.truebond.test",
        }
        for name, value in strong.items():
            monkeypatch.setenv(name, value)

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli.main([mode, "--host", "127.0.0.1", "--port", "0"])
    finally:
        configure_logging(json=True)

    assert code == 0
    assert steps == ["indexes", "listening"]

    async def created() -> set[str]:
        names: set[str] = set()
        for coll in await database.list_collection_names():
            names.update(f"{coll}.{name}" for name in await database[coll].index_information())
        return names

    assert EXPECTED_INDEXES <= asyncio.run(created())


# --------------------------------------------------------------------------- roles


async def test_set_role_is_audited_with_actor_and_before_after(runtime: bootstrap.Runtime, clock: OffsetClock) -> None:
    unit, bus, cli_context = runtime.unit, runtime.bus, Context.system("cli")
    tokens = await bus.handle(history.signup_cmd(7), history.CONTEXT)

    change = await bus.handle(SetRole(" Person7@Example.com ", "admin", "on-call lead"), cli_context)
    # Entries of one millisecond tie on createdAt: mongomock keeps them in insertion order, a real
    # server in whatever order its index scan gives.
    clock.advance(1)
    await bus.handle(SetRole("person7@example.com", "user", "rotation ended"), cli_context)

    user_id = change.user_id
    assert (user_id, change.previous) == (tokens.user_id, "user")
    logs = await unit.db["adminLogs"].find({}).sort("createdAt", 1).to_list(None)
    assert [(d["actor"], d["target_id"], d["action"], d["before"], d["after"], d["reason"]) for d in logs] == [
        ("system:cli", user_id, "role_grant", {"role": "user"}, {"role": "admin"}, "on-call lead"),
        ("system:cli", user_id, "role_revoke", {"role": "admin"}, {"role": "user"}, "rotation ended"),
    ]
    grants = [r for r in await unit.store.load(f"user-{user_id}") if r.type == "RoleGranted"]
    assert [(r.meta.actor, r.version) for r in grants] == [("system:cli", 2), ("system:cli", 3)]
    user = await unit.db["users"].find_one({"_id": user_id})
    assert user is not None and user["role"] == "user"


async def test_set_role_refuses_unknown_accounts_and_roles(runtime: bootstrap.Runtime) -> None:
    unit, bus, cli_context = runtime.unit, runtime.bus, Context.system("cli")
    await bus.handle(history.signup_cmd(8), history.CONTEXT)

    with pytest.raises(NotFound):
        await bus.handle(SetRole("nobody@example.com", "admin"), cli_context)
    with pytest.raises(ValueError, match="unknown role"):
        await bus.handle(SetRole("person8@example.com", "root"), cli_context)
    assert await unit.db["adminLogs"].count_documents({}) == 0


def _roles_command(target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    h = target.with_unit(_history)

    code, out = target.run("roles", "grant", "person2@example.com", "super_admin", "--reason", "incident 42", monkeypatch=monkeypatch)
    assert (code, out.strip()) == (0, f"user {h.bob}: role user -> super_admin")

    code, out = target.run("roles", "revoke", "person2@example.com", "super_admin", monkeypatch=monkeypatch)
    assert (code, out.strip()) == (0, f"user {h.bob}: role super_admin -> user")

    code, out = target.run("roles", "grant", "nobody@example.com", "admin", monkeypatch=monkeypatch)
    assert (code, out.strip()) == (1, "no account with that email")

    async def audit(unit: Unit) -> list[tuple[str, str, Any, Any, str]]:
        docs = await unit.db["adminLogs"].find({"target_id": h.bob}).sort("createdAt", 1).to_list(None)
        return [(d["actor"], d["action"], d["before"], d["after"], d["reason"]) for d in docs]

    assert target.with_unit(audit) == [
        ("system:cli", "role_grant", {"role": "user"}, {"role": "super_admin"}, "incident 42"),
        ("system:cli", "role_revoke", {"role": "super_admin"}, {"role": "user"}, ""),
    ]


def test_roles_command_grants_and_revokes_with_an_audit_entry(target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    _roles_command(target, monkeypatch)


def test_roles_revoke_takes_away_only_the_role_it_names(target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    h = target.with_unit(_history)
    assert target.run("roles", "grant", "person2@example.com", "super_admin", monkeypatch=monkeypatch)[0] == 0

    code, out = target.run("roles", "revoke", "person2@example.com", "admin", monkeypatch=monkeypatch)

    assert (code, out.strip()) == (1, "The account's role is super_admin, not admin; nothing changed")

    async def state(unit: Unit) -> tuple[str, list[str]]:
        user = await unit.db["users"].find_one({"_id": h.bob})
        assert user is not None
        actions = [d["action"] for d in await unit.db["adminLogs"].find({"target_id": h.bob}).to_list(None)]
        return str(user["role"]), actions

    assert target.with_unit(state) == ("super_admin", ["role_grant"])


@needs_real_mongo
def test_roles_command_in_a_subprocess(real_target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    _roles_command(real_target, monkeypatch)


# --------------------------------------------------------------------------- verify and replay


def _verify_command(target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    h = target.with_unit(_history)

    code, out = target.run("verify", monkeypatch=monkeypatch)
    assert (code, out.strip()) == (0, "verify: OK")

    tampered = h.alice_charges[0]

    async def tamper(unit: Unit) -> None:
        await unit.db["events"].update_one({"_id": tampered}, {"$set": {"data.amount": 2}})

    target.with_unit(tamper)
    code, out = target.run("verify", monkeypatch=monkeypatch)
    assert code == 1
    lines = out.strip().splitlines()
    assert any(tampered in line and "hash mismatch" in line for line in lines)
    assert lines[-1] == f"verify: {len(lines) - 1} problem(s)"


def _replay_command(target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    h = target.with_unit(_history)

    async def vandalise(unit: Unit) -> int:
        await unit.db["balances"].update_one({"_id": h.alice}, {"$set": {"coins": 999}})
        await unit.db["credit_transactions"].delete_many({})
        n: int = await unit.db["events"].count_documents({})
        return n

    total = target.with_unit(vandalise)
    code, out = target.run("verify", monkeypatch=monkeypatch)
    assert code == 1 and f"balances/{h.alice}" in out

    code, out = target.run("replay", "--projection", "balances", "--projection", "credit_transactions", monkeypatch=monkeypatch)
    assert (code, out.strip()) == (0, f"replayed {total} events into balances, credit_transactions")

    async def state(unit: Unit) -> tuple[int, int]:
        return await coins(unit.db, h.alice), await unit.db["credit_transactions"].count_documents({})

    assert target.with_unit(state) == (5, 5)
    code, out = target.run("verify", monkeypatch=monkeypatch)
    assert (code, out.strip()) == (0, "verify: OK")

    code, out = target.run("replay", "--projection", "no_such_view", monkeypatch=monkeypatch)
    assert (code, out.strip()) == (2, "unknown projection 'no_such_view'")


def test_verify_command_exits_non_zero_and_names_a_tampered_event(target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    _verify_command(target, monkeypatch)


def test_replay_command_repairs_read_models(target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    _replay_command(target, monkeypatch)


@needs_real_mongo
def test_verify_command_in_a_subprocess(real_target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    _verify_command(real_target, monkeypatch)


@needs_real_mongo
def test_replay_command_in_a_subprocess(real_target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    _replay_command(real_target, monkeypatch)


def test_tool_commands_refuse_to_start_without_a_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MONGO_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env to fall back on
    monkeypatch.setattr(cli, "configure_logging", functools.partial(configure_logging, stream=io.StringIO()))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["verify"])
    configure_logging(json=True)

    assert code == 2
    assert out.getvalue().strip() == "configuration error: MONGO_URL is required"
