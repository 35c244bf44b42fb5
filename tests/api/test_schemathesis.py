"""schemathesis against the running app, from its own /api/openapi.json, as three callers.

The app serves on a real local port (the aiohttp test server, so every answer is also checked
by tests/support/conformance.py); the schemathesis CLI runs in a subprocess with every check
(response schema conformance, negative data rejection, positive data acceptance, ...) in both
modes, once anonymous, once with a user's token and once with a super admin's. Bounded by
TRUEBOND_FUZZ_EXAMPLES examples per operation (`make fuzz` raises it); 0 failures expected.
Rate limits are lifted for the run (tests/support/limits.py). The routes that end the caller's own
session or account are fuzzed anonymously only, so one generated logout does not turn the rest
of a run into 401s.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.support import payments_support
from tests.support.accounts import signup
from tests.support.admins import make_admin
from tests.support.limits import lift_limits
from tests.support.sockets import base_url
from truebond import bootstrap

EXAMPLES = int(os.environ.get("TRUEBOND_FUZZ_EXAMPLES", "3"))
# The bounded pass of `make test` draws the same cases every run; a campaign explores.
DETERMINISTIC = "TRUEBOND_FUZZ_EXAMPLES" not in os.environ
RUN_TIMEOUT_SECONDS = float(os.environ.get("TRUEBOND_FUZZ_TIMEOUT", "240"))
CONFIG = Path(__file__).with_name("schemathesis.toml")
SELF_ENDING = r"^/api/(auth/logout(-all)?|users/account)$"
ST = Path(sys.executable).with_name("st")

# Orders go to the fake Stripe API (a real one is out of reach; without any, orders answer 503).
stripe_fake = payments_support.stripe_fake
settings = payments_support.settings
pytestmark = pytest.mark.timeout(RUN_TIMEOUT_SECONDS * 3 + 60)


def _failures(output: str) -> str:
    """The FAILURES section of a schemathesis report (or its last lines)."""
    start = output.find("FAILURES")
    end = output.find("WARNINGS", start)
    part = output[start:end] if start >= 0 else output[-6000:]
    return part[:12000]


def _cases(output: str) -> str:
    """schemathesis's own count line ("3076 generated, 3076 passed"), for the summary."""
    lines = output.splitlines()
    at = next((i for i, line in enumerate(lines) if line.strip() == "Test cases:"), None)
    return lines[at + 1].strip() if at is not None and at + 1 < len(lines) else "no count"


def _logs(default: Path) -> Path:
    return Path(os.environ.get("TRUEBOND_FUZZ_LOGS", default))


async def _run(url: str, token: str | None, name: str, out: Path) -> tuple[int, str]:
    args = [str(ST), "--no-color", "--config-file", str(CONFIG), "run", f"{url}/api/openapi.json"]
    args += ["--checks", "all", "--mode", "all", "--max-examples", str(EXAMPLES), "--seed", "12", "--workers", "1"]
    args += ["--phases", "examples,coverage,fuzzing", "--request-timeout", "20"]
    args += ["--generation-deterministic"] if DETERMINISTIC else ["--generation-database", "none"]
    if token is not None:
        args += ["-H", f"Authorization: Bearer {token}", "--exclude-path-regex", SELF_ENDING]
    log = _logs(out) / f"schemathesis-{name}.txt"
    with log.open("wb") as sink:
        # In `out`: schemathesis keeps a crash cache in its working directory.
        proc = await asyncio.create_subprocess_exec(*args, stdout=sink, stderr=asyncio.subprocess.STDOUT, cwd=out)
        try:
            code = await asyncio.wait_for(proc.wait(), RUN_TIMEOUT_SECONDS)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            code = -1
    return code, log.read_text(errors="replace")


async def test_schemathesis_finds_nothing_as_anonymous_user_and_admin(
    runtime: bootstrap.Runtime, aiohttp_client: Any, tmp_path: Path
) -> None:
    lift_limits(runtime)
    app = bootstrap.web_app(runtime)
    answered: list[int] = []

    async def count(request: web.Request, response: web.StreamResponse) -> None:
        answered.append(response.status)

    app.on_response_prepare.append(count)
    client = await aiohttp_client(app)
    user = await signup(client)
    boss = await make_admin(client, runtime, "super_admin")
    url = base_url(client)
    callers = (("anonymous", None), ("user", user["access_token"]), ("admin", boss["access_token"]))
    # The three runs go at once (the server answers them all from this event loop).
    results = await asyncio.gather(*(_run(url, token, name, tmp_path) for name, token in callers))
    for (name, _), (code, output) in zip(callers, results, strict=True):
        assert code == 0, f"schemathesis as {name} failed (exit {code}):\n{_failures(output)}"
    summary = [f"{name}: {_cases(output)}" for (name, _), (_, output) in zip(callers, results, strict=True)]
    summary.append(f"server: {len(answered)} requests answered, {sum(s >= 500 for s in answered)} with 5xx")
    assert not any(s >= 500 for s in answered), summary
    # The counts for the notes: TRUEBOND_FUZZ_LOGS keeps them (and each run's report) after the run.
    (_logs(tmp_path) / "schemathesis-summary.txt").write_text("\n".join(summary) + "\n")
