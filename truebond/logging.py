"""Structured logging for TrueBond with secret / PII masking.

Everything that is logged -- via structlog *or* the standard library
``logging`` module (aiohttp, motor, stripe, ...) -- passes through the same
processor chain, whose last step before rendering is
:func:`truebond.masking.mask_event`.

Usage::

    from truebond.logging import configure_logging, get_logger

    configure_logging(json=True)            # `serve` mode: one JSON object per line
    log = get_logger(__name__)
    log.info("user.login", email="a@b.com")  # -> "email": "***"

The per-request access line takes a fast path (:func:`access_logger`): a filtering bound logger
that renders the line itself and writes it to the same stream, without a stdlib ``LogRecord`` or
``ProcessorFormatter``. Its own fields are numbers and route templates; only the fields that can
carry client input (the request id, the method, anything bound in contextvars) are masked.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from datetime import UTC, datetime
from typing import IO, Any

import orjson
import structlog
from structlog.typing import Processor

from truebond.masking import mask_event, mask_fields

__all__ = [
    "access_logger",
    "configure_logging",
    "get_logger",
]

_HANDLER_MARKER = "_truebond_log_handler"


def _shared_processors() -> list[Processor]:
    # Run for structlog events *and* (as foreign_pre_chain) stdlib records.
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]


def _resolve_level(level: str) -> int:
    mapping = logging.getLevelNamesMapping()
    try:
        return mapping[level.strip().upper()]
    except KeyError:
        raise ValueError(f"unknown log level: {level!r}") from None


def configure_logging(*, json: bool, level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Configure structlog and stdlib logging to write masked logs to *stream*.

    ``json=True`` renders one JSON object per line, ``json=False`` a readable
    colourless console format.  *stream* defaults to ``sys.stderr``.  Safe to
    call repeatedly: the handler installed by a previous call is replaced.
    """
    numeric_level = _resolve_level(level)
    shared = _shared_processors()

    renderer: Processor
    if json:
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *shared[:3],
            structlog.stdlib.ExtraAdder(),
            *shared[3:],
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            mask_event,
            renderer,
        ],
    )

    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARKER, True)

    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_MARKER, False):
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(numeric_level)

    global _access
    fast_renderer = structlog.processors.JSONRenderer(serializer=_orjson_dumps) if json else renderer
    _access = _fast_logger(handler, fast_renderer, numeric_level, "truebond.http")

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
        # Not cached so that reconfiguration and structlog.testing.capture_logs
        # affect loggers created at import time.
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """Return a structlog logger bound to the stdlib logger *name*."""
    if name is None:
        return structlog.stdlib.get_logger()
    return structlog.stdlib.get_logger(name)


# Fields of the access line that are the server's own (route templates, numbers, levels).
# (`request_id` is bound already masked by the request middleware.)
_ACCESS_TRUSTED = frozenset({"event", "path", "status", "ms", "level", "logger", "timestamp", "request_id"})


def _orjson_dumps(obj: Any, **kwargs: Any) -> str:
    # The access line's values are str, int and float: orjson renders them ~10x faster than json.
    return orjson.dumps(obj, default=kwargs.get("default"), option=orjson.OPT_NON_STR_KEYS).decode()


class _HandlerWriter:
    """Writes rendered lines to a stdlib handler's stream, under that handler's lock."""

    def __init__(self, handler: logging.StreamHandler[IO[str]]) -> None:
        self._handler = handler
        self._flush_due = False

    def msg(self, line: str) -> None:
        """Write one rendered line; flushed at the end of this event-loop turn (at once outside a loop).

        One flush (a write system call) per loop turn instead of per line: under load a turn
        answers many requests. Other log lines share the stream and its buffer, so order holds.
        """
        handler = self._handler
        with handler.lock or _NO_LOCK:
            handler.stream.write(line + "\n")
        if self._flush_due:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._flush()
            return
        self._flush_due = True
        loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        handler = self._handler
        with handler.lock or _NO_LOCK:
            handler.stream.flush()

    info = warning = error = msg


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()


class _IsoStamper:
    """`TimeStamper(fmt="iso", utc=True)`'s text, with the date and time of day formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, logger: Any, method: str, event: Any) -> Any:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second, self._prefix = second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        event["timestamp"] = f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"
        return event


def _fast_logger(handler: logging.StreamHandler[IO[str]], renderer: Processor, level: int, name: str) -> Any:
    def add_level_and_name(logger: Any, method: str, event: Any) -> Any:
        event["level"] = method
        event["logger"] = name
        return event

    wrapper: Any = structlog.make_filtering_bound_logger(level)  # a class; typed as its protocol
    return wrapper(
        _HandlerWriter(handler),
        [
            structlog.contextvars.merge_contextvars,
            add_level_and_name,
            _IsoStamper(),
            mask_fields(_ACCESS_TRUSTED),
            renderer,
        ],
        {},
    )


_access: Any = None


def access_logger() -> Any:
    """The fast logger of the per-request access line (the stdlib-backed one before configuration)."""
    return _access if _access is not None else get_logger("truebond.http")
