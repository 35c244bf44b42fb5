"""`truebond dev` end to end: start it, run the curl lines it prints exactly as printed, stop it."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from tests.support.network import free_port
from truebond.config import VARIABLES

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
CURL_TIMEOUT = 30.0

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed; the dev banner's lines need it")


class DevServer:
    """A `truebond dev` subprocess whose stdout is drained line by line by a thread."""

    def __init__(self, proc: subprocess.Popen[str], stderr_path: Path) -> None:
        self.proc = proc
        self.stderr_path = stderr_path
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        self._thread = threading.Thread(target=self._drain, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _drain(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def diagnostics(self) -> str:
        err = self.stderr_path.read_text(encoding="utf-8", errors="replace") if self.stderr_path.exists() else ""
        return "stdout:\n" + "\n".join(self.lines) + "\nstderr:\n" + err[-4000:]

    def try_it_lines(self, timeout: float) -> list[str]:
        """The three command lines printed after `Try it:`."""
        deadline = time.monotonic() + timeout
        seen_at: int | None = None
        while True:
            if seen_at is not None and len(self.lines) >= seen_at + 4:
                return [line.strip() for line in self.lines[seen_at + 1 : seen_at + 4]]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no 'Try it:' block within {timeout:.0f}s\n{self.diagnostics()}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail(f"truebond dev exited with {self.proc.wait()} before printing its 'Try it:' block\n{self.diagnostics()}")
            self.lines.append(line)
            if seen_at is None and line.strip() == "Try it:":
                seen_at = len(self.lines) - 1


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[DevServer]:
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env["PYTHONUNBUFFERED"] = "1"
    stderr_path = tmp_path / "dev.stderr"
    with stderr_path.open("w", encoding="utf-8") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "truebond", "dev", "--port", str(free_port())],
            cwd=tmp_path,  # no .env here: the embedded defaults apply
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    server = DevServer(proc, stderr_path)
    try:
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _bash(script: str) -> Any:
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=CURL_TIMEOUT, check=False)
    assert result.returncode == 0, f"{script}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"not JSON from {script!r}: {result.stdout!r} {result.stderr!r}")


def test_dev_banner_commands_work_as_printed(dev_server: DevServer) -> None:
    signup_line, login_line, me_line = dev_server.try_it_lines(START_TIMEOUT)
    assert signup_line.startswith("curl ") and "/api/auth/signup" in signup_line
    assert login_line.startswith("TOKEN=") and "/api/auth/login" in login_line
    assert "/api/auth/me" in me_line and "$TOKEN" in me_line

    signed_up = _bash(signup_line)
    assert isinstance(signed_up, dict), signed_up
    assert signed_up.get("access_token"), signed_up
    assert signed_up.get("token_type") == "bearer"
    assert signed_up["user"]["coins"] == 10
    assert "code" not in signed_up, signed_up

    # The second line sets TOKEN for the third: one shell for both.
    me = _bash(f"set -e\n{login_line}\n{me_line}")
    assert me["coins"] == 10, me
    assert me["email"] == signed_up["user"]["email"]
    assert me["id"] == signed_up["user"]["id"]

    dev_server.proc.send_signal(signal.SIGTERM)
    try:
        code = dev_server.proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"truebond dev did not stop within {STOP_TIMEOUT:.0f}s of SIGTERM\n{dev_server.diagnostics()}")
    assert code == 0, dev_server.diagnostics()

    # Dev logs are readable console lines (not JSON), each request's line carries its request id,
    # and nothing the curl lines sent or received appears in them.
    logs = dev_server.stderr_path.read_text(encoding="utf-8")
    lines = [line for line in logs.splitlines() if line.strip()]
    assert lines and not any(line.lstrip().startswith("{") for line in lines), logs[-2000:]
    started = [line for line in lines if "truebond.started" in line]
    assert len(started) == 1 and "mode=dev" in started[0] and "mongomock" in started[0], started
    requests = [line for line in lines if "http.request" in line]
    assert len(requests) >= 3, logs[-2000:]
    assert all(re.search(r"request_id=[0-9a-f]{32}", line) for line in requests), requests
    for secret in ("correct-horse-1", "asha@example.com", "9876543210", signed_up["access_token"], signed_up["refresh_token"]):
        assert secret not in logs, secret
