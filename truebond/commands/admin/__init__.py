"""Admin commands: account actions, moderation, platform settings (every one an audited event)."""

from __future__ import annotations

from truebond.commands.admin.moderation import ResolveReport, resolve_report
from truebond.commands.admin.settings import UpdatePlatformSettings, update_platform_settings
from truebond.commands.admin.users import (
    AdjustCredits,
    EndSessions,
    ReactivateUser,
    ShadowBan,
    SuspendUser,
    adjust_credits,
    end_sessions,
    end_sessions_of_suspended,
    reactivate_user,
    shadow_ban,
    suspend_user,
)
from truebond.commands.bus import HandlerTable, Reaction, ReactionTable
from truebond.events.admin import UserBanned, UserSuspended

__all__ = [
    "HANDLERS",
    "REACTIONS",
    "AdjustCredits",
    "EndSessions",
    "ReactivateUser",
    "ResolveReport",
    "ShadowBan",
    "SuspendUser",
    "UpdatePlatformSettings",
]

HANDLERS: HandlerTable = {
    SuspendUser: suspend_user,
    ReactivateUser: reactivate_user,
    ShadowBan: shadow_ban,
    AdjustCredits: adjust_credits,
    EndSessions: end_sessions,
    ResolveReport: resolve_report,
    UpdatePlatformSettings: update_platform_settings,
}

# Losing it would leave a suspended or banned account's sockets open: re-driven from the store.
REACTIONS: ReactionTable = {
    UserSuspended: [Reaction(end_sessions_of_suspended, redrive=True)],
    UserBanned: [Reaction(end_sessions_of_suspended, redrive=True)],
}
