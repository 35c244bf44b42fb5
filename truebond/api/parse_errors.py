"""Requests aiohttp's HTTP parser refuses: the error envelope, the security headers, one log line.

An oversized header, a bad Content-Length or a NUL in a header value is refused by aiohttp's
protocol layer (`RequestHandler.handle_error`) before any middleware or on_response_prepare hook
runs. Left alone, it answers a bare text 400 that quotes ~100 bytes of the offending input and
logs a traceback for each such request, so anyone can fill the log. aiohttp has no setting for
either, so `install` replaces that one method: the answer becomes the usual JSON envelope with the
security headers and no trace of the input, and the log gets one line per interval (with how many
were left out) for refused input. Errors raised by handlers are not parse errors: they keep their
traceback.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from truebond.api.middlewares import SECURE_HEADERS
from truebond.logging import get_logger

log = get_logger("truebond.http")

LOG_INTERVAL_SECONDS = 60.0
_ANSWERS = {
    400: ("bad_request", "Bad request"),
    500: ("internal", "Internal server error"),
    504: ("timeout", "The request took too long"),
}


class Throttle:
    """At most one `True` per interval; counts the calls it said `False` to in between."""

    def __init__(self, interval: float, now: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._now = now
        self._last: float | None = None
        self._lock = threading.Lock()
        self.suppressed = 0

    def allow(self) -> tuple[bool, int]:
        """(whether to log now, how many were left out since the last logged one)."""
        with self._lock:
            now = self._now()
            if self._last is not None and now - self._last < self._interval:
                self.suppressed += 1
                return False, 0
            self._last, left_out, self.suppressed = now, self.suppressed, 0
            return True, left_out


THROTTLE = Throttle(LOG_INTERVAL_SECONDS)


def answer(status: int) -> web.Response:
    """The envelope aiohttp's protocol layer answers with: no input echoed, the security headers."""
    code, detail = _ANSWERS.get(status, ("error", "Error"))
    response = web.json_response({"detail": detail, "code": code, "request_id": uuid.uuid4().hex}, status=status)
    for name, value in SECURE_HEADERS.headers.items():
        response.headers[name] = value
    response.force_close()
    return response


def handle_error(
    self: RequestHandler, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
) -> web.StreamResponse:
    """Replacement of `RequestHandler.handle_error` (same contract: an answer that closes the connection)."""
    if isinstance(exc, HttpProcessingError):
        emit, left_out = THROTTLE.allow()
        if emit:
            # The class name only: the exception's message quotes the offending bytes.
            log.warning("http.unparsable_request", status=status, reason=type(exc).__name__, left_out=left_out)
    elif exc is None:
        log.warning("http.protocol_error", status=status)
    else:
        self.log_exception("Error handling request", exc_info=exc)
    if request.writer.output_size > 0:
        raise ConnectionError("Response is sent already, cannot send another response with the error message")
    return answer(status)


def install() -> None:
    """Make aiohttp's protocol layer answer and log refused requests as above (idempotent)."""
    target: Any = RequestHandler
    if target.handle_error is not handle_error:
        target.handle_error = handle_error
