"""Admin actions: each is one event that both makes the change and is the audit entry.

Every class here derives from `AdminAction` (target, reason, before/after); the actor and the
request id are the event's metadata. The audit read model (`adminLogs`) takes every
`AdminAction` and every `CreditsAdjusted`, so an action is audited exactly when it happens.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from truebond.events.base import Event, event
from truebond.events.ledger import LedgerEvent


@attrs.frozen(kw_only=True)
class AdminAction(Event):
    """Base of an audited admin action on `target_id`, with the state before and after it."""

    action: ClassVar[str] = ""
    target_id: str
    reason: str = ""
    before: dict[str, Any] = attrs.field(factory=dict)
    after: dict[str, Any] = attrs.field(factory=dict)


@event("UserSuspended")
@attrs.frozen(kw_only=True)
class UserSuspended(AdminAction):
    """The account is suspended (stream `user-<id>`): no login, refresh or socket; sessions end."""

    action: ClassVar[str] = "suspend"


@event("UserReactivated")
@attrs.frozen(kw_only=True)
class UserReactivated(AdminAction):
    """A suspended account is active again."""

    action: ClassVar[str] = "reactivate"


@event("UserShadowBanned")
@attrs.frozen(kw_only=True)
class UserShadowBanned(AdminAction):
    """The account's messages reach nobody and its profile leaves others' lists; it is never told."""

    action: ClassVar[str] = "shadow_ban"


@event("UserShadowBanLifted")
@attrs.frozen(kw_only=True)
class UserShadowBanLifted(AdminAction):
    """The shadow-ban ends."""

    action: ClassVar[str] = "unshadow_ban"


@event("ReportApproved")
@attrs.frozen(kw_only=True)
class ReportApproved(AdminAction):
    """A moderator found nothing to act on in a report (stream `report-<id>`)."""

    action: ClassVar[str] = "moderation_approve"
    report_id: str


@event("ReportedContentRemoved")
@attrs.frozen(kw_only=True)
class ReportedContentRemoved(AdminAction):
    """A moderator took the reported account's bio and photos down (stream `user-<id>`)."""

    action: ClassVar[str] = "moderation_remove"
    report_id: str


@event("UserBanned")
@attrs.frozen(kw_only=True)
class UserBanned(AdminAction):
    """A super admin banned the reported account for good (stream `user-<id>`); sessions end."""

    action: ClassVar[str] = "moderation_ban"
    report_id: str


@event("PlatformSettingsChanged")
@attrs.frozen(kw_only=True)
class PlatformSettingsChanged(AdminAction):
    """Enforced platform settings changed (stream `platform-settings`); `after` holds the new values."""

    action: ClassVar[str] = "settings_update"


@event("CreditsAdjusted")
@attrs.frozen(kw_only=True)
class CreditsAdjusted(LedgerEvent):
    """A super admin added or withdrew coins by hand (never below zero); `note` is the admin's reason."""

    action: ClassVar[str] = "adjust_credits"
    note: str = ""
