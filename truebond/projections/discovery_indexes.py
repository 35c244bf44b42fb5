"""The indexes of the discovery lists on `users` (projections/discovery.py builds the queries).

Equality fields first, then the sort, then the ranges (`age`), then the `$ne` of
`settings.safety.hide_from_search`, so each list is answered from one index in sort order.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING

from truebond.projections.views import IndexSpec

HIDDEN = "settings.safety.hide_from_search"

DISCOVERY_INDEXES: tuple[IndexSpec, ...] = (
    (
        [("status", ASCENDING), ("gender", ASCENDING), ("created_at", DESCENDING), ("age", ASCENDING), (HIDDEN, ASCENDING)],
        {"name": "discovery_recent"},
    ),
    (
        [("status", ASCENDING), ("gender", ASCENDING), ("updated_at", DESCENDING), ("age", ASCENDING), (HIDDEN, ASCENDING)],
        {"name": "discovery_feed"},
    ),
    (
        [("status", ASCENDING), ("name_keys", ASCENDING), ("created_at", DESCENDING), (HIDDEN, ASCENDING)],
        {"name": "name_search"},
    ),
)
