"""The MongoDB event store: idempotent appends, optimistic concurrency, per-stream hash chains."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator
from datetime import datetime
from typing import Any, TypeVar

import attrs
import cattrs
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError, PyMongoError

from truebond.clock import Clock, to_ms
from truebond.errors import DependencyDown, InfrastructureError
from truebond.events import codec
from truebond.events.base import GENESIS_HASH, Event, Head, Meta, Recorded, personal_fields
from truebond.events.crypto import SubjectKeys, decrypt_value, encrypt_value

T = TypeVar("T")


class ConcurrencyError(InfrastructureError):
    """Another writer appended to the stream first; reload state and decide again."""


class UndecodableEvent(InfrastructureError):
    """A stored event does not match its registered class (unknown type, extra or bad fields).

    Raised, never skipped: a read model built without it would be silently wrong.
    """


class StoreUnavailable(DependencyDown):
    """MongoDB refused or did not answer a store call (election, write error, timeout): retry later.

    A failed insert stored either the whole event or nothing; after a lost answer the retry with
    the same idempotency id finds the stored event instead of writing a second one.
    """

    default_detail = "Event store temporarily unavailable"


@contextlib.contextmanager
def _unavailable_on_mongo_errors() -> Iterator[None]:
    try:
        yield
    except DuplicateKeyError:
        raise
    except PyMongoError as exc:
        raise StoreUnavailable() from exc


@attrs.frozen
class Appended:
    """The outcome of an append: the stored event and whether this call stored it."""

    recorded: Recorded
    created: bool


def canonical(doc: dict[str, Any]) -> bytes:
    """Canonical JSON used for hashing: sorted keys, no spaces, UTF-8."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def chain_hash(doc: dict[str, Any]) -> str:
    """SHA-256 over the event's stored fields and the previous hash of its stream."""
    at: datetime = to_ms(doc["at"])
    body = {
        "_id": doc["_id"],
        "stream": doc["stream"],
        "version": doc["version"],
        "type": doc["type"],
        "schema": doc["schema"],
        "data": doc["data"],
        "meta": doc["meta"],
        "subject": doc.get("subject"),
        "at": int(at.timestamp() * 1000),
        "prev": doc["prev"],
    }
    return hashlib.sha256(canonical(body)).hexdigest()


class EventStore:
    """Append and read events in the `events` collection."""

    def __init__(self, db: Any, keys: SubjectKeys, clock: Clock) -> None:
        self.db = db
        self.events = db["events"]
        self.keys = keys
        self.clock = clock

    async def ensure_indexes(self) -> None:
        """Indexes the store relies on: (stream, version) unique, and `at` for tailing."""
        await self.events.create_index([("stream", ASCENDING), ("version", ASCENDING)], unique=True, name="stream_version")
        await self.events.create_index([("at", ASCENDING), ("_id", ASCENDING)], name="at_id")

    async def _encrypt(self, event: Event, event_id: str, subject: str | None) -> dict[str, Any]:
        data = codec.encode(event)
        fields = personal_fields(type(event))
        if not fields:
            return data
        if subject is None:
            raise ValueError(f"{event.type_name} carries personal data and needs a subject")
        key = await self.keys.key_for_write(subject)
        for name in fields:
            if isinstance(data.get(name), str):
                data[name] = encrypt_value(key, data[name], f"{event_id}:{name}")
        return data

    async def append(
        self,
        stream: str,
        head: Head,
        event: Event,
        *,
        event_id: str,
        meta: Meta,
        subject: str | None = None,
    ) -> Appended:
        """Append `event` after `head`; an existing `event_id` returns the stored event unchanged.

        Raises ConcurrencyError when another event took version `head.version + 1` first.
        """
        doc: dict[str, Any] = {
            "_id": event_id,
            "stream": stream,
            "version": head.version + 1,
            "type": event.type_name,
            "schema": event.schema,
            "data": await self._encrypt(event, event_id, subject),
            "meta": codec.to_plain(meta),
            "subject": subject,
            "at": to_ms(self.clock.now()),
            "prev": head.hash,
        }
        doc["hash"] = chain_hash(doc)
        try:
            with _unavailable_on_mongo_errors():
                await self.events.insert_one(doc)
        except DuplicateKeyError:
            stored = await self._find_one({"_id": event_id})
            if stored is not None:
                return Appended(await self._decode(stored), created=False)
            raise ConcurrencyError(stream) from None
        recorded = Recorded(
            id=event_id,
            stream=stream,
            version=doc["version"],
            event=event,
            meta=meta,
            at=doc["at"],
            prev=head.hash,
            hash=doc["hash"],
            subject=subject,
        )
        return Appended(recorded, created=True)

    async def _decode(self, doc: dict[str, Any]) -> Recorded:
        try:
            return await self._decode_doc(doc)
        except cattrs.BaseValidationError as exc:
            reasons = "; ".join(cattrs.transform_error(exc))
            raise UndecodableEvent(f"event {doc.get('_id')} ({doc.get('stream')}@{doc.get('version')}): {reasons}") from exc
        except (codec.UnknownEventType, KeyError, TypeError, ValueError) as exc:
            raise UndecodableEvent(f"event {doc.get('_id')} ({doc.get('stream')}@{doc.get('version')}): {exc!r}") from exc

    async def _decode_doc(self, doc: dict[str, Any]) -> Recorded:
        data = dict(doc["data"])
        cls_fields = personal_fields(codec.event_class(doc["type"]))
        subject = doc.get("subject")
        if cls_fields and subject:
            key = await self.keys.key_for_read(subject)
            for name in cls_fields:
                data[name] = decrypt_value(key, data.get(name), f"{doc['_id']}:{name}")
        return Recorded(
            id=doc["_id"],
            stream=doc["stream"],
            version=doc["version"],
            event=codec.decode(doc["type"], doc["schema"], data),
            meta=codec.from_plain(doc["meta"], Meta),
            at=to_ms(doc["at"]),
            prev=doc["prev"],
            hash=doc["hash"],
            subject=subject,
        )

    async def _find_one(self, query: dict[str, Any], **kwargs: Any) -> dict[str, Any] | None:
        with _unavailable_on_mongo_errors():
            doc: dict[str, Any] | None = await self.events.find_one(query, **kwargs)
        return doc

    async def _find(self, query: dict[str, Any], sort: list[tuple[str, int]], limit: int = 0) -> list[dict[str, Any]]:
        cursor = self.events.find(query).sort(sort)
        if limit:
            cursor = cursor.limit(limit)
        with _unavailable_on_mongo_errors():
            docs: list[dict[str, Any]] = await cursor.to_list(None)
        return docs

    async def get(self, event_id: str) -> Recorded | None:
        """One event by its idempotency id."""
        doc = await self._find_one({"_id": event_id})
        return None if doc is None else await self._decode(doc)

    async def load(self, stream: str, after_version: int = 0, until_version: int | None = None) -> list[Recorded]:
        """The events of a stream in version order, optionally a slice of it."""
        query: dict[str, Any] = {"stream": stream, "version": {"$gt": after_version}}
        if until_version is not None:
            query["version"]["$lte"] = until_version
        docs = await self._find(query, [("version", ASCENDING)])
        return [await self._decode(d) for d in docs]

    async def head(self, stream: str) -> Head:
        """The current head of a stream."""
        doc = await self._find_one({"stream": stream}, sort=[("version", -1)], projection={"version": 1, "hash": 1})
        return Head() if doc is None else Head(doc["version"], doc["hash"])

    async def read_since(self, since: datetime | None, limit: int = 500, exclude: Collection[str] = ()) -> list[Recorded]:
        """Events stored at or after `since`, oldest first (for the projector).

        Ids in `exclude` (events the caller already has) are neither fetched nor decoded.
        """
        query: dict[str, Any] = {} if since is None else {"at": {"$gte": since}}
        return await self._page(query, limit, exclude)

    async def read_after(self, at: datetime, after_id: str, limit: int = 500, exclude: Collection[str] = ()) -> list[Recorded]:
        """Events strictly after the position (at, id), oldest first, less the ids in `exclude`."""
        query: dict[str, Any] = {"$or": [{"at": {"$gt": at}}, {"at": at, "_id": {"$gt": after_id}}]}
        return await self._page(query, limit, exclude)

    async def _page(self, query: dict[str, Any], limit: int, exclude: Collection[str]) -> list[Recorded]:
        if exclude:
            query = {**query, "_id": {"$nin": list(exclude)}}
        docs = await self._find(query, [("at", ASCENDING), ("_id", ASCENDING)], limit)
        return [await self._decode(d) for d in docs]

    async def all_events(self, batch: int = 1000, since: datetime | None = None) -> AsyncIterator[Recorded]:
        """Every event (stored at or after `since`, if given) in (at, id) order, streamed in batches."""
        last: tuple[datetime, str] | None = None
        while True:
            page = await (self.read_since(since, batch) if last is None else self.read_after(last[0], last[1], batch))
            for rec in page:
                yield rec
            if len(page) < batch:
                return
            last = (page[-1].at, page[-1].id)

    async def raw_by_stream(self) -> AsyncIterator[dict[str, Any]]:
        """Raw stored documents ordered by stream then version (for chain verification)."""
        cursor = self.events.find({}).sort([("stream", ASCENDING), ("version", ASCENDING)])
        with _unavailable_on_mongo_errors():
            async for doc in cursor:
                yield doc


async def with_retry(decide_and_append: Callable[[], Awaitable[T]], attempts: int = 25) -> T:
    """Run a load-decide-append step again from fresh state after each version conflict."""
    for attempt in range(attempts):
        try:
            return await decide_and_append()
        except ConcurrencyError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
    raise AssertionError("unreachable")


def verify_chain(docs: list[dict[str, Any]]) -> list[str]:
    """Problems found in one stream's raw documents (ordered by version); empty when intact."""
    problems: list[str] = []
    prev = GENESIS_HASH
    for expected_version, doc in enumerate(docs, start=1):
        where = f"{doc.get('stream')}@{doc.get('version')} ({doc.get('_id')})"
        if doc.get("version") != expected_version:
            problems.append(f"{where}: version gap, expected {expected_version}")
        if doc.get("prev") != prev:
            problems.append(f"{where}: prev does not link to the previous event")
        if chain_hash(doc) != doc.get("hash"):
            problems.append(f"{where}: hash mismatch, event was altered")
        prev = doc.get("hash", "")
    return problems
