"""The `truebond` command: serve | dev | project | bill | replay | verify | indexes | roles."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import attrs
from aiohttp import web

from truebond import bootstrap
from truebond.adapters import dev_snapshot
from truebond.commands.dev_admins import parse_admin
from truebond.config import ConfigError, Mode, Settings, load_settings
from truebond.lifecycle import bounded
from truebond.logging import configure_logging, get_logger
from truebond.projections.follower import Projector
from truebond.workers import maintenance
from truebond.workers.billing import BillingWorker
from truebond.workers.reactions import reactions_follower

log = get_logger("truebond.cli")

# How long a stopping process waits for open requests and its workers before it forces them.
SHUTDOWN_SECONDS = 10.0


def say(line: str = "") -> None:
    """Write a line of command output for the operator (not a log line)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="truebond", description="TrueBond backend")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "dev"):
        p = sub.add_parser(name, help=f"run the API ({name} mode)")
        p.add_argument("--host", default="127.0.0.1" if name == "dev" else "0.0.0.0")  # noqa: S104
        p.add_argument("--port", type=int, default=8000)
        p.add_argument("--stripe-api-base", default=None)
        p.add_argument("--email-api-base", default=None)
        p.add_argument("--storage-endpoint", default=None)
        if name == "dev":
            p.add_argument("--data-dir", default=None, help="keep the embedded database in this folder across restarts (default: memory)")
        p.add_argument(
            "--trusted-proxy-hops",
            type=int,
            default=0,
            help="how many reverse proxies in front of the API append to X-Forwarded-For (default 0: ignore the header)",
        )
        if name == "dev":
            p.add_argument(
                "--admin",
                action="append",
                default=[],
                type=parse_admin,
                metavar="EMAIL[:ROLE]",
                help="grant this email's account ROLE (admin or super_admin, default super_admin), audited as system:dev",
            )
    sub.add_parser("project", help="tail the event store and update read models")
    sub.add_parser("bill", help="run the call-billing worker")
    replay = sub.add_parser("replay", help="rebuild read models from the events")
    replay.add_argument("--projection", action="append", default=None)
    sub.add_parser("verify", help="check hash chains and compare read models with re-derived ones")
    sub.add_parser("indexes", help="create the indexes")
    roles = sub.add_parser("roles", help="grant or revoke a role (audited)")
    roles.add_argument("action", choices=["grant", "revoke"])
    roles.add_argument("email")
    roles.add_argument("role", choices=["admin", "super_admin"])
    roles.add_argument("--reason", default="")
    payments = sub.add_parser("payments", help="payment operations")
    payments_sub = payments.add_subparsers(dest="payments_command", required=True)
    reconcile = payments_sub.add_parser("reconcile", help="credit succeeded PaymentIntents that have no credit yet")
    reconcile.add_argument("--since", type=int, default=7, metavar="DAYS", help="look back this many days (default 7)")
    reconcile.add_argument("--stripe-api-base", default=None)
    return parser


def _settings(args: argparse.Namespace, mode: Mode) -> Settings:
    return load_settings(
        mode,
        dotenv_path=Path(".env"),
        stripe_api_base=getattr(args, "stripe_api_base", None),
        email_api_base=getattr(args, "email_api_base", None),
        storage_endpoint=getattr(args, "storage_endpoint", None),
        trusted_proxy_hops=getattr(args, "trusted_proxy_hops", 0),
        dev_backend_url=listen_url(args.host, args.port) if mode == "dev" else None,
    )


def listen_url(host: str, port: int) -> str:
    """The URL a browser on this machine reaches a server listening on host:port by."""
    shown = "localhost" if host in ("0.0.0.0", "127.0.0.1", "::", "") else host  # noqa: S104
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


async def _serve(args: argparse.Namespace, settings: Settings) -> None:
    if settings.mode == "dev" and getattr(args, "admin", None):
        settings = attrs.evolve(settings, dev_admins=tuple(args.admin))
    runtime = await bootstrap.build(settings)
    unit = runtime.unit
    data_dir = Path(args.data_dir) if getattr(args, "data_dir", None) else None
    if data_dir is not None:
        restored = await dev_snapshot.load(unit.db, data_dir)
        say(f"Embedded database: {data_dir} ({restored} documents restored; saved again on exit)")
    await bootstrap.ensure_indexes(unit)
    if settings.dev_admins:
        from truebond.commands.dev_admins import grant_dev_admins

        await grant_dev_admins(runtime.bus)
    app = bootstrap.web_app(runtime)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    if settings.mode == "dev":
        # One process in dev: the projector and the maintenance sweep run beside the API.
        tasks.append(asyncio.create_task(Projector(unit.projections).run(stop)))
        tasks.append(asyncio.create_task(reactions_follower(runtime.bus).run(stop)))
        tasks.append(asyncio.create_task(maintenance.run(runtime.bus, stop)))
        tasks.append(asyncio.create_task(BillingWorker(runtime.bus).run(stop)))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    log.info("truebond.started", **settings.describe(), host=args.host, port=args.port)
    if settings.mode == "dev":
        _print_try_it(args.host, args.port)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("truebond.stopping")
    await bounded(runner.cleanup(), name="http.cleanup", seconds=2 * SHUTDOWN_SECONDS)
    for task in tasks:
        await bounded(task, name="worker.stop", seconds=SHUTDOWN_SECONDS)
    if data_dir is not None:
        await dev_snapshot.save(unit.db, data_dir)
    await runtime.close()


def _print_try_it(host: str, port: int) -> None:
    base = f"http://{host}:{port}"
    signup = (
        '{"name":"Asha","email":"asha@example.com","mobile_number":"9876543210","password":"correct-horse-1",'
        '"age":27,"gender":"female","interested_in":"male","intent":"dating","min_age":24,"max_age":35,"max_distance_km":25}'
    )
    say()
    say(f"TrueBond API (dev) listening on {base}  -  health: {base}/api/health  -  OpenAPI: {base}/api/openapi.json")
    say("Try it:")
    say(f"  curl -s -X POST {base}/api/auth/signup -H 'Content-Type: application/json' -d '{signup}'")
    say(
        f"  TOKEN=$(curl -s -X POST {base}/api/auth/login -H 'Content-Type: application/json' "
        '-d \'{"email":"asha@example.com","password":"correct-horse-1"}\' '
        "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
    )
    say(f'  curl -s {base}/api/auth/me -H "Authorization: Bearer $TOKEN"')
    say()


async def _project(settings: Settings) -> None:
    runtime = await bootstrap.build(settings, sockets=False)
    await bootstrap.ensure_indexes(runtime.unit)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    # The maintenance sweep (OTP expiry audit, pending account erasures) runs beside the projector.
    # Beside them, the reactions follower re-runs the reactions whose loss matters.
    await asyncio.gather(
        Projector(runtime.unit.projections).run(stop),
        reactions_follower(runtime.bus).run(stop),
        maintenance.run(runtime.bus, stop),
    )
    await runtime.close()


async def _bill(settings: Settings) -> None:
    runtime = await bootstrap.build(settings, sockets=False)
    await bootstrap.ensure_indexes(runtime.unit)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await BillingWorker(runtime.bus).run(stop)
    await runtime.close()


async def _replay(settings: Settings, names: list[str] | None) -> int:
    runtime = await bootstrap.build(settings, sockets=False)
    try:
        count = await runtime.unit.projections.replay(names)
    except KeyError as exc:
        say(f"unknown projection {exc}")
        return 2
    finally:
        await runtime.close()
    say(f"replayed {count} events into {', '.join(v.name for v in runtime.unit.projections.named(names))}")
    return 0


async def _verify(settings: Settings) -> int:
    from truebond.verify import verify

    runtime = await bootstrap.build(settings, sockets=False)
    try:
        problems = await verify(runtime.unit)
    finally:
        await runtime.close()
    for line in problems:
        say(line)
    say("verify: OK" if not problems else f"verify: {len(problems)} problem(s)")
    return 1 if problems else 0


async def _indexes(settings: Settings) -> int:
    runtime = await bootstrap.build(settings, sockets=False)
    try:
        for name in await bootstrap.ensure_indexes(runtime.unit):
            say(name)
    finally:
        await runtime.close()
    return 0


async def _roles(settings: Settings, action: str, email: str, role: str, reason: str) -> int:
    from truebond.commands.bus import Context
    from truebond.commands.identity import SetRole
    from truebond.errors import Conflict, NotFound

    runtime = await bootstrap.build(settings, sockets=False)
    try:
        new_role = role if action == "grant" else "user"
        # A revoke takes away only the role named: revoking `admin` leaves a super_admin alone.
        expected = role if action == "revoke" else None
        change = await runtime.bus.handle(SetRole(email, new_role, reason, expected=expected), Context.system("cli"))
    except NotFound:
        say("no account with that email")
        return 1
    except Conflict as exc:
        say(f"{exc.detail}; nothing changed")
        return 1
    finally:
        await runtime.close()
    say(f"user {change.user_id}: role {change.previous} -> {new_role}")
    return 0


async def _payments_reconcile(settings: Settings, days: int) -> int:
    from truebond.commands.bus import Context
    from truebond.commands.payments import Reconcile
    from truebond.errors import DependencyDown
    from truebond.masking import mask_text

    if not settings.stripe_secret_key:
        say("STRIPE_SECRET_KEY is required")
        return 2
    runtime = await bootstrap.build(settings, sockets=False)
    try:
        report = await runtime.bus.handle(Reconcile(since_days=max(0, days)), Context.system("reconcile"))
    except DependencyDown:
        say("Stripe is unavailable")
        return 1
    finally:
        await runtime.close()
    for intent_id, reason in report.rejected:
        say(f"refused {mask_text(intent_id)}: {reason}")
    say(
        f"reconcile: {report.checked} succeeded intent(s) checked, {report.credited} credited, "
        f"{report.already_credited} already credited, {len(report.rejected)} refused, {report.foreign} not ours"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `truebond` command."""
    args = _parser().parse_args(argv)
    mode: Mode = {"serve": "serve", "dev": "dev"}.get(args.command, "tool")  # type: ignore[assignment]
    configure_logging(json=mode != "dev")
    try:
        settings = _settings(args, mode)
    except ConfigError as exc:
        log.error("config.invalid", problem=str(exc))
        say(f"configuration error: {exc}")
        return 2
    if args.command in ("serve", "dev"):
        asyncio.run(_serve(args, settings))
        return 0
    if args.command == "project":
        asyncio.run(_project(settings))
        return 0
    if args.command == "bill":
        asyncio.run(_bill(settings))
        return 0
    if args.command == "replay":
        return asyncio.run(_replay(settings, args.projection))
    if args.command == "verify":
        return asyncio.run(_verify(settings))
    if args.command == "indexes":
        return asyncio.run(_indexes(settings))
    if args.command == "payments" and args.payments_command == "reconcile":
        return asyncio.run(_payments_reconcile(settings, args.since))
    if args.command == "roles":
        return asyncio.run(_roles(settings, args.action, args.email, args.role, args.reason))
    return 2


if __name__ == "__main__":
    sys.exit(main())
