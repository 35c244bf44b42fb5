"""Notification events on the owner's stream `notifications-<user>`.

Title and body may name other people, so they are personal data of the owner (encrypted with
their key). The idempotency id `notif:<user>:<dedupe id>` makes each cause notify once.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from truebond.events.base import Event, event, personal


@event("NotificationRaised")
@attrs.frozen
class NotificationRaised(Event):
    """Something the owner should know about: a message while offline, a missed call, a purchase..."""

    user_id: str
    type: str
    title: str = personal()
    body: str = personal()


@event("NotificationsRead")
@attrs.frozen
class NotificationsRead(Event):
    """The owner marked every notification up to `up_to` as read."""

    user_id: str
    up_to: datetime
