"""The session descriptions of a ringing call, kept briefly so the pushes that follow can carry them.

`call_user` carries the caller's offer and `call:accept` the receiver's answer; they are
WebRTC session descriptions (network addresses inside), not history, so they never go into
events: they wait here (two minutes at most) for the reaction that pushes `incoming_call` and
`call:accept`.
"""

from __future__ import annotations

import json
from typing import Any

PREFIX = "tb:call:sdp:"
TTL_SECONDS = 120


class CallSignals:
    """Offer and answer of a call by kind (`offer`, `answer`)."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def put(self, call_id: str, kind: str, description: dict[str, Any]) -> None:
        """Keep a session description for the push that will carry it."""
        await self._redis.set(f"{PREFIX}{call_id}:{kind}", json.dumps(description), ex=TTL_SECONDS)

    async def get(self, call_id: str, kind: str) -> dict[str, Any] | None:
        """The kept description, if it is still there."""
        raw = await self._redis.get(f"{PREFIX}{call_id}:{kind}")
        if raw is None:
            return None
        value = json.loads(raw)
        return value if isinstance(value, dict) else None
