"""`truebond dev`'s defaults follow its flags, and `--data-dir` keeps the embedded database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.accounts import signup_body
from tests.support.network import free_port
from truebond.__main__ import listen_url
from truebond.config import VARIABLES, load_settings

START_TIMEOUT = 60.0


def test_backend_url_follows_host_and_port_and_frontend_is_the_vite_origin() -> None:
    settings = load_settings("dev", {}, dev_backend_url=listen_url("127.0.0.1", 9123))
    assert settings.backend_url == "http://localhost:9123"
    assert settings.frontend_url == "http://localhost:5000"
    assert settings.frontend_origin == "http://localhost:5000"
    assert listen_url("0.0.0.0", 8001) == "http://localhost:8001"
    assert listen_url("192.168.1.20", 8001) == "http://192.168.1.20:8001"
    # What the environment says still wins.
    pinned = load_settings("dev", {"BACKEND_URL": "http://api.local:1"}, dev_backend_url="http://localhost:9123")
    assert pinned.backend_url == "http://api.local:1"


def _request(url: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null"), resp.headers
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), exc.headers


def _start(tmp_path: Path, port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    proc = subprocess.Popen(
        [sys.executable, "-m", "truebond", "dev", "--port", str(port), "--data-dir", str(data_dir)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if _request(f"http://127.0.0.1:{port}/api/health")[0] == 200:
                return proc
        except OSError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"truebond dev exited with {proc.returncode}")
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("truebond dev did not answer")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_data_dir_keeps_accounts_across_restarts(tmp_path: Path) -> None:
    port, data_dir = free_port(), tmp_path / "data"
    base = f"http://127.0.0.1:{port}"
    body = signup_body()
    proc = _start(tmp_path, port, data_dir)
    try:
        status, created, _ = _request(f"{base}/api/auth/signup", body)
        assert status == 201, created
        # The web client's dev server origin is the allowed one.
        _, _, headers = _request(f"{base}/api/health", headers={"Origin": "http://localhost:5000"})
        assert headers.get("Access-Control-Allow-Origin") == "http://localhost:5000"
    finally:
        _stop(proc)
    assert (data_dir / "events.bson").is_file()

    proc = _start(tmp_path, port, data_dir)
    try:
        status, logged, _ = _request(f"{base}/api/auth/login", {"email": body["email"], "password": body["password"]})
        assert status == 200, logged
        assert logged["user"]["id"] == created["user"]["id"] and logged["user"]["coins"] == 10
        # The same email cannot sign up twice: the unique indexes came back with the data.
        again, _, _ = _request(f"{base}/api/auth/signup", body)
        assert again == 409
    finally:
        _stop(proc)
