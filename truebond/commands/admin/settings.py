"""Platform settings: only those the backend enforces (projections/platform_settings.DEFAULTS)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from truebond.commands.bus import Command, Context
from truebond.commands.decide import Decision, decide_and_append, read_model
from truebond.commands.unit import Unit, new_id
from truebond.events.admin import PlatformSettingsChanged
from truebond.projections import platform_settings
from truebond.projections.platform_settings import DOC_ID, PLATFORM_SETTINGS, STREAM


@attrs.frozen
class UpdatePlatformSettings(Command[dict[str, Any]]):
    """Change validated enforced settings; answers every setting in force after it."""

    changes: Mapping[str, Any]
    reason: str = ""


async def update_platform_settings(cmd: UpdatePlatformSettings, ctx: Context, deps: Unit) -> dict[str, Any]:
    """Append PlatformSettingsChanged with before/after of the keys that change (none: nothing)."""
    event_id = f"settings:{new_id()}"

    def decide(doc: dict[str, Any] | None) -> Decision | None:
        current = platform_settings.merged(doc)
        changed = {k: v for k, v in cmd.changes.items() if current.get(k) != v}
        if not changed:
            return None
        before = {k: current.get(k) for k in changed}
        return Decision(PlatformSettingsChanged(target_id=DOC_ID, reason=cmd.reason, before=before, after=changed), event_id)

    await decide_and_append(deps, STREAM, read_model(PLATFORM_SETTINGS, STREAM, DOC_ID), decide, ctx.meta())
    return await platform_settings.current(deps.db)
