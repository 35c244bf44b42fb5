"""Read model `platform_settings`: the enforced platform settings (one document, `settings`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from truebond.events.admin import PlatformSettingsChanged
from truebond.events.base import Recorded
from truebond.projections.views import StreamDocView, Update

STREAM = "platform-settings"
DOC_ID = "settings"

# Every setting the backend enforces, with its default (README "Safety and admin" says what each does).
DEFAULTS: Mapping[str, Any] = {
    "registrations_open": True,
    "max_reports_per_day": 20,
}


def _changed(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, PlatformSettingsChanged)
    return {"$set": {f"values.{k}": v for k, v in e.after.items() if k in DEFAULTS}}


PLATFORM_SETTINGS = StreamDocView(
    name="platform_settings",
    collection="platform_settings",
    stream_prefix=STREAM,
    updates={PlatformSettingsChanged: _changed},
)


def merged(doc: Mapping[str, Any] | None) -> dict[str, Any]:
    """The defaults overlaid with what admins changed."""
    values = dict((doc or {}).get("values") or {})
    return {k: values.get(k, v) for k, v in DEFAULTS.items()}


async def current(db: Any) -> dict[str, Any]:
    """The platform settings in force."""
    doc = await db[PLATFORM_SETTINGS.collection].find_one({"_id": DOC_ID})
    return merged(doc)
