"""Identity commands: signup, logins, refresh rotation, logouts, sessions, roles.

The modules: `signup` (claims of email and phone, the account), `sessions` (logins, refresh,
revocation and its reaction), `roles` (the operator's grants), `common` (what they share).
"""

from __future__ import annotations

from truebond.commands.bus import HandlerTable, Reaction, ReactionTable
from truebond.commands.identity.common import (
    ADMIN_ROLES,
    REFRESH_TTL,
    SessionTokens,
    digest,
    normalise_email,
)
from truebond.commands.identity.roles import RoleChange, SetRole, set_role
from truebond.commands.identity.sessions import (
    LoggedIn,
    Logout,
    LogoutAll,
    PasswordLogin,
    Refresh,
    RevokeSession,
    clear_login_lock,
    drop_session,
    end_revoked_session,
    log_in_with_password,
    log_out,
    log_out_everywhere,
    refresh,
    revoke_all,
    revoke_own_session,
    revoke_session,
    start_session,
)
from truebond.commands.identity.signup import (
    GrantSignupBonus,
    Signup,
    bonus_of_registered,
    grant_bonus,
    new_referral_code,
    release,
    sign_up,
)
from truebond.events.identity import SessionRevoked, UserRegistered

__all__ = [
    "ADMIN_ROLES",
    "HANDLERS",
    "REACTIONS",
    "REFRESH_TTL",
    "GrantSignupBonus",
    "LoggedIn",
    "Logout",
    "LogoutAll",
    "PasswordLogin",
    "Refresh",
    "RevokeSession",
    "RoleChange",
    "SessionTokens",
    "SetRole",
    "Signup",
    "clear_login_lock",
    "digest",
    "drop_session",
    "new_referral_code",
    "normalise_email",
    "release",
    "revoke_all",
    "revoke_session",
    "start_session",
]

HANDLERS: HandlerTable = {
    Signup: sign_up,
    GrantSignupBonus: grant_bonus,
    PasswordLogin: log_in_with_password,
    Refresh: refresh,
    Logout: log_out,
    LogoutAll: log_out_everywhere,
    RevokeSession: revoke_own_session,
    SetRole: set_role,
}

# Losing it would leave a revoked session usable (for up to an allow-list entry's 15 minutes)
# and its sockets open: re-driven from the store.
# The welcome bonus is granted inside the signup; this idempotent reaction grants one that a
# failure after the account was stored lost (re-driven too).
REACTIONS: ReactionTable = {
    SessionRevoked: [Reaction(end_revoked_session, redrive=True)],
    UserRegistered: [Reaction(bonus_of_registered, redrive=True)],
}
