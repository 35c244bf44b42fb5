"""The aiohttp application: middlewares, the route table, CORS and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterable

import aiohttp_cors
from aiohttp import web
from aiohttp.typedefs import Middleware

from truebond.api import (
    openapi,
    parse_errors,
    routes_account,
    routes_admin,
    routes_admin_ops,
    routes_admin_users,
    routes_auth,
    routes_calls,
    routes_chat,
    routes_discovery,
    routes_health,
    routes_location,
    routes_notifications,
    routes_otp,
    routes_payments,
    routes_profile,
    routes_safety,
    sockets,
)
from truebond.api.middlewares import client_address, errors, hide_server_version, request_context, security_headers
from truebond.api.routing import BUS_KEY, UNIT_KEY, Route, wrap
from truebond.api.validation import JSON_LIMIT
from truebond.commands.bus import Bus
from truebond.commands.unit import Unit

ROUTE_TABLES: list[list[Route]] = [
    routes_health.ROUTES,
    routes_auth.ROUTES,
    routes_admin.ROUTES,
    routes_profile.ROUTES,
    routes_otp.ROUTES,
    routes_account.ROUTES,
    routes_payments.ROUTES,
    routes_safety.ROUTES,
    routes_admin_users.ROUTES,
    routes_admin_ops.ROUTES,
    routes_chat.ROUTES,
    routes_discovery.ROUTES + routes_location.ROUTES + routes_notifications.ROUTES,
    routes_calls.ROUTES,
]


def all_routes() -> list[Route]:
    """Every route of the API, in registration order."""
    return [route for table in ROUTE_TABLES for route in table]


def _proxy_middleware(hops: int) -> list[Middleware]:
    return [client_address(hops)] if hops else []


def create_app(unit: Unit, bus: Bus, routes: Iterable[Route] | None = None) -> web.Application:
    """Build the web application around an assembled Unit and its bus."""
    table = list(routes if routes is not None else all_routes())
    hide_server_version()
    parse_errors.install()
    app = web.Application(
        # Without trusted proxies the address middleware would do nothing: it is left out.
        middlewares=[*_proxy_middleware(unit.settings.trusted_proxy_hops), request_context, errors],
        client_max_size=max(JSON_LIMIT, *(r.max_body for r in table)),
    )
    app[UNIT_KEY] = unit
    app[BUS_KEY] = bus
    app[openapi.OPENAPI_KEY] = openapi.build(table)
    app.on_response_prepare.append(security_headers)
    for route in table:
        app.router.add_route(route.method, route.path, wrap(route))
    cors = aiohttp_cors.setup(
        app,
        defaults={
            unit.settings.frontend_origin: aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]
                allow_credentials=True,
                allow_headers=("Authorization", "Content-Type", "X-Request-ID", "X-Confirm-Token"),
                expose_headers=("Retry-After", "X-Request-ID"),
                allow_methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
                max_age=600,
            )
        },
    )
    for resource in list(app.router.resources()):
        cors.add(resource)
    # After CORS: Engine.IO answers its own preflights and checks the origin itself.
    if isinstance(unit.notifier, sockets.SocketServer):
        unit.notifier.attach(app, unit, bus)
    return app
