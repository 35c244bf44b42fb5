"""Time as a dependency, so tests can move it instead of sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """A source of the current time."""

    def now(self) -> datetime:
        """The current UTC time, timezone-aware."""
        ...

    def time(self) -> float:
        """The current time in seconds since the epoch."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)

    def time(self) -> float:
        """Seconds since the epoch."""
        return time.time()


class ManualClock:
    """A clock that moves only when told to (tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        """The clock's current time."""
        return self._now

    def time(self) -> float:
        """The clock's current time in epoch seconds."""
        return self._now.timestamp()

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self._now += timedelta(seconds=seconds)


def to_ms(at: datetime) -> datetime:
    """Truncate to the millisecond, the precision MongoDB keeps, as an aware UTC datetime."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).replace(microsecond=at.microsecond // 1000 * 1000)


class OffsetClock:
    """The wall clock plus an offset that tests can move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> datetime:
        """Wall time plus the offset."""
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    def time(self) -> float:
        """Epoch seconds plus the offset."""
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Jump forward."""
        self.offset += seconds
