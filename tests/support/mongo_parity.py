"""What a real MongoDB 7 server refuses or does differently from mongomock, checked on every call.

The suite runs on mongomock locally and on a real mongod in CI. `install` (an autouse fixture in
conftest) wraps the write and read methods of both mongomock's and motor's collections so that
every update document, inserted document and projection the tests cause is checked against the
rules below, which mongomock does not enforce:

- an update is a non-empty mapping of known `$` operators, each with a mapping operand;
- no two paths of one update are the same or one a prefix of the other
  (`Updating the path 'a.b' would create a conflict at 'a'`), across all operators;
- no update writes `_id` (immutable; a differing value fails every upsert that finds a document);
- stored field names hold no '.' and do not start with '$' (queries and updates read them as paths);
- a field under a sparse unique index is never written as null: a real server indexes an explicit
  null (only a missing field is skipped), so two such documents collide; `$unset` it instead;
- a projection does not mix inclusion and exclusion (except of `_id`).

mongomock's `to_list(length)` ignores `length`; motor returns at most `length` documents, and so
does the cursor here. Violations raise `MongoRuleBroken` at the call and are also collected, so
one swallowed by an `except Exception` still fails the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from truebond.projections.catalog import ALL_VIEWS

SCRATCH_SUFFIXES = ("__replay", "__verify")
UPDATE_OPERATORS = frozenset(
    {
        "$set",
        "$unset",
        "$setOnInsert",
        "$inc",
        "$mul",
        "$min",
        "$max",
        "$rename",
        "$currentDate",
        "$push",
        "$addToSet",
        "$pull",
        "$pullAll",
        "$pop",
        "$bit",
    }
)
# Operators whose operand values are stored in the document (their field names must be storable).
STORING = frozenset({"$set", "$setOnInsert", "$push", "$addToSet"})
PUSH_MODIFIERS = {"$push": frozenset({"$each", "$slice", "$sort", "$position"}), "$addToSet": frozenset({"$each"})}
POSITIONAL = ("$", "$[]")


class MongoRuleBroken(AssertionError):
    """A call a real MongoDB server would refuse or treat differently from mongomock."""


def sparse_unique_fields() -> dict[str, frozenset[str]]:
    """Collection name -> the fields under a single-field sparse unique index (from the read models)."""
    found: dict[str, set[str]] = {}
    for view in ALL_VIEWS:
        for keys, options in view.indexes:
            if options.get("unique") and options.get("sparse") and len(keys) == 1:
                found.setdefault(view.collection, set()).add(keys[0][0])
    return {name: frozenset(fields) for name, fields in found.items()}


SPARSE_UNIQUE = sparse_unique_fields()


def base_collection(name: str) -> str:
    """The read model a scratch collection (`users__replay`) is rebuilt for."""
    for suffix in SCRATCH_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _segment_problems(path: str) -> list[str]:
    problems = []
    for segment in path.split("."):
        if not segment:
            problems.append(f"path {path!r} has an empty segment")
        elif segment.startswith("$") and not (segment in POSITIONAL or (segment.startswith("$[") and segment.endswith("]"))):
            problems.append(f"path {path!r} has a segment starting with '$'")
    return problems


def key_problems(value: Any, where: str) -> list[str]:
    """Field names inside a stored value that a real server reads as paths or operators."""
    problems: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(f"{where}: field name {key!r} is not a string")
                continue
            if "." in key:
                problems.append(f"{where}: field name {key!r} contains '.'")
            if key.startswith("$"):
                problems.append(f"{where}: field name {key!r} starts with '$'")
            problems.extend(key_problems(item, f"{where}.{key}"))
    elif isinstance(value, list | tuple):
        for n, item in enumerate(value):
            problems.extend(key_problems(item, f"{where}[{n}]"))
    return problems


def _stored_values(op: str, value: Any) -> list[Any]:
    """The values an operator stores; `$push`/`$addToSet` modifiers are unwrapped."""
    if op in PUSH_MODIFIERS and isinstance(value, Mapping) and value and all(str(k).startswith("$") for k in value):
        each = value.get("$each")
        return list(each) if isinstance(each, list | tuple) else []
    return [value]


def _equalities(query: Mapping[str, Any]) -> dict[str, Any]:
    """The field = value parts of a filter (what an upsert copies into the document it inserts)."""
    out: dict[str, Any] = {}
    for key, value in query.items():
        if key == "$and" and isinstance(value, list):
            for part in value:
                if isinstance(part, Mapping):
                    out.update(_equalities(part))
        elif not key.startswith("$") and not (isinstance(value, Mapping) and any(str(k).startswith("$") for k in value)):
            out[key] = value
    return out


def update_problems(update: Any, *, collection: str = "", upsert_filter: Mapping[str, Any] | None = None) -> list[str]:
    """Why a real MongoDB 7 would refuse (or mis-store) this update document; empty when fine."""
    if not isinstance(update, Mapping) or not update:
        return [f"update must be a non-empty document of operators, got {update!r}"]
    sparse = SPARSE_UNIQUE.get(base_collection(collection), frozenset())
    problems: list[str] = []
    paths: list[tuple[str, str]] = []
    for op, fields in update.items():
        if op not in UPDATE_OPERATORS:
            problems.append(f"{op!r} is not an update operator")
            continue
        if not isinstance(fields, Mapping):
            problems.append(f"{op} needs a document of fields, got {fields!r}")
            continue
        for path, value in fields.items():
            problems.extend(_segment_problems(path))
            if path == "_id" or path.startswith("_id."):
                problems.append(f"{op} writes the immutable field {path!r}")
            if op in STORING:
                for stored in _stored_values(op, value):
                    problems.extend(key_problems(stored, f"{op} {path}"))
                if op in PUSH_MODIFIERS and isinstance(value, Mapping) and value and all(str(k).startswith("$") for k in value):
                    unknown = set(value) - PUSH_MODIFIERS[op]
                    if unknown or not isinstance(value.get("$each"), list | tuple):
                        problems.append(f"{op} {path}: modifiers {sorted(map(str, value))} need a list under $each")
            if op in ("$set", "$setOnInsert") and path in sparse and value is None:
                problems.append(f"{op} {path}: null under a sparse unique index collides across documents; $unset it")
            paths.append((op, path))
    for i, (op_a, a) in enumerate(paths):
        for op_b, b in paths[i + 1 :]:
            if _overlap(a, b):
                problems.append(f"Updating the path {a!r} ({op_a}) would create a conflict at {b!r} ({op_b})")
    if upsert_filter is not None:
        for field, value in _equalities(upsert_filter).items():
            if field in sparse and value is None:
                problems.append(f"upsert filter {field}: null would be inserted under a sparse unique index")
    return problems


def document_problems(doc: Any, *, collection: str = "") -> list[str]:
    """Why a real server would refuse or mis-store an inserted document."""
    if not isinstance(doc, Mapping):
        return [f"a document must be a mapping, got {type(doc).__name__}"]
    problems = key_problems(doc, "document")
    for field in SPARSE_UNIQUE.get(base_collection(collection), frozenset()):
        if field in doc and doc[field] is None:
            problems.append(f"{field}: null under a sparse unique index collides across documents; leave it out")
    return problems


def projection_problems(projection: Any) -> list[str]:
    """A real server refuses a projection that mixes inclusion and exclusion (other than of `_id`)."""
    if not isinstance(projection, Mapping):
        return []
    flags = {bool(v) for k, v in projection.items() if k != "_id" and not isinstance(v, Mapping)}
    return ["projection mixes inclusion and exclusion"] if len(flags) > 1 else []


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any = None) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


class Checker:
    """Wraps collection methods so each call is checked before it runs."""

    def __init__(self) -> None:
        self.broken: list[str] = []

    def _fail(self, what: str, problems: list[str]) -> None:
        if problems:
            message = f"{what}: " + "; ".join(problems)
            self.broken.append(message)
            raise MongoRuleBroken(message)

    def _wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        checker = self

        def checked(coll: Any, *args: Any, **kwargs: Any) -> Any:
            where = f"{coll.name}.{name}"
            if name in ("update_one", "update_many", "find_one_and_update"):
                query = _arg(args, kwargs, 0, "filter", {})
                update = _arg(args, kwargs, 1, "update")
                upsert = bool(_arg(args, kwargs, 2, "upsert", False)) if name != "find_one_and_update" else bool(kwargs.get("upsert"))
                checker._fail(where, update_problems(update, collection=coll.name, upsert_filter=query if upsert else None))
            elif name == "insert_one":
                checker._fail(where, document_problems(_arg(args, kwargs, 0, "document"), collection=coll.name))
            elif name == "insert_many":
                for doc in _arg(args, kwargs, 0, "documents", []):
                    checker._fail(where, document_problems(doc, collection=coll.name))
            elif name == "replace_one":
                checker._fail(where, document_problems(_arg(args, kwargs, 1, "replacement"), collection=coll.name))
            elif name in ("find", "find_one"):
                checker._fail(where, projection_problems(_arg(args, kwargs, 1, "projection")))
            return real(coll, *args, **kwargs)

        return checked

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Check every call on mongomock's and motor's collections; make mongomock's to_list honour its length."""
        import mongomock.collection
        import mongomock_motor

        classes: list[type[Any]] = [mongomock.collection.Collection]
        try:
            from motor.motor_asyncio import AsyncIOMotorCollection
        except ImportError:  # pragma: no cover - motor is a dependency
            pass
        else:
            classes.append(AsyncIOMotorCollection)
        names = ("update_one", "update_many", "find_one_and_update", "insert_one", "insert_many", "replace_one", "find", "find_one")
        for cls in classes:
            for name in names:
                monkeypatch.setattr(cls, name, self._wrap(name, getattr(cls, name)))

        async def to_list(cursor: Any, length: int | None = None) -> list[Any]:
            items: list[Any] = []
            while length is None or len(items) < length:  # like motor: a later call goes on from here
                try:
                    items.append(await cursor.__anext__())
                except StopAsyncIteration:
                    break
            return items

        monkeypatch.setattr(mongomock_motor.AsyncCursor, "to_list", to_list)


def checked_calls() -> Iterator[Checker]:
    """Install a Checker for one test; afterwards, fail on anything it caught (even if swallowed).

    It patches with its own MonkeyPatch: taking the `monkeypatch` fixture would set that fixture
    up before every other one and so undo the test's own patches only after their teardown.
    """
    patcher = pytest.MonkeyPatch()
    checker = Checker()
    checker.install(patcher)
    try:
        yield checker
    finally:
        patcher.undo()
    assert not checker.broken, "calls a real MongoDB would refuse:\n" + "\n".join(checker.broken)
