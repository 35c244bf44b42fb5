"""Auditor's check: every hash chain intact, every read model equal to one re-derived from events."""

from __future__ import annotations

from typing import Any

from truebond.commands.unit import Unit
from truebond.events.store import UndecodableEvent, verify_chain
from truebond.projections.views import StreamGap


async def verify_chains(unit: Unit, limit: int = 100) -> list[str]:
    """Problems in the per-stream hash chains (altered, removed or reordered events)."""
    problems: list[str] = []
    stream: str | None = None
    docs: list[dict[str, Any]] = []
    async for doc in unit.store.raw_by_stream():
        if doc.get("stream") != stream:
            if docs:
                problems.extend(verify_chain(docs))
            stream, docs = doc.get("stream"), []
        docs.append(doc)
        if len(problems) >= limit:
            return problems[:limit]
    if docs:
        problems.extend(verify_chain(docs))
    return problems[:limit]


async def verify(unit: Unit) -> list[str]:
    """All problems: chain breaks first, then read-model differences."""
    problems = await verify_chains(unit)
    try:
        problems.extend(await unit.projections.diff())
    except (UndecodableEvent, StreamGap) as exc:
        problems.append(f"read models cannot be re-derived: {exc}")
    return problems
