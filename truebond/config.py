"""The environment, read once at start-up and validated for the mode the process runs in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import attrs

from truebond.errors import TrueBondError

Mode = Literal["serve", "dev", "test", "tool"]

# Exactly the variables of .env.example, in that order; nothing else is ever read.
VARIABLES: tuple[str, ...] = (
    "MONGO_URL",
    "REDIS_URL",
    "JWT_SECRET",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "EMAIL_PROVIDER",
    "EMAIL_API_KEY",
    "EMAIL_FROM",
    "CLOUD_STORAGE_PROVIDER",
    "CLOUD_STORAGE_KEY",
    "CLOUD_STORAGE_SECRET",
    "CLOUD_STORAGE_BUCKET",
    "FRONTEND_URL",
    "BACKEND_URL",
)

# Embedded defaults for `truebond dev` only. `mongomock://` selects the in-memory MongoDB and
# `embedded://` an in-process Redis; neither is accepted by `serve`.
DEV_DEFAULTS: Mapping[str, str] = {
    "MONGO_URL": "mongomock://truebond",
    "REDIS_URL": "embedded://",
    "JWT_SECRET": "dev-only-jwt-secret-0123456789abcdef-not-for-production",
    "STRIPE_SECRET_KEY": "sk_test_dev_placeholder",
    "STRIPE_WEBHOOK_SECRET": "whsec_dev_placeholder",
    "EMAIL_PROVIDER": "console",
    "EMAIL_API_KEY": "",
    "EMAIL_FROM": "no-reply@truebond.local",
    "CLOUD_STORAGE_PROVIDER": "local",
    "CLOUD_STORAGE_KEY": "",
    "CLOUD_STORAGE_SECRET": "",
    "CLOUD_STORAGE_BUCKET": "truebond-dev",
    # The web client's vite dev server; BACKEND_URL follows --host/--port (`dev_backend_url`).
    "FRONTEND_URL": "http://localhost:5000",
    "BACKEND_URL": "http://localhost:8000",
}

MIN_JWT_SECRET_BYTES = 32


class ConfigError(TrueBondError):
    """A setting is missing or too weak; the message names the variable, never its value."""


@attrs.frozen
class Settings:
    """Validated configuration of one process."""

    mode: Mode
    mongo_url: str
    redis_url: str
    jwt_secret: str = attrs.field(repr=False)
    stripe_secret_key: str = attrs.field(repr=False)
    stripe_webhook_secret: str = attrs.field(repr=False)
    email_provider: str
    email_api_key: str = attrs.field(repr=False)
    email_from: str
    cloud_storage_provider: str
    cloud_storage_key: str = attrs.field(repr=False)
    cloud_storage_secret: str = attrs.field(repr=False)
    cloud_storage_bucket: str
    frontend_url: str
    backend_url: str
    stripe_api_base: str | None = None
    email_api_base: str | None = None
    storage_endpoint: str | None = None
    trusted_proxy_hops: int = 0
    # `truebond dev --admin EMAIL[:ROLE]` (dev only): (normalised email, role) pairs granted at start and signup.
    dev_admins: tuple[tuple[str, str], ...] = ()

    @property
    def frontend_origin(self) -> str:
        """The scheme://host[:port] of FRONTEND_URL, the only origin CORS allows."""
        parts = urlsplit(self.frontend_url)
        return f"{parts.scheme}://{parts.netloc}"

    def describe(self) -> dict[str, str]:
        """What the process uses, without any secret value (for the start-up log line)."""
        return {
            "mode": self.mode,
            "mongo": "in-memory (mongomock)" if self.mongo_url.startswith("mongomock://") else "mongodb",
            "redis": "in-process" if self.redis_url.startswith("embedded://") else "redis",
            "mailer": self.email_provider,
            "storage": self.cloud_storage_provider,
            "frontend_url": self.frontend_url,
            "backend_url": self.backend_url,
        }


def _https(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme == "https" and bool(parts.netloc)


def _check_serve(values: Mapping[str, str]) -> None:
    for name in VARIABLES:
        if not values.get(name, "").strip():
            raise ConfigError(f"{name} is required")
    if len(values["JWT_SECRET"].encode()) < MIN_JWT_SECRET_BYTES:
        raise ConfigError(f"JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes")
    for name in ("FRONTEND_URL", "BACKEND_URL"):
        if not _https(values[name]):
            raise ConfigError(f"{name} must be an https URL")
    if values["EMAIL_PROVIDER"] != "sendgrid":
        raise ConfigError("EMAIL_PROVIDER must be sendgrid in serve mode")
    if values["CLOUD_STORAGE_PROVIDER"] != "s3":
        raise ConfigError("CLOUD_STORAGE_PROVIDER must be s3 in serve mode")
    if values["MONGO_URL"].startswith("mongomock://"):
        raise ConfigError("MONGO_URL must point at a MongoDB server")
    if values["REDIS_URL"].startswith("embedded://"):
        raise ConfigError("REDIS_URL must point at a Redis server")
    if not values["STRIPE_WEBHOOK_SECRET"].startswith("whsec_"):
        raise ConfigError("STRIPE_WEBHOOK_SECRET must be a Stripe webhook signing secret")


def _check_any(values: Mapping[str, str]) -> None:
    if values["EMAIL_PROVIDER"] not in ("sendgrid", "console"):
        raise ConfigError("EMAIL_PROVIDER must be sendgrid or console")
    if values["CLOUD_STORAGE_PROVIDER"] not in ("s3", "local"):
        raise ConfigError("CLOUD_STORAGE_PROVIDER must be s3 or local")
    if len(values["JWT_SECRET"].encode()) < MIN_JWT_SECRET_BYTES:
        raise ConfigError(f"JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes")


def read_dotenv(path: Path) -> dict[str, str]:
    """The known variables of a .env file (others are ignored, never exported)."""
    from dotenv import dotenv_values

    if not path.is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if k in VARIABLES and v is not None}


def load_settings(
    mode: Mode,
    environ: Mapping[str, str] | None = None,
    *,
    dotenv_path: Path | None = None,
    stripe_api_base: str | None = None,
    email_api_base: str | None = None,
    storage_endpoint: str | None = None,
    trusted_proxy_hops: int = 0,
    dev_backend_url: str | None = None,
) -> Settings:
    """Build Settings for `mode`; `serve` refuses missing or weak values, `dev` fills defaults.

    `dev_backend_url` (dev: the address it listens on) replaces the default BACKEND_URL; a value
    from `.env` or the environment still wins.
    """
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    if mode in ("dev", "test"):
        values.update(DEV_DEFAULTS)
        if dev_backend_url:
            values["BACKEND_URL"] = dev_backend_url
    if dotenv_path is not None and mode != "serve":
        values.update({k: v for k, v in read_dotenv(dotenv_path).items() if v})
    values.update({k: env[k] for k in VARIABLES if env.get(k)})
    if mode == "serve":
        _check_serve(values)
    elif mode == "tool":
        # Operator commands (project, replay, verify, indexes, roles) need only the stores.
        for name in ("MONGO_URL", "REDIS_URL"):
            if not values.get(name):
                raise ConfigError(f"{name} is required")
        for name in VARIABLES:
            values.setdefault(name, "")
    else:
        _check_any(values)
    return Settings(
        mode=mode,
        mongo_url=values["MONGO_URL"],
        redis_url=values["REDIS_URL"],
        jwt_secret=values["JWT_SECRET"],
        stripe_secret_key=values["STRIPE_SECRET_KEY"],
        stripe_webhook_secret=values["STRIPE_WEBHOOK_SECRET"],
        email_provider=values["EMAIL_PROVIDER"],
        email_api_key=values["EMAIL_API_KEY"],
        email_from=values["EMAIL_FROM"],
        cloud_storage_provider=values["CLOUD_STORAGE_PROVIDER"],
        cloud_storage_key=values["CLOUD_STORAGE_KEY"],
        cloud_storage_secret=values["CLOUD_STORAGE_SECRET"],
        cloud_storage_bucket=values["CLOUD_STORAGE_BUCKET"],
        frontend_url=values["FRONTEND_URL"].rstrip("/"),
        backend_url=values["BACKEND_URL"].rstrip("/"),
        stripe_api_base=stripe_api_base,
        email_api_base=email_api_base,
        storage_endpoint=storage_endpoint,
        trusted_proxy_hops=max(0, trusted_proxy_hops),
    )
