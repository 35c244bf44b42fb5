"""Request ids and logging, the one error envelope, and security headers."""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp.web_response
import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware
from secure import (
    CacheControl,
    ContentSecurityPolicy,
    CrossOriginOpenerPolicy,
    CrossOriginResourcePolicy,
    ReferrerPolicy,
    Secure,
    Server,
    StrictTransportSecurity,
    XContentTypeOptions,
    XFrameOptions,
)

from truebond.api.error_map import as_dependency_down, body_of, status_of
from truebond.errors import RateLimited, TrueBondError
from truebond.logging import access_logger, get_logger
from truebond.masking import mask_text

log = get_logger("truebond.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)

SERVER_NAME = "truebond"

SECURE_HEADERS = Secure(
    hsts=StrictTransportSecurity().max_age(31_536_000).include_subdomains(),
    xcto=XContentTypeOptions().nosniff(),
    xfo=XFrameOptions().deny(),
    csp=ContentSecurityPolicy().default_src("'none'").frame_ancestors("'none'"),
    referrer=ReferrerPolicy().no_referrer(),
    coop=CrossOriginOpenerPolicy().same_origin(),
    corp=CrossOriginResourcePolicy().same_origin(),
    cache=CacheControl().no_store(),
    server=Server().set(SERVER_NAME),
)

# Computed once: `Secure.headers` rebuilds the header values on every call.
_SECURITY_HEADERS = tuple(SECURE_HEADERS.headers.items())

_STATUS_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Not authenticated"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    413: ("payload_too_large", "Request body too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
}


def envelope(status: int, code: str, detail: str, request_id: str, **extra: Any) -> web.Response:
    """The error body every failure uses: {detail, code, request_id} (+ extras such as errors)."""
    body = {"detail": detail, "code": code, "request_id": request_id, **extra}
    return web.json_response(body, status=status)


def client_address(trusted_hops: int) -> Middleware:
    """Middleware taking the client's IP from X-Forwarded-For, as written by `trusted_hops` proxies.

    Each trusted proxy appends the address it saw, so the client is the entry `trusted_hops` from
    the end; anything left of it was written by the client and is ignored. With 0 hops the header
    is never read (it could be forged).
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        ip = _forwarded_client(request, trusted_hops) if trusted_hops else None
        return await handler(request if ip is None else request.clone(remote=ip))

    return middleware


def _forwarded_client(request: web.Request, trusted_hops: int) -> str | None:
    """The X-Forwarded-For entry `trusted_hops` from the end (the first if there are fewer), if an IP."""
    forwarded = [p.strip() for h in request.headers.getall("X-Forwarded-For", []) for p in h.split(",") if p.strip()]
    if not forwarded:
        return None
    try:
        return str(ipaddress.ip_address(forwarded[-min(trusted_hops, len(forwarded))]))
    except ValueError:
        return None


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give each request an id, bind it to every log line, and log the outcome."""
    incoming = request.headers.get("X-Request-ID", "")
    if incoming and incoming.replace("-", "").isalnum() and 8 <= len(incoming) <= 64:
        # The client wrote it: masked once here, so the access line can trust the bound copy.
        request_id, logged_id = incoming, mask_text(incoming)
    else:
        request_id = logged_id = os.urandom(16).hex()  # hex between letters: nothing a mask would touch
    request[REQUEST_ID] = request_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=logged_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        access_logger().info(
            "http.request",
            method=request.method,
            path=request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched",
            status=status,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into the envelope; unexpected ones log their traceback and say 500."""
    request_id = request.get(REQUEST_ID, "")
    try:
        response = await handler(request)
    except TrueBondError as exc:
        status = status_of(exc)
        if status is None:
            log.exception("http.unhandled_error")
            return envelope(500, "internal", "Internal server error", request_id)
        response = web.json_response({**body_of(exc), "request_id": request_id}, status=status)
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        if status >= 500:
            log.warning("http.dependency_down", error_code=exc.code, cause=type(exc.__cause__).__name__)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, detail = _STATUS_CODES.get(exc.status, ("error", exc.reason or "Error"))
        response = envelope(exc.status, code, detail, request_id)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception as exc:
        down = as_dependency_down(exc)
        if down is None:
            log.exception("http.unhandled_error")
            return envelope(500, "internal", "Internal server error", request_id)
        log.warning("http.dependency_down", error_code=down.code, cause=type(exc).__name__)
        return web.json_response({**body_of(down), "request_id": request_id}, status=503)
    return response


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: security headers on every answer, errors and preflights too."""
    for name, value in _SECURITY_HEADERS:
        if name == "Cross-Origin-Resource-Policy":
            # The dev media route loosens this one on purpose so another origin can show images.
            response.headers.setdefault(name, value)
        else:
            response.headers[name] = value


def hide_server_version() -> None:
    """Make the answers aiohttp writes by itself name the server without a version too.

    A malformed request line or header is refused by aiohttp's protocol layer before any
    middleware or on_response_prepare hook runs; its default Server header would say
    "Python/3.x aiohttp/3.y". aiohttp has no setting for it, so its module default is replaced.
    """
    aiohttp.web_response.SERVER_SOFTWARE = SERVER_NAME  # type: ignore[attr-defined]
