"""Every read model the service maintains."""

from __future__ import annotations

from truebond.projections.audit import AUDIT
from truebond.projections.calls import CALLS
from truebond.projections.ledger import BALANCES, CREDIT_TRANSACTIONS
from truebond.projections.payments import PAYMENT_REVIEWS, PAYMENTS
from truebond.projections.sessions import SESSIONS
from truebond.projections.users import USERS
from truebond.projections.views import Projection

ALL_VIEWS: list[Projection] = [USERS, SESSIONS, BALANCES, CREDIT_TRANSACTIONS, AUDIT, PAYMENTS, PAYMENT_REVIEWS, CALLS]
