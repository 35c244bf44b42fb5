"""Liveness, readiness and the OpenAPI document."""

from __future__ import annotations

import asyncio

from aiohttp import web

from truebond.api import answers
from truebond.api.openapi import OPENAPI_KEY
from truebond.api.routing import Req, Route, json_response

PROBE_TIMEOUT_SECONDS = 2.0


async def health(req: Req) -> web.StreamResponse:
    """GET /api/health: the process answers."""
    return json_response({"status": "ok"})


async def ready(req: Req) -> web.StreamResponse:
    """GET /api/health/ready: 200 when MongoDB and Redis answer, else 503 naming what is down."""
    checks = {"mongodb": await _probe(req.unit.db.command("ping")), "redis": await _probe(req.unit.redis.ping())}
    down = [name for name, ok in checks.items() if not ok]
    body: dict[str, object] = {
        "status": "ready" if not down else "unavailable",
        "checks": {k: "up" if v else "down" for k, v in checks.items()},
    }
    if down:
        body["down"] = down
    return json_response(body, status=503 if down else 200)


async def _probe(awaitable: object) -> bool:
    try:
        await asyncio.wait_for(awaitable, PROBE_TIMEOUT_SECONDS)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - any failure of a probe means "down"
        return False
    return True


async def openapi(req: Req) -> web.StreamResponse:
    """GET /api/openapi.json: generated from the route table's schemas."""
    return json_response(req.request.app[OPENAPI_KEY])


ROUTES = [
    Route("GET", "/api/health", health, responses={200: answers.HEALTH}, summary="Liveness", tag="health", default_limit=False),
    Route(
        "GET",
        "/api/health/ready",
        ready,
        responses={200: answers.READY, 503: answers.NOT_READY},
        summary="Readiness of MongoDB and Redis",
        tag="health",
        default_limit=False,
    ),
    Route("GET", "/api/openapi.json", openapi, responses={200: answers.DOCUMENT}, summary="This document", tag="health"),
]
