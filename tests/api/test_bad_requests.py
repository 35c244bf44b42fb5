"""Requests aiohttp's parser refuses, sent as raw bytes to the real server: what comes back, what is logged.

An oversized header, a bad Content-Length and a NUL in a header value each get the JSON error
envelope with the security headers and nothing of the offending input; the log gets one line for
a burst of them (no traceback), and another once the interval has passed.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest

from truebond.api import parse_errors
from truebond.api.middlewares import SECURE_HEADERS

MARKER = b"Zq7SecretMarker"
BAD_REQUESTS = {
    "oversized header": b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"A" * 9000 + MARKER + b"\r\n\r\n",
    "bad content-length": b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 12" + MARKER + b"\r\n\r\n",
    "NUL in a header": b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Note: a\x00" + MARKER + b"\r\n\r\n",
    "NUL in the request line": b"GET /api/health\x00" + MARKER + b" HTTP/1.1\r\nHost: x\r\n\r\n",
}


class FakeMonotonic:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock_of_the_throttle(monkeypatch: pytest.MonkeyPatch) -> FakeMonotonic:
    """A fresh throttle (nothing logged yet) on a clock the test controls."""
    fake = FakeMonotonic()
    monkeypatch.setattr(parse_errors, "THROTTLE", parse_errors.Throttle(parse_errors.LOG_INTERVAL_SECONDS, now=fake))
    return fake


async def raw(client: Any, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes over a new TCP connection; (status, headers, body) of the answer read to EOF
    (the server closes the connection after refusing, or the read times out)."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(data)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def log_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
async def test_refused_request_gets_the_envelope_and_the_security_headers(client: Any, clock_of_the_throttle: Any, name: str) -> None:
    status, headers, body = await raw(client, BAD_REQUESTS[name])
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    envelope = json.loads(body)
    assert set(envelope) == {"detail", "code", "request_id"} and envelope["code"] == "bad_request"
    for header, value in SECURE_HEADERS.headers.items():
        assert headers[header.lower()] == value, header
    assert headers["server"] == "truebond"
    assert MARKER not in body and b"AAAA" not in body


async def test_a_burst_of_refused_requests_logs_one_line_without_a_traceback(
    client: Any, clock_of_the_throttle: FakeMonotonic, log_output: io.StringIO
) -> None:
    for data in [*BAD_REQUESTS.values(), *BAD_REQUESTS.values()]:
        assert (await raw(client, data))[0] == 400
    text = log_output.getvalue()
    assert "Traceback" not in text and MARKER.decode() not in text and "AAAAAAAA" not in text
    refused = [line for line in log_lines(log_output) if line["event"] == "http.unparsable_request"]
    assert len(refused) == 1, refused
    assert refused[0]["status"] == 400 and refused[0]["left_out"] == 0
    assert not [line for line in log_lines(log_output) if line.get("level") == "error"]

    clock_of_the_throttle.now += parse_errors.LOG_INTERVAL_SECONDS
    assert (await raw(client, BAD_REQUESTS["bad content-length"]))[0] == 400
    refused = [line for line in log_lines(log_output) if line["event"] == "http.unparsable_request"]
    assert [line["left_out"] for line in refused] == [0, 2 * len(BAD_REQUESTS) - 1]


async def test_the_server_still_answers_well_formed_requests_after_refusing(client: Any, clock_of_the_throttle: Any) -> None:
    await raw(client, BAD_REQUESTS["NUL in a header"])
    status, headers, body = await raw(client, b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200 and json.loads(body)["status"]
    assert headers["x-content-type-options"] == "nosniff"
