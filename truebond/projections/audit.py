"""Read model `adminLogs`: the immutable audit trail of privileged actions, newest first.

One entry per audited event: role grants (RoleGranted), every `AdminAction` and every coin
adjustment (CreditsAdjusted). Entries are written only by these applies; no endpoint edits or
deletes one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING

from truebond.events.admin import AdminAction, CreditsAdjusted
from truebond.events.base import Recorded
from truebond.events.identity import RoleGranted
from truebond.projections.views import EventDocView, Update


def _entry(rec: Recorded, **fields: Any) -> tuple[str, Update]:
    return rec.id, {"$set": {**fields, "actor": rec.meta.actor, "request_id": rec.meta.request_id, "createdAt": rec.at}}


def _role_change(rec: Recorded) -> tuple[str, Update]:
    e = rec.event
    assert isinstance(e, RoleGranted)
    return _entry(
        rec,
        target_id=rec.stream.split("-", 1)[1],
        action="role_grant" if e.role != "user" else "role_revoke",
        reason=e.reason,
        before={"role": e.previous_role},
        after={"role": e.role},
    )


def _admin_action(rec: Recorded) -> tuple[str, Update]:
    e = rec.event
    assert isinstance(e, AdminAction)
    return _entry(rec, target_id=e.target_id, action=e.action, reason=e.reason, before=dict(e.before), after=dict(e.after))


def _adjustment(rec: Recorded) -> tuple[str, Update]:
    e = rec.event
    assert isinstance(e, CreditsAdjusted)
    before = e.balance_after - e.amount
    return _entry(
        rec,
        target_id=e.user_id,
        action=e.action,
        reason=e.note,
        before={"coins": before},
        after={"coins": e.balance_after, "amount": e.amount},
    )


AUDIT = EventDocView(
    name="audit",
    collection="adminLogs",
    docs={RoleGranted: _role_change, AdminAction: _admin_action, CreditsAdjusted: _adjustment},
    indexes=(
        ([("createdAt", DESCENDING)], {"name": "createdAt"}),
        ([("actor", ASCENDING), ("createdAt", DESCENDING)], {"name": "actor_time"}),
        ([("action", ASCENDING), ("createdAt", DESCENDING)], {"name": "action_time"}),
    ),
)


async def recent(db: Any, limit: int = 50) -> list[dict[str, Any]]:
    """The newest audit entries."""
    docs: list[dict[str, Any]] = await db[AUDIT.collection].find({}).sort("createdAt", -1).limit(limit).to_list(None)
    return docs


async def page(
    db: Any,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    page: int = 1,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], int]:
    """Audit entries filtered by actor, action and time (`since` ≤ createdAt < `until`), newest first."""
    query: dict[str, Any] = {}
    if actor:
        query["actor"] = actor
    if action:
        query["action"] = action
    window: dict[str, Any] = {}
    if since is not None:
        window["$gte"] = since
    if until is not None:
        window["$lt"] = until
    if window:
        query["createdAt"] = window
    coll = db[AUDIT.collection]
    total = int(await coll.count_documents(query))
    cursor = coll.find(query, projection={"_applied": 0}).sort([("createdAt", -1), ("_id", -1)]).skip((page - 1) * limit).limit(limit)
    docs: list[dict[str, Any]] = await cursor.to_list(None)
    return docs, total
