"""Bounded shutdown: every await on a close path ends within a deadline, or is logged and forced.

Why this exists: on Python 3.11 `asyncio.wait_for` can swallow a cancellation that races the
completion of the awaited operation (fixed in 3.12). redis-py wraps its socket writes in it, so
cancelling python-socketio's Redis listener while it subscribes can be lost under CPU load; the
listener then blocks for ever in a pubsub read that has no timeout, and whoever awaited it
hangs with it. A close step here is awaited through `asyncio.wait` (which never forwards our own
deadline into the step) and a task is cancelled again until it really ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from truebond.logging import get_logger

log = get_logger(__name__)

CLOSE_TIMEOUT_SECONDS = 5.0
_RECANCEL_SECONDS = 0.25


async def stop_task(task: asyncio.Future[Any], *, name: str, seconds: float = CLOSE_TIMEOUT_SECONDS) -> bool:
    """Cancel `task` until it has ended (a lost cancellation is repeated); False when it outlived `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not task.done():
        remaining = deadline - loop.time()
        if remaining <= 0:
            log.warning("shutdown.task_stuck", task=name, seconds=seconds)
            return False
        task.cancel()
        await asyncio.wait({task}, timeout=min(_RECANCEL_SECONDS, remaining))
    if not task.cancelled() and task.exception() is not None:
        log.warning("shutdown.task_failed", task=name, error=type(task.exception()).__name__)
    return True


async def bounded(step: Awaitable[Any], *, name: str, seconds: float = CLOSE_TIMEOUT_SECONDS) -> bool:
    """Await one close step for at most `seconds`; True when it finished cleanly.

    A step that fails is logged (its error type only); one that times out is logged and then
    cancelled with `stop_task`, so nothing it started is left running.
    """
    task = asyncio.ensure_future(step)
    try:
        await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not task.done():
        log.warning("shutdown.step_timeout", step=name, seconds=seconds)
        await stop_task(task, name=name, seconds=seconds)
        return False
    if task.cancelled():
        return False
    error = task.exception()
    if error is not None:
        log.warning("shutdown.step_failed", step=name, error=type(error).__name__)
        return False
    return True
