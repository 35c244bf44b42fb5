"""What admin actions change in the users read model (merged into `USERS.updates`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from truebond.events.admin import (
    AdminAction,
    ReportedContentRemoved,
    UserBanned,
    UserReactivated,
    UserShadowBanLifted,
    UserShadowBanned,
    UserSuspended,
)
from truebond.events.base import Event, Recorded
from truebond.projections.views import Update


def _status(status: str) -> Callable[[Recorded], Update]:
    def update(rec: Recorded) -> Update:
        assert isinstance(rec.event, AdminAction)
        return {"$set": {"status": status, "status_reason": rec.event.reason, "status_changed_at": rec.at, "updated_at": rec.at}}

    return update


def _shadow(banned: bool) -> Callable[[Recorded], Update]:
    def update(rec: Recorded) -> Update:
        assert isinstance(rec.event, AdminAction)
        return {"$set": {"shadow_banned": True, "updated_at": rec.at}} if banned else {"$unset": {"shadow_banned": ""}}

    return update


def _content_removed(rec: Recorded) -> Update:
    assert isinstance(rec.event, ReportedContentRemoved)
    return {"$set": {"bio": "", "profile_pictures": [], "updated_at": rec.at}}


ADMIN_UPDATES: Mapping[type[Event], Callable[[Recorded], Update]] = {
    UserSuspended: _status("suspended"),
    UserReactivated: _status("active"),
    UserBanned: _status("banned"),
    UserShadowBanned: _shadow(True),
    UserShadowBanLifted: _shadow(False),
    ReportedContentRemoved: _content_removed,
}
