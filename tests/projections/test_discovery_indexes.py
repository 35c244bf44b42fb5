"""Every discovery query uses an index.

On mongomock (no query planner) an index must hold every filtered field (but `_id`) and the sort
keys in order; on a real mongod (TRUEBOND_TEST_MONGO_URL) the winning plan of each query shows
an IXSCAN (and the geo query a 2dsphere one).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import pytest

from truebond import bootstrap
from truebond.projections import discovery
from truebond.projections import locations as locations_view
from truebond.projections.discovery import ListQuery, Viewer

VIEWER = Viewer("me", {"interested_in": "female", "min_age": 20, "max_age": 40}, frozenset({"blocked"}))
QUERIES = {
    "suggestions": discovery.suggestions_query(VIEWER, 2, 20),
    "feed": discovery.feed_query(VIEWER, 1, 20),
    "search": discovery.search_query(VIEWER, "Mee", 1, 20),
    "everyone": discovery.suggestions_query(Viewer("me", {"interested_in": "everyone"}, frozenset()), 1, 50),
}


def covered(keys: list[tuple[str, Any]], query: ListQuery) -> bool:
    """Whether one index's keys hold the query's filtered fields and its sort, the sort in order."""
    names = [k for k, _ in keys]
    fields = {k for k in query.filter if k != "_id"}
    sort = [k for k, _ in query.sort]
    if not (fields | set(sort)) <= set(names):
        return False
    positions = [names.index(s) for s in sort]
    return positions == sorted(positions)


async def indexes_of(runtime: bootstrap.Runtime, collection: str) -> list[list[tuple[str, Any]]]:
    info = await runtime.unit.db[collection].index_information()
    return [list(map(tuple, spec["key"])) for spec in info.values()]


@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_an_index_serves_each_list(runtime: bootstrap.Runtime, name: str) -> None:
    query = QUERIES[name]
    assert any(covered(keys, query) for keys in await indexes_of(runtime, "users")), name


async def test_the_geo_query_has_a_2dsphere_index_and_its_fallback_an_index(runtime: bootstrap.Runtime) -> None:
    keys = await indexes_of(runtime, "locations")
    assert any(k[0] == ("point", "2dsphere") for k in keys)
    fallback = ListQuery(locations_view.near_filter(runtime.unit.db, 12.9, 77.5, 10, datetime.now(UTC)), [], 0, 10)
    if "point" in fallback.filter:  # a real server: the geo filter itself
        assert any(k[0][0] == "point" for k in keys)
    else:
        assert any(covered(k, fallback) for k in keys)


@pytest.mark.skipif(not os.environ.get("TRUEBOND_TEST_MONGO_URL"), reason="needs a real mongod (TRUEBOND_TEST_MONGO_URL)")
@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_real_planner_uses_an_index_scan(runtime: bootstrap.Runtime, name: str) -> None:
    query = QUERIES[name]
    plan = await runtime.unit.db["users"].find(query.filter).sort(query.sort).skip(query.skip).limit(query.limit).explain()
    assert "IXSCAN" in str(plan["queryPlanner"]["winningPlan"]), name


@pytest.mark.skipif(not os.environ.get("TRUEBOND_TEST_MONGO_URL"), reason="needs a real mongod (TRUEBOND_TEST_MONGO_URL)")
async def test_real_planner_answers_nearby_from_the_geo_index(runtime: bootstrap.Runtime) -> None:
    coll = runtime.unit.db["locations"]
    plan = await coll.find(locations_view.near_filter(runtime.unit.db, 12.9, 77.5, 10, datetime.now(UTC))).explain()
    assert "IXSCAN" in str(plan["queryPlanner"]["winningPlan"]) or "GEO_NEAR_2DSPHERE" in str(plan["queryPlanner"]["winningPlan"])
