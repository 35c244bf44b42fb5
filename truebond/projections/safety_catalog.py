"""The read models of the safety and admin area, listed once in `catalog.ALL_VIEWS`."""

from __future__ import annotations

from truebond.projections.platform_settings import PLATFORM_SETTINGS
from truebond.projections.safety import BLOCK_LISTS, REPORTS
from truebond.projections.views import Projection

SAFETY_VIEWS: list[Projection] = [BLOCK_LISTS, REPORTS, PLATFORM_SETTINGS]
