"""The HTTP request path beside a bare aiohttp JSON handler: req/s, same-run ratio, p50/p99.

Run: .venv/bin/python bench/bench_http.py
     (BENCH_SECONDS=N per row, BENCH_CONNECTIONS=N, BENCH_USERS=N, BENCH_ROWS=health,send; TRUEBOND_BENCH_REDIS_URL as
     for bench_otp.py; TRUEBOND_BENCH_MONGO_URL for a real MongoDB, mongomock otherwise)

Two server processes: a bare aiohttp app answering `{"status": "ok"}` (the baseline), and the
app as `serve` runs it (JSON logs at INFO to /dev/null, a real Redis, Socket.IO on the Redis
manager, `web.AppRunner` without aiohttp's access log), which seeds its own accounts: BENCH_USERS
users and as many admins, so the per-user limit (300/minute) never cuts a row short (each GET row
    starts with a 1 s warm-up that is not counted). A separate
process drives each row over loopback: wrk (one thread, a Lua script cycling the tokens) when it
is installed, else an aiohttp client. Rows: bare, `GET /api/health`, `GET /api/bench/whoami`
(an authenticated route the bench mounts, whose handler does no I/O: token, session, standing,
limits), `GET /api/admin/me` (admin token; reads the caller's account), `GET /api/auth/me`
(account, coins, presence), `POST /api/messages/send` (a write with its charge), and mixed
authenticated traffic (`MIX`: whoami, me, unread count, health and one send in ten, cycled). `failed`
counts non-2xx answers and socket errors or timeouts (10 s); in a tiny run every account is soon
over its limit, so most answers there are 429s.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_otp import redis_url
from common import backend, scale, tiny

HERE = Path(__file__).resolve()
_DEVNULL = open(os.devnull, "w")
SECONDS = float(os.environ.get("BENCH_SECONDS", "0")) or scale(8, 1)
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "0")) or scale(32, 4)
USERS = int(os.environ.get("BENCH_USERS", "0")) or scale(400, 3)
WARMUP_SECONDS = 1.0
JWT = "bench-jwt-secret-that-is-long-enough-0123456789"
PASSWORD = "correct-horse-1"
ROWS = [
    ("bare aiohttp JSON handler", "bare", "GET", "/json", None),
    ("GET /api/health", "app", "GET", "/api/health", None),
    ("GET /api/bench/whoami (auth, no I/O)", "app", "GET", "/api/bench/whoami", "users"),
    ("GET /api/admin/me (admin token)", "app", "GET", "/api/admin/me", "admins"),
    ("GET /api/auth/me", "app", "GET", "/api/auth/me", "users"),
    ("POST /api/messages/send", "app", "POST", "/api/messages/send", "senders"),
    ("mixed authenticated traffic (see MIX)", "app", "MIXED", "/mixed", "senders"),
]
# The mixed row's requests, cycled per connection: a session's reads and its occasional message
# (1 write in 10), every one with a user's token.
MIX = [
    ("GET", "/api/bench/whoami"),
    ("GET", "/api/auth/me"),
    ("GET", "/api/bench/whoami"),
    ("GET", "/api/notifications/unread-count"),
    ("GET", "/api/bench/whoami"),
    ("GET", "/api/health"),
    ("GET", "/api/bench/whoami"),
    ("GET", "/api/auth/me"),
    ("GET", "/api/bench/whoami"),
    ("POST", "/api/messages/send"),
]

WRK_SCRIPT = """
local lines = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do lines[#lines + 1] = line end
local method, path, i = os.getenv("BENCH_METHOD"), os.getenv("BENCH_PATH"), 0
local mix = {}
for m, p in string.gmatch(os.getenv("BENCH_MIX") or "", "(%u+) (%S+)") do mix[#mix + 1] = {m, p} end
request = function()
  i = i + 1
  local method, path = method, path
  if method == "MIXED" then method, path = mix[(i % #mix) + 1][1], mix[(i % #mix) + 1][2] end
  local headers = {["Content-Type"] = "application/json"}
  local body = nil
  if #lines > 0 then
    local token, receiver = lines[(i % #lines) + 1]:match("^(%S+)%s*(%S*)$")
    headers["Authorization"] = "Bearer " .. token
    if method == "POST" then body = '{"receiver_id":"' .. receiver .. '","content":"hi there"}' end
  end
  return wrk.format(method, path, headers, body)
end
"""


# ------------------------------------------------------------------------------ servers
async def serve_bare(port: int) -> None:
    """The baseline: one aiohttp JSON handler, nothing else."""
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/json", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("READY", flush=True)
    await asyncio.Event().wait()


async def serve_app(port: int, redis: str, out: Path) -> None:
    """The app as `serve` runs it, with its accounts seeded through the bus; tokens go to `out`."""
    from aiohttp import web
    from common import database

    from truebond import bootstrap
    from truebond.api.routing import Req, Route, json_response, wrap
    from truebond.commands.bus import Context
    from truebond.commands.identity import PasswordLogin, SetRole, Signup
    from truebond.config import load_settings
    from truebond.logging import configure_logging

    configure_logging(json=True, stream=sys.__stderr__ if os.environ.get("BENCH_LOGS") else _DEVNULL)
    settings = load_settings("test", {"REDIS_URL": redis, "JWT_SECRET": JWT, "STRIPE_WEBHOOK_SECRET": "whsec_bench"})
    async with database() as db:
        runtime = await bootstrap.build(settings, db=db, fast_hashing=True)
        await bootstrap.ensure_indexes(runtime.unit)
        bus, ctx = runtime.bus, Context.system("bench")

        async def account(n: int, admin: bool) -> tuple[str, str]:
            email = f"bench{n:05d}@example.com"  # a fresh database every run
            body = {"name": "Bench", "email": email, "mobile_number": f"9{n:09d}", "password": PASSWORD}
            body |= {"age": 30, "gender": "female", "interested_in": "male", "intent": "dating"}
            tokens = await bus.handle(Signup(**body, min_age=25, max_age=40, max_distance_km=50), ctx)
            if not admin:
                return tokens.access_token, tokens.user_id
            await bus.handle(SetRole(email, "admin", reason="bench"), ctx)
            done = await bus.handle(PasswordLogin(email, PASSWORD, admin=True), ctx)
            return done.tokens.access_token, tokens.user_id

        users = [await account(n, False) for n in range(USERS)]
        admins = [await account(USERS + n, True) for n in range(USERS)]
        (out / "users").write_text("".join(f"{t}\n" for t, _ in users))
        (out / "admins").write_text("".join(f"{t}\n" for t, _ in admins))
        ring = zip(users, users[1:] + users[:1], strict=True)
        (out / "senders").write_text("".join(f"{t} {to}\n" for (t, _), (_, to) in ring))

        async def whoami(req: Req) -> web.StreamResponse:
            return json_response({"id": req.me.user_id, "role": req.me.role})

        app = bootstrap.web_app(runtime)
        app.router.add_route("GET", "/api/bench/whoami", wrap(Route("GET", "/api/bench/whoami", whoami, auth="user")))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print("READY", flush=True)
        await asyncio.Event().wait()


def start(*args: str) -> subprocess.Popen[str]:
    """A server process of this script; returns once it says READY."""
    proc = subprocess.Popen([sys.executable, str(HERE), *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "READY":
        proc.kill()
        raise SystemExit(f"server {args[0]} did not start: {line!r}")
    return proc


# ------------------------------------------------------------------------------ drivers
def drive_wrk(url: str, method: str, path: str, tokens: Path | None, scripts: Path, seconds: float = SECONDS) -> dict[str, Any]:
    """One wrk run (1 thread, CONNECTIONS connections, `seconds`); its rate and latency percentiles."""
    env = {**os.environ, "BENCH_TOKENS": str(tokens or scripts / "none"), "BENCH_METHOD": method, "BENCH_PATH": path}
    env["BENCH_MIX"] = " ".join(f"{m} {p}" for m, p in MIX)
    cmd = [
        "wrk",
        "-t1",
        f"-c{CONNECTIONS}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(scripts / "bench.lua"),
        url,
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if os.environ.get("BENCH_WRK_OUTPUT"):
        print(out, file=sys.stderr)
    count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    failed = int(errors.group(1)) if errors else 0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        failed += sum(int(n) for n in socket_errors.groups())
    return {"rate": rate, "count": count, "errors": failed, "p50": _pct(out, "50"), "p99": _pct(out, "99")}


def _pct(out: str, pct: str) -> float:
    match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if match is None:
        return float("nan")
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


def drive_aiohttp(url: str, method: str, path: str, tokens: Path | None, scripts: Path, seconds: float = SECONDS) -> dict[str, Any]:
    """The same run with an aiohttp client in a separate process (when wrk is missing)."""
    args = [sys.executable, str(HERE), "drive", url + path, method, str(tokens or ""), str(seconds)]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


async def client_run(url: str, method: str, lines: list[list[str]], seconds: float) -> None:
    """The aiohttp driver: CONNECTIONS workers for SECONDS, cycling (token, receiver) lines; prints one JSON line."""
    import aiohttp

    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONNECTIONS)) as session:

        async def worker(w: int) -> None:
            nonlocal errors
            i = w
            while time.perf_counter() < stop:
                i += CONNECTIONS
                verb, target = MIX[i % len(MIX)] if method == "MIXED" else (method, url)
                if method == "MIXED":
                    target = url.removesuffix("mixed") + target.lstrip("/")
                headers, body = {}, None
                if lines:
                    token, *receiver = lines[i % len(lines)]
                    headers["Authorization"] = f"Bearer {token}"
                    if verb == "POST":
                        body = {"receiver_id": receiver[0], "content": "hi there"}
                began = time.perf_counter()
                async with session.request(verb, target, headers=headers, json=body) as resp:
                    await resp.read()
                    errors += resp.status >= 400
                latencies.append((time.perf_counter() - began) * 1000)

        began = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(CONNECTIONS)))
        seconds = time.perf_counter() - began
    latencies.sort()
    n = len(latencies)
    p50, p99 = (latencies[n // 2], latencies[min(n - 1, n * 99 // 100)]) if n else (float("nan"),) * 2
    print(json.dumps({"rate": n / seconds, "count": n, "errors": errors, "p50": p50, "p99": p99}))


# ------------------------------------------------------------------------------ main
def main() -> None:
    use_wrk = shutil.which("wrk") is not None and not os.environ.get("BENCH_NO_WRK")
    drive = drive_wrk if use_wrk else drive_aiohttp
    from truebond.adapters.redis_client import free_port

    with redis_url() as (redis, where), tempfile.TemporaryDirectory() as tmp:
        scripts = Path(tmp)
        (scripts / "bench.lua").write_text(WRK_SCRIPT)
        (scripts / "none").write_text("")
        ports = {"bare": free_port(), "app": free_port()}
        seeded = time.perf_counter()
        procs = [start("bare", str(ports["bare"])), start("app", str(ports["app"]), redis, tmp)]
        seeded = time.perf_counter() - seeded
        try:
            results = []
            only = os.environ.get("BENCH_ROWS", "")  # e.g. BENCH_ROWS=health,send: the baseline and those rows
            for name, server, method, path, tokens in ROWS:
                if only and server != "bare" and not any(word in path for word in only.split(",")):
                    continue
                url, token_file = f"http://127.0.0.1:{ports[server]}", scripts / tokens if tokens else None
                if method == "GET":  # a warm-up, not counted: connections open, each account's standing cached
                    drive(url, method, path, token_file, scripts, WARMUP_SECONDS)
                results.append((name, drive(url, method, path, token_file, scripts)))
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
    bare = results[0][1]["rate"]
    print("HTTP request path beside a bare aiohttp JSON handler (same run, loopback)")
    print(f"backend: {backend()}; Redis: {where}")
    print(f"driver: {'wrk -t1' if use_wrk else 'aiohttp client'}, {CONNECTIONS} connections, {SECONDS:g}s per row;")
    print(f"accounts: {USERS} users + {USERS} admins, seeded in {seeded:.1f}s{' (tiny run: figures mean nothing)' if tiny() else ''}")
    print()
    header = f"{'what':<40} {'req/s':>10} {'ratio':>7} {'p50 ms':>8} {'p99 ms':>8} {'failed':>8}"
    print(header)
    print("-" * len(header))
    for name, r in results:
        print(f"{name:<40} {r['rate']:>10,.0f} {r['rate'] / bare:>6.2f}x {r['p50']:>8.2f} {r['p99']:>8.2f} {r['errors']:>8}")
    if not os.environ.get("TRUEBOND_BENCH_MONGO_URL"):
        print()
        print("note: mongomock scans a whole collection for every query (even by _id), so the rows that read")
        print("MongoDB (admin/me, auth/me, messages/send) mostly measure mongomock over the seeded accounts.")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "bare":
        asyncio.run(serve_bare(int(sys.argv[2])))
    elif len(sys.argv) > 1 and sys.argv[1] == "app":
        asyncio.run(serve_app(int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])))
    elif len(sys.argv) > 1 and sys.argv[1] == "drive":
        tokens = [line.split() for line in Path(sys.argv[4]).read_text().splitlines()] if sys.argv[4] else []
        asyncio.run(client_run(sys.argv[2], sys.argv[3], tokens, float(sys.argv[5])))
    else:
        main()
