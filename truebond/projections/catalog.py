"""Every read model the service maintains."""

from __future__ import annotations

from truebond.projections.activity import PROFILE_VIEWS, STREAKS
from truebond.projections.audit import AUDIT
from truebond.projections.calls import CALLS
from truebond.projections.conversations import CONVERSATIONS
from truebond.projections.ledger import BALANCES, CREDIT_TRANSACTIONS
from truebond.projections.locations import LOCATIONS
from truebond.projections.messages import MESSAGES
from truebond.projections.notifications import NOTIFICATIONS
from truebond.projections.payments import PAYMENT_REVIEWS, PAYMENTS
from truebond.projections.safety_catalog import SAFETY_VIEWS
from truebond.projections.sessions import SESSIONS
from truebond.projections.users import USERS
from truebond.projections.views import Projection

ALL_VIEWS: list[Projection] = [
    USERS,
    SESSIONS,
    BALANCES,
    CREDIT_TRANSACTIONS,
    AUDIT,
    PAYMENTS,
    PAYMENT_REVIEWS,
    *SAFETY_VIEWS,
    MESSAGES,
    CONVERSATIONS,
    LOCATIONS,
    PROFILE_VIEWS,
    STREAKS,
    NOTIFICATIONS,
    CALLS,
]
