"""Profile commands through the bus: the context in the events, refusals, the photo discard re-driven."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.accounts import auth, signup
from tests.support.photos import png_bytes, upload
from truebond import bootstrap
from truebond.adapters.storage import LocalStorage
from truebond.commands.bus import Bus, Context
from truebond.commands.profile import (
    RegisterFcmToken,
    RemoveFcmToken,
    UpdatePreferences,
    UpdateProfile,
    UpdateSettings,
)
from truebond.errors import NotFound
from truebond.workers.reactions import reactions_follower


@pytest.fixture(autouse=True)
def local_photos(runtime: bootstrap.Runtime, tmp_path: Path) -> LocalStorage:
    """Photos go to a temporary directory (the dev `local` provider)."""
    storage = LocalStorage(tmp_path / "media", runtime.unit.settings.backend_url)
    runtime.unit.storage = storage
    return storage


async def test_each_command_records_its_context_and_a_no_op_records_nothing(client: Any, runtime: bootstrap.Runtime) -> None:
    uid = (await signup(client))["user"]["id"]
    ctx = Context(actor=f"user:{uid}", request_id="req-profile")
    assert (await runtime.bus.handle(UpdateProfile(uid, bio="hello"), ctx))["bio"] == "hello"
    assert (await runtime.bus.handle(UpdatePreferences(uid, max_age=40), ctx))["max_age"] == 40
    assert (await runtime.bus.handle(UpdateSettings(uid, {"dark_mode": True}), ctx))["dark_mode"] is True
    await runtime.bus.handle(RegisterFcmToken(uid, "device-token-1"), ctx)
    await runtime.bus.handle(RemoveFcmToken(uid), ctx)
    events = await runtime.unit.store.load(f"user-{uid}")
    mine = events[-5:]
    assert [r.type for r in mine] == [
        "ProfileUpdated",
        "PreferencesUpdated",
        "SettingsUpdated",
        "FcmTokenRegistered",
        "FcmTokenRemoved",
    ]
    assert {(r.meta.actor, r.meta.request_id, r.subject) for r in mine} == {(f"user:{uid}", "req-profile", uid)}
    for again in (UpdateProfile(uid, bio="hello"), UpdatePreferences(uid, max_age=40), UpdateSettings(uid, {"dark_mode": True})):
        await runtime.bus.handle(again, ctx)
    await runtime.bus.handle(RemoveFcmToken(uid), ctx)
    assert len(await runtime.unit.store.load(f"user-{uid}")) == len(events)


async def test_an_unknown_or_deleted_account_is_refused(client: Any, runtime: bootstrap.Runtime) -> None:
    with pytest.raises(NotFound):
        await runtime.bus.handle(UpdateSettings("nobody", {"dark_mode": True}), Context.system("cli"))
    uid = (await signup(client))["user"]["id"]
    await runtime.unit.db["users"].update_one({"_id": uid}, {"$set": {"status": "deleted"}})
    with pytest.raises(NotFound):
        await runtime.bus.handle(RegisterFcmToken(uid, "device-token-1"), Context(actor=f"user:{uid}"))


async def test_a_dropped_photo_lost_by_a_crash_is_discarded_by_the_reactions_follower(
    client: Any, runtime: bootstrap.Runtime, local_photos: LocalStorage
) -> None:
    user = await signup(client)
    uid, token = user["user"]["id"], user["access_token"]
    first, second = [(await upload(client, token, png_bytes(color=(c, c, c))))[1]["url"] for c in (10, 90)]
    # The process died right after the append: the event is stored, its reactions never ran.
    crashed = Bus(runtime.unit, runtime.bus.handlers, {})
    await crashed.handle(UpdateProfile(uid, profile_pictures=[second]), Context(actor=f"user:{uid}"))
    assert await local_photos.get(first) is not None
    follower = reactions_follower(runtime.bus)
    assert await follower.run_once() > 0
    assert await local_photos.get(first) is None
    assert await local_photos.get(second) is not None
    # Run again from scratch (a lost checkpoint): nothing left to change.
    await runtime.unit.db["projection_checkpoints"].delete_many({})
    assert await reactions_follower(runtime.bus).run_once() > 0
    assert await local_photos.get(second) is not None
    me = await (await client.get("/api/auth/me", headers=auth(token))).json()
    assert me["profile_pictures"] == [second]
