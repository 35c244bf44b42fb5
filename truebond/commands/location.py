"""Location and profile-view commands: positions (`location-<user>`) and views (`views-<user>`).

A position is rounded to 3 decimals at the edge and recorded at most once per 30 s (a later one
inside the window answers `throttled` and records nothing). Deleting an account drops its stored
position in a re-driven reaction. A profile opened by someone else counts once per viewer per day.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import attrs

from truebond.commands.bus import Bus, Command, Context, HandlerTable, Reaction, ReactionTable
from truebond.commands.decide import Decision, decide_and_append, head_only, read_model
from truebond.commands.unit import Unit, new_id
from truebond.events.account import AccountDeleted
from truebond.events.base import Recorded
from truebond.events.discovery import LocationCleared, LocationUpdated, ProfileViewed, encode_coords
from truebond.projections import blocks
from truebond.projections.locations import LOCATIONS

THROTTLE = timedelta(seconds=30)


def round_coord(value: float) -> float:
    """A coordinate rounded to 3 decimals (about 110 m), the only precision ever stored."""
    return round(float(value), 3)


@attrs.frozen
class LocationResult:
    """`updated` with the time it was recorded, or `throttled` with the time of the last one."""

    status: str
    updated_at: datetime


@attrs.frozen
class UpdateLocation(Command[LocationResult]):
    """Record the caller's position (the edge validated the ranges)."""

    user_id: str
    latitude: float
    longitude: float


@attrs.frozen
class ClearLocation(Command[None]):
    """Drop a user's stored position (their account was deleted)."""

    user_id: str


@attrs.frozen
class RecordProfileView(Command[None]):
    """`viewer_id` opened `target_id`'s profile (once per viewer, target and day)."""

    viewer_id: str
    target_id: str


def location_stream(user_id: str) -> str:
    """The stream of a user's positions."""
    return f"location-{user_id}"


async def update_location(cmd: UpdateLocation, ctx: Context, deps: Unit) -> LocationResult:
    """Record the rounded position unless one was recorded in the last 30 s."""
    stream = location_stream(cmd.user_id)
    now = deps.clock.now()
    coords = encode_coords(round_coord(cmd.latitude), round_coord(cmd.longitude))
    last: list[datetime] = []

    def decide(doc: dict[str, Any] | None) -> Decision | None:
        at = None if doc is None else doc.get("updated_at")
        if at is not None and now - at < THROTTLE:
            last.append(at)
            return None
        return Decision(LocationUpdated(coords=coords), f"loc:{cmd.user_id}:{new_id()}", subject=cmd.user_id)

    done = await decide_and_append(deps, stream, read_model(LOCATIONS, stream, cmd.user_id), decide, ctx.meta())
    if done:
        return LocationResult("updated", done[-1].recorded.at)
    return LocationResult("throttled", last[-1])


async def clear_location(cmd: ClearLocation, ctx: Context, deps: Unit) -> None:
    """Drop the stored position (nothing when none is stored)."""
    stream = location_stream(cmd.user_id)

    def decide(doc: dict[str, Any] | None) -> Decision | None:
        if doc is None or doc.get("updated_at") is None:
            return None
        return Decision(LocationCleared(), f"loc-clear:{cmd.user_id}:{int(doc.get('_v', 0))}")

    await decide_and_append(deps, stream, read_model(LOCATIONS, stream, cmd.user_id), decide, ctx.meta())


async def record_profile_view(cmd: RecordProfileView, ctx: Context, deps: Unit) -> None:
    """Count a view of someone else's profile, once per viewer per UTC day (idempotency id)."""
    # A shadow-banned viewer's visits count for nobody (their activity never reaches others).
    if cmd.viewer_id == cmd.target_id or await blocks.shadow_banned(deps.db, cmd.viewer_id):
        return
    day = deps.clock.now().date().isoformat()
    event_id = f"view:{cmd.target_id}:{cmd.viewer_id}:{day}"
    if await deps.store.get(event_id) is not None:
        return

    def decide(_: None) -> Decision:
        return Decision(ProfileViewed(viewer_id=cmd.viewer_id), event_id)

    await decide_and_append(deps, f"views-{cmd.target_id}", head_only(f"views-{cmd.target_id}"), decide, ctx.meta())


async def clear_location_of_deleted(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """A deleted account's position leaves the read model (idempotent; re-driven)."""
    event = rec.event
    assert isinstance(event, AccountDeleted)
    await bus.handle(ClearLocation(event.user_id), ctx)


HANDLERS: HandlerTable = {
    UpdateLocation: update_location,
    ClearLocation: clear_location,
    RecordProfileView: record_profile_view,
}
REACTIONS: ReactionTable = {AccountDeleted: [Reaction(clear_location_of_deleted, redrive=True)]}
