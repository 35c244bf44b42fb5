"""truebond.config.load_settings: what `serve` refuses, what `dev` fills in, and that secrets stay hidden."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from truebond.config import DEV_DEFAULTS, MIN_JWT_SECRET_BYTES, VARIABLES, ConfigError, Settings, load_settings

# Distinctive values: none of them may ever show up in an error message or a repr.
STRONG_ENV: dict[str, str] = {
    "MONGO_URL": "mongodb://mongo-user:MongoPassw0rdXYZ@db.internal:27017/truebond",
    "REDIS_URL": "redis://:RedisPassw0rdXYZ@cache.internal:6379/0",
    "JWT_SECRET": "jwt-secret-Qm9xZWQtdmFsdWUtZm9yLXRlc3Rz-0123456789",
    "STRIPE_SECRET_KEY": "sk_live_StripeSecretKeyXYZ0123456789",
    "STRIPE_WEBHOOK_SECRET": "whsec_WebhookSecretXYZ0123456789abcdef",
    "EMAIL_PROVIDER": "sendgrid",
    "EMAIL_API_KEY": "SG.EmailApiKeyXYZ.0123456789abcdef",
    "EMAIL_FROM": "hello@truebond.example",
    "CLOUD_STORAGE_PROVIDER": "s3",
    "CLOUD_STORAGE_KEY": "AKIASTORAGEKEYXYZ0123",
    "CLOUD_STORAGE_SECRET": "StorageSecretXYZ/0123456789abcdefABCDEF",
    "CLOUD_STORAGE_BUCKET": "truebond-media-prod",
    "FRONTEND_URL": "https://app.truebond.example/",
    "BACKEND_URL": "https://api.truebond.example",
}

SECRET_FIELDS = ("JWT_SECRET", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "EMAIL_API_KEY", "CLOUD_STORAGE_KEY", "CLOUD_STORAGE_SECRET")
SECRET_VALUES = [STRONG_ENV[name] for name in SECRET_FIELDS] + ["MongoPassw0rdXYZ", "RedisPassw0rdXYZ"]


def env_with(**changes: str | None) -> dict[str, str]:
    """The strong environment with some values replaced (None removes the variable)."""
    env = dict(STRONG_ENV)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def refusal(env: dict[str, str]) -> str:
    """The message of the ConfigError `serve` raises for env; it must contain no value of env."""
    with pytest.raises(ConfigError) as info:
        load_settings("serve", env)
    message = str(info.value)
    for name, value in env.items():
        if len(value) >= 6 and value not in VARIABLES and value not in ("sendgrid", "console"):
            assert value not in message, f"the error message shows the value of {name}"
    return message


def test_the_fourteen_variables() -> None:
    assert len(VARIABLES) == 14
    assert set(STRONG_ENV) == set(VARIABLES)
    assert set(DEV_DEFAULTS) == set(VARIABLES)


# --------------------------------------------------------------------------- serve


def test_serve_accepts_a_complete_strong_environment() -> None:
    settings = load_settings("serve", STRONG_ENV)
    assert settings.mode == "serve"
    assert settings.mongo_url == STRONG_ENV["MONGO_URL"]
    assert settings.redis_url == STRONG_ENV["REDIS_URL"]
    assert settings.jwt_secret == STRONG_ENV["JWT_SECRET"]
    assert settings.stripe_webhook_secret == STRONG_ENV["STRIPE_WEBHOOK_SECRET"]
    assert settings.email_provider == "sendgrid"
    assert settings.cloud_storage_provider == "s3"
    assert settings.frontend_url == "https://app.truebond.example"
    assert settings.frontend_origin == "https://app.truebond.example"
    assert settings.backend_url == "https://api.truebond.example"


@pytest.mark.parametrize("name", VARIABLES)
def test_serve_refuses_a_missing_variable_and_names_it(name: str) -> None:
    message = refusal(env_with(**{name: None}))
    assert name in message


@pytest.mark.parametrize("name", ["JWT_SECRET", "EMAIL_API_KEY", "FRONTEND_URL"])
def test_serve_treats_an_empty_value_as_missing(name: str) -> None:
    assert name in refusal(env_with(**{name: ""}))
    assert name in refusal(env_with(**{name: "   "}))


def test_serve_refuses_a_jwt_secret_of_31_bytes() -> None:
    short = "s3cr3t-ShortJwtSecretValue-31by"
    assert len(short.encode()) == MIN_JWT_SECRET_BYTES - 1 == 31
    message = refusal(env_with(JWT_SECRET=short))
    assert "JWT_SECRET" in message
    assert short not in message


def test_serve_accepts_a_jwt_secret_of_32_bytes() -> None:
    assert load_settings("serve", env_with(JWT_SECRET="k" * 32)).jwt_secret == "k" * 32


def test_serve_counts_jwt_secret_length_in_bytes() -> None:
    # 16 characters, 32 bytes in UTF-8.
    assert load_settings("serve", env_with(JWT_SECRET="é" * 16)).jwt_secret == "é" * 16


@pytest.mark.parametrize("name", ["FRONTEND_URL", "BACKEND_URL"])
@pytest.mark.parametrize("value", ["http://insecure.truebond.example", "app.truebond.example", "https://", "ftp://files.example"])
def test_serve_refuses_a_non_https_url(name: str, value: str) -> None:
    assert name in refusal(env_with(**{name: value}))


def test_serve_refuses_console_email() -> None:
    assert "EMAIL_PROVIDER" in refusal(env_with(EMAIL_PROVIDER="console"))


def test_serve_refuses_local_storage() -> None:
    assert "CLOUD_STORAGE_PROVIDER" in refusal(env_with(CLOUD_STORAGE_PROVIDER="local"))


def test_serve_refuses_in_memory_mongo_and_embedded_redis() -> None:
    assert "MONGO_URL" in refusal(env_with(MONGO_URL="mongomock://truebond"))
    assert "REDIS_URL" in refusal(env_with(REDIS_URL="embedded://"))


def test_serve_refuses_a_webhook_secret_that_is_not_whsec() -> None:
    assert "STRIPE_WEBHOOK_SECRET" in refusal(env_with(STRIPE_WEBHOOK_SECRET="not-a-WebhookSecretXYZ0123456789"))


def test_serve_never_reads_a_dotenv_file(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"JWT_SECRET={STRONG_ENV['JWT_SECRET']}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        load_settings("serve", env_with(JWT_SECRET=None), dotenv_path=dotenv)


# --------------------------------------------------------------------------- dev


def test_dev_fills_embedded_defaults() -> None:
    settings = load_settings("dev", {})
    assert settings.mode == "dev"
    assert settings.mongo_url.startswith("mongomock://")
    assert settings.redis_url.startswith("embedded://")
    assert settings.email_provider == "console"
    assert settings.cloud_storage_provider == "local"
    assert len(settings.jwt_secret.encode()) >= MIN_JWT_SECRET_BYTES
    described = settings.describe()
    assert described["mongo"] == "in-memory (mongomock)"
    assert described["redis"] == "in-process"


def test_dev_reads_known_variables_of_a_dotenv_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRUEBOND_UNKNOWN_DOTENV_VARIABLE", raising=False)
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# local overrides\n"
        "MONGO_URL=mongodb://localhost:27017/truebond_dev\n"
        "FRONTEND_URL=http://localhost:5173\n"
        "TRUEBOND_UNKNOWN_DOTENV_VARIABLE=should-be-ignored\n",
        encoding="utf-8",
    )
    settings = load_settings("dev", {}, dotenv_path=dotenv)
    assert settings.mongo_url == "mongodb://localhost:27017/truebond_dev"
    assert settings.frontend_url == "http://localhost:5173"
    assert settings.redis_url == DEV_DEFAULTS["REDIS_URL"]
    assert "TRUEBOND_UNKNOWN_DOTENV_VARIABLE" not in os.environ
    assert os.environ.get("MONGO_URL") != "mongodb://localhost:27017/truebond_dev"


def test_dev_environment_overrides_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("MONGO_URL=mongodb://from-dotenv/truebond\nEMAIL_FROM=dotenv@truebond.example\n", encoding="utf-8")
    settings = load_settings("dev", {"MONGO_URL": "mongodb://from-environment/truebond"}, dotenv_path=dotenv)
    assert settings.mongo_url == "mongodb://from-environment/truebond"
    assert settings.email_from == "dotenv@truebond.example"


def test_dev_without_a_dotenv_file(tmp_path: Path) -> None:
    settings = load_settings("dev", {}, dotenv_path=tmp_path / "absent.env")
    assert settings.mongo_url == DEV_DEFAULTS["MONGO_URL"]


def test_dev_still_refuses_a_short_jwt_secret() -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        load_settings("dev", {"JWT_SECRET": "short-Secret-Value"})


def test_dev_refuses_an_unknown_email_provider() -> None:
    with pytest.raises(ConfigError, match="EMAIL_PROVIDER"):
        load_settings("dev", {"EMAIL_PROVIDER": "carrier-pigeon"})


def test_tool_mode_needs_only_the_stores() -> None:
    settings = load_settings("tool", {"MONGO_URL": "mongodb://localhost/truebond", "REDIS_URL": "redis://localhost:6379/0"})
    assert settings.mode == "tool"
    with pytest.raises(ConfigError, match="REDIS_URL"):
        load_settings("tool", {"MONGO_URL": "mongodb://localhost/truebond"})


def test_base_url_flags_are_kept() -> None:
    settings = load_settings(
        "dev",
        {},
        stripe_api_base="http://127.0.0.1:12111",
        email_api_base="http://127.0.0.1:12112",
        storage_endpoint="http://127.0.0.1:9000",
    )
    assert settings.stripe_api_base == "http://127.0.0.1:12111"
    assert settings.email_api_base == "http://127.0.0.1:12112"
    assert settings.storage_endpoint == "http://127.0.0.1:9000"


# --------------------------------------------------------------------------- secrets


def test_settings_repr_hides_secrets() -> None:
    settings = load_settings("serve", STRONG_ENV)
    text = repr(settings) + str(settings)
    for name in SECRET_FIELDS:
        assert STRONG_ENV[name] not in text, f"{name} shows in repr(Settings)"
    for field in ("jwt_secret", "stripe_secret_key", "stripe_webhook_secret", "email_api_key", "cloud_storage_secret"):
        assert field not in text
    assert "app.truebond.example" in text  # the repr still says something useful


def test_describe_shows_no_secret() -> None:
    described = str(load_settings("serve", STRONG_ENV).describe())
    for value in SECRET_VALUES:
        assert value not in described


def test_settings_are_frozen() -> None:
    settings = load_settings("serve", STRONG_ENV)
    with pytest.raises(AttributeError):
        settings.jwt_secret = "x" * 40  # type: ignore[misc]
    assert isinstance(settings, Settings)


def test_serve_command_refuses_a_missing_jwt_secret(tmp_path: Path) -> None:
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "SYSTEMROOT") if key in os.environ}
    env.update(env_with(JWT_SECRET=None))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "truebond", "serve", "--port", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert elapsed < 30, f"serve took {elapsed:.1f}s to refuse"
    assert "JWT_SECRET" in output
    for value in SECRET_VALUES:
        assert value not in output, "serve printed a secret value"
    # serve logs one JSON object per line; the refusal is one of them, naming the variable.
    records = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    refusal_lines = [r for r in records if r.get("event") == "config.invalid"]
    assert len(refusal_lines) == 1, result.stderr
    assert refusal_lines[0]["level"] == "error" and "JWT_SECRET" in refusal_lines[0]["problem"]
