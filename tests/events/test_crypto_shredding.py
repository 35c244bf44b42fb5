"""Personal data in events is encrypted per person; erasing the key leaves a whole, unreadable history."""

from __future__ import annotations

import copy
import json
from typing import Any

import bson
import pytest

from tests.support.accounts import signup, signup_body
from truebond.bootstrap import Runtime
from truebond.events.base import Head, Meta
from truebond.events.crypto import ENC_PREFIX, ERASED, SubjectErased, SubjectKeys
from truebond.events.identity import PasswordChanged, UserRegistered
from truebond.events.store import EventStore
from truebond.verify import verify_chains

PERSONAL = ("name", "email", "mobile_number", "password_hash")


async def raw_events(runtime: Runtime) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = await runtime.unit.db["events"].find({}).sort([("stream", 1), ("version", 1)]).to_list(None)
    return docs


def dumps(docs: list[dict[str, Any]]) -> tuple[str, bytes]:
    """The stored events as an operator would see them: a JSON export and the BSON bytes."""
    return json.dumps(docs, default=str), b"".join(bson.encode(d) for d in docs)


async def signed_up(client: Any, runtime: Runtime, **overrides: Any) -> tuple[str, dict[str, Any]]:
    """Sign up over HTTP; returns the user id and the body that was sent."""
    body = signup_body(name="Zephyrine Quillfeather", address_line="221B Baker Street", city="Lucknow", **overrides)
    answer = await signup(client, **body)
    user_id = str(answer["user"]["id"])
    return user_id, body


async def registered(runtime: Runtime, user_id: str) -> UserRegistered:
    [rec] = [r for r in await runtime.unit.store.load(f"user-{user_id}") if isinstance(r.event, UserRegistered)]
    assert isinstance(rec.event, UserRegistered)
    return rec.event


async def test_personal_fields_are_not_stored_in_plaintext(client: Any, runtime: Runtime) -> None:
    user_id, body = await signed_up(client, runtime)
    user = await runtime.unit.db["users"].find_one({"_id": user_id})
    assert user is not None
    password_hash = user["password_hash"]
    assert password_hash.startswith("$argon2id$")

    docs = await raw_events(runtime)
    as_json, as_bson = dumps(docs)

    secrets = (body["email"], body["name"], "Zephyrine", body["mobile_number"], password_hash, "$argon2", "221B Baker", "Lucknow")
    for secret in secrets:
        assert secret not in as_json, secret
        assert secret.encode() not in as_bson, secret
    [stored] = [d for d in docs if d["type"] == "UserRegistered"]
    for field in (*PERSONAL, "address_line", "city"):
        assert stored["data"][field].startswith(ENC_PREFIX), field
    assert stored["subject"] == user_id
    # Fields that are not personal stay readable for analytics and audits.
    assert (stored["data"]["age"], stored["data"]["gender"]) == (body["age"], body["gender"])


async def test_the_store_decrypts_for_the_application(client: Any, runtime: Runtime) -> None:
    user_id, body = await signed_up(client, runtime)

    event = await registered(runtime, user_id)

    assert (event.name, event.email, event.mobile_number) == (body["name"], body["email"], body["mobile_number"])
    assert (event.address_line, event.city, event.pincode) == ("221B Baker Street", "Lucknow", None)
    assert runtime.unit.passwords.verify(event.password_hash, body["password"])


async def test_ciphertext_is_bound_to_its_event_and_field(client: Any, runtime: Runtime) -> None:
    user_id, _ = await signed_up(client, runtime)
    events = runtime.unit.db["events"]
    stored = await events.find_one({"stream": f"user-{user_id}", "type": "UserRegistered"})
    assert stored is not None

    # Moving the email ciphertext into the name field does not reveal the email as the name.
    await events.update_one({"_id": stored["_id"]}, {"$set": {"data.name": stored["data"]["email"]}})

    assert (await registered(runtime, user_id)).name == ERASED


async def test_erasing_the_key_shreds_the_data_and_keeps_the_history_whole(client: Any, runtime: Runtime) -> None:
    user_id, body = await signed_up(client, runtime)
    other_id, other_body = await signed_up(client, runtime)
    unit = runtime.unit
    raw_before = copy.deepcopy(await raw_events(runtime))
    assert await verify_chains(unit) == []

    await unit.store.keys.erase(user_id)

    event = await registered(runtime, user_id)
    assert (event.name, event.email, event.mobile_number, event.password_hash) == (ERASED,) * 4
    assert (event.address_line, event.city) == (ERASED, ERASED)
    assert (event.age, event.gender) == (body["age"], body["gender"])
    # The events themselves are untouched and every chain still verifies.
    assert await raw_events(runtime) == raw_before
    assert await verify_chains(unit) == []
    # Another process (no cache) cannot read it either: the key bytes are gone from the database.
    key_doc = await unit.db["subject_keys"].find_one({"_id": user_id})
    assert key_doc is not None and key_doc["key"] is None
    fresh = EventStore(unit.db, SubjectKeys(unit.db["subject_keys"]), unit.clock)
    [rec] = [r for r in await fresh.load(f"user-{user_id}") if isinstance(r.event, UserRegistered)]
    assert isinstance(rec.event, UserRegistered) and rec.event.email == ERASED
    # Someone else's data is unaffected.
    assert (await registered(runtime, other_id)).email == other_body["email"]


async def test_nothing_new_can_be_written_for_an_erased_subject(client: Any, runtime: Runtime) -> None:
    user_id, _ = await signed_up(client, runtime)
    unit = runtime.unit
    await unit.store.keys.erase(user_id)
    count = await unit.db["events"].count_documents({})

    with pytest.raises(SubjectErased):
        await unit.store.keys.key_for_write(user_id)
    with pytest.raises(SubjectErased):
        await SubjectKeys(unit.db["subject_keys"]).key_for_write(user_id)
    head = await unit.store.head(f"user-{user_id}")
    with pytest.raises(SubjectErased):
        await unit.store.append(
            f"user-{user_id}",
            head,
            PasswordChanged(password_hash="x"),
            event_id="pw:after-erase",
            meta=Meta(actor="system"),
            subject=user_id,
        )
    assert await unit.db["events"].count_documents({}) == count


async def test_replay_after_erasing_several_accounts_still_succeeds(client: Any, runtime: Runtime) -> None:
    first, _ = await signed_up(client, runtime)
    second, _ = await signed_up(client, runtime)
    kept, kept_body = await signed_up(client, runtime)
    unit = runtime.unit
    await unit.store.keys.erase(first)
    await unit.store.keys.erase(second)

    # Two shredded accounts must not collide on the unique email and phone indexes.
    await unit.projections.replay(["users"])

    users = {d["_id"]: d async for d in unit.db["users"].find({})}
    assert set(users) == {first, second, kept}
    for erased in (first, second):
        assert "email" not in users[erased] and "phone" not in users[erased]
        assert users[erased]["name"] == ERASED
    assert (users[kept]["email"], users[kept]["phone"]) == (kept_body["email"], kept_body["mobile_number"])


async def test_personal_event_without_a_subject_is_refused(runtime: Runtime) -> None:
    event = UserRegistered(user_id="u", name="N", email="n@example.com", mobile_number="9000000000", password_hash="h")

    with pytest.raises(ValueError, match="needs a subject"):
        await runtime.unit.store.append("user-u", Head(), event, event_id="signup:u", meta=Meta(actor="system"))
    assert await runtime.unit.db["events"].count_documents({}) == 0
