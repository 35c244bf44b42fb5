"""Safety events between users: blocks on the stream `safety-<blocker>`, reports on `report-<id>`."""

from __future__ import annotations

import attrs

from truebond.events.base import Event, event, personal


@event("UserBlocked")
@attrs.frozen
class UserBlocked(Event):
    """`blocker_id` blocked `blocked_id`: no messages or calls either way, hidden from each other."""

    blocker_id: str
    blocked_id: str
    reason: str = personal(default="")


@event("UserUnblocked")
@attrs.frozen
class UserUnblocked(Event):
    """`blocker_id` lifted the block on `blocked_id`."""

    blocker_id: str
    blocked_id: str


@event("UserReported")
@attrs.frozen
class UserReported(Event):
    """A report of `reported_id` by `reporter_id` (stream `report-<id>`); the reason is the reporter's text."""

    report_id: str
    reporter_id: str
    reported_id: str
    report_type: str
    reason: str = personal()
