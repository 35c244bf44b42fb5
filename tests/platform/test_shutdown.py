"""Every await on a shutdown path is bounded: a close that hangs is logged and forced.

The suite used to hang under CPU load in the teardown of the socket tests: cancelling
python-socketio's Redis listener can be lost inside redis-py on Python 3.11 (its socket writes
run under `asyncio.wait_for`, which swallows a cancellation racing a completed write), after
which the listener waits for a pubsub message for ever and `SocketServer.close()` with it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import redis.asyncio as aioredis

from truebond.api.sockets import SocketServer
from truebond.lifecycle import bounded, stop_task


async def _loses_its_first_cancellation(started: asyncio.Event) -> None:
    """What the Redis listener does when a cancellation is lost: it goes on waiting."""
    started.set()
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        pass  # the lost cancellation
    await asyncio.sleep(3600)


async def test_stop_task_repeats_a_lost_cancellation() -> None:
    started = asyncio.Event()
    task = asyncio.ensure_future(_loses_its_first_cancellation(started))
    await started.wait()
    assert await stop_task(task, name="listener", seconds=5)
    assert task.done()


async def test_a_step_that_never_ends_is_logged_and_cancelled(log_output: Any) -> None:
    never = asyncio.Event()
    step = asyncio.ensure_future(never.wait())
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await bounded(step, name="stuck.close", seconds=0.2) is False
    assert loop.time() - began < 3
    assert step.cancelled()
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.strip()]
    assert any(line.get("event") == "shutdown.step_timeout" and line.get("step") == "stuck.close" for line in lines)


async def test_a_failing_step_is_reported_without_raising(log_output: Any) -> None:
    async def fails() -> None:
        raise ConnectionError("redis went away")

    assert await bounded(fails(), name="redis.close") is False
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.strip()]
    failed = [line for line in lines if line.get("event") == "shutdown.step_failed"]
    assert failed and failed[0]["error"] == "ConnectionError"
    assert "redis went away" not in log_output.getvalue()


async def test_socket_server_closes_when_the_redis_listener_lost_its_cancellation(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    server = SocketServer(client, manager_url=redis_url, cors_origin="https://app.truebond.test")
    started = asyncio.Event()
    listener = asyncio.ensure_future(_loses_its_first_cancellation(started))
    server.sio.manager.thread = listener
    await started.wait()
    closing = asyncio.ensure_future(server.close())
    try:
        # asyncio.wait does not cancel `closing` at the deadline (a cancellation from outside
        # would itself end the listener and hide the hang).
        done, _ = await asyncio.wait({closing}, timeout=15)
        assert closing in done, "SocketServer.close() hung on the listener"
    finally:
        closing.cancel()
        listener.cancel()
        await client.aclose()
    assert listener.done()


async def test_socket_server_stops_an_engineio_monitor_that_had_not_started_yet(redis_url: str) -> None:
    """Engine.IO creates the monitor's stop event in the monitor's first step: a shutdown right
    after the first connect found no event, returned, and left the monitor looping for ever."""
    client = aioredis.from_url(redis_url)
    server = SocketServer(client, manager_url=None, cors_origin="https://app.truebond.test")
    eio = server.sio.eio

    async def monitor_not_started_yet() -> None:
        await asyncio.sleep(0.5)  # the loop is busy: the task's first step comes late
        await eio._service_task()

    monitor = eio.service_task_handle = asyncio.ensure_future(monitor_not_started_yet())
    try:
        await asyncio.wait_for(server.close(), 15)
        await asyncio.sleep(1)
        assert monitor.done(), "Engine.IO's client monitor outlived the server"
    finally:
        monitor.cancel()
        await client.aclose()
