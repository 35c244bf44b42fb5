"""Read model `adminLogs`: the immutable audit trail of privileged actions, newest first."""

from __future__ import annotations

from typing import Any

from pymongo import DESCENDING

from truebond.events.base import Recorded
from truebond.events.identity import RoleGranted
from truebond.projections.views import EventDocView, Update


def _role_change(rec: Recorded) -> tuple[str, Update]:
    e = rec.event
    assert isinstance(e, RoleGranted)
    return rec.id, {
        "$set": {
            "actor": rec.meta.actor,
            "target_id": rec.stream.split("-", 1)[1],
            "action": "role_grant" if e.role != "user" else "role_revoke",
            "reason": e.reason,
            "before": {"role": e.previous_role},
            "after": {"role": e.role},
            "request_id": rec.meta.request_id,
            "createdAt": rec.at,
        }
    }


AUDIT = EventDocView(
    name="audit",
    collection="adminLogs",
    docs={RoleGranted: _role_change},
    indexes=(([("createdAt", DESCENDING)], {"name": "createdAt"}),),
)


async def recent(db: Any, limit: int = 50) -> list[dict[str, Any]]:
    """The newest audit entries."""
    docs: list[dict[str, Any]] = await db[AUDIT.collection].find({}).sort("createdAt", -1).limit(limit).to_list(None)
    return docs
