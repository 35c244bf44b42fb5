"""`truebond dev --admin EMAIL[:ROLE]`: audited grants at start and at signup, dev only."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from tests.support.accounts import signup, signup_body
from truebond import __main__ as cli
from truebond import bootstrap
from truebond.clock import OffsetClock
from truebond.commands.dev_admins import grant_dev_admins, parse_admin
from truebond.config import Settings

EARLY = "early.admin@example.com"
LATE = "late.mod@example.com"


def test_the_flag_parses_email_and_role_and_exists_only_in_dev() -> None:
    args = cli._parser().parse_args(["dev", "--admin", "Boss@Example.com", "--admin", f"{LATE}:admin"])
    assert args.admin == [("boss@example.com", "super_admin"), (LATE, "admin")]
    assert parse_admin("x@example.com:super_admin") == ("x@example.com", "super_admin")
    with pytest.raises(SystemExit):
        cli._parser().parse_args(["serve", "--admin", EARLY])
    with pytest.raises(SystemExit):
        cli._parser().parse_args(["dev", "--admin", "not-an-email"])


async def test_existing_and_new_accounts_get_their_role_audited_as_system_dev(
    settings: Settings, db: Any, clock: OffsetClock, aiohttp_client: Any
) -> None:
    # The account exists before the dev process that lists it starts.
    plain = await bootstrap.build(settings, db=db, clock=clock, fast_hashing=True)
    await bootstrap.ensure_indexes(plain.unit)
    await signup(await aiohttp_client(bootstrap.web_app(plain)), email=EARLY)
    await plain.close()
    listed = attrs.evolve(settings, dev_admins=((EARLY, "super_admin"), (LATE, "admin")))
    dev_runtime = await bootstrap.build(listed, db=db, clock=clock, fast_hashing=True)
    client = await aiohttp_client(bootstrap.web_app(dev_runtime))
    assert await grant_dev_admins(dev_runtime.bus) == 1
    assert await grant_dev_admins(dev_runtime.bus) == 0  # a restart: it holds the role already
    await signup(client, email=LATE)
    await signup(client)  # not listed
    for email, role in ((EARLY, "super_admin"), (LATE, "admin")):
        resp = await client.post("/api/admin/login", json={"email": email, "password": signup_body()["password"]})
        body = await resp.json()
        assert resp.status == 200, body
        assert body["admin_role"] == role
    logs = await dev_runtime.unit.db["adminLogs"].find({"action": "role_grant"}).to_list(None)
    assert {entry["actor"] for entry in logs} == {"system:dev"}
    assert len(logs) == 2
    await dev_runtime.close()
