"""Shared fixtures: a private redis-server, MongoDB (mongomock or real), the app over real HTTP.

Fixtures only; the plain helpers and constants they and the tests use live in tests/support/.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from tests.support import conformance, mongo_parity
from tests.support.network import free_port
from tests.support.secrets import TEST_JWT_SECRET, WEBHOOK_SECRET
from truebond import bootstrap
from truebond.clock import OffsetClock
from truebond.config import Settings, load_settings
from truebond.logging import configure_logging


@pytest.fixture(scope="session", autouse=True)
def masked_logging() -> None:
    """Logs go through the masking processor in every run, even of a single test file."""
    configure_logging(json=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A private redis-server on a free port for the whole run (or TRUEBOND_TEST_REDIS_URL)."""
    url = os.environ.get("TRUEBOND_TEST_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.exit("redis-server is not installed (make test installs it)", returncode=3)
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--databases", "16"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The private Redis, emptied before each test."""
    redis.Redis.from_url(redis_server).flushdb()
    return redis_server


@pytest.fixture(autouse=True)
def mongo_rules() -> Iterator[mongo_parity.Checker]:
    """Every Mongo call of every test is checked for what a real MongoDB 7 would refuse."""
    yield from mongo_parity.checked_calls()


@pytest.fixture
async def db() -> AsyncIterator[Any]:
    """A fresh database: real MongoDB when TRUEBOND_TEST_MONGO_URL is set, else mongomock.

    The real one is opened by the service's own `mongo_database` (same client options); both
    return timezone-aware UTC datetimes, as that client does (tz_aware=True).
    """
    url = os.environ.get("TRUEBOND_TEST_MONGO_URL")
    if url:
        name = f"truebond_test_{uuid.uuid4().hex[:12]}"
        parts = urlsplit(url)
        database = bootstrap.mongo_database(urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment)))
        yield database
        await database.client.drop_database(name)
        database.client.close()
    else:
        from mongomock_motor import AsyncMongoMockClient

        yield AsyncMongoMockClient(tz_aware=True)["truebond_test"]


@pytest.fixture
def clock() -> OffsetClock:
    """Real time that a test can move forward."""
    return OffsetClock()


@pytest.fixture
def settings(redis_url: str) -> Settings:
    """Test settings: the private Redis, a strong JWT secret, the test webhook secret."""
    return load_settings(
        "test",
        {
            "REDIS_URL": redis_url,
            "JWT_SECRET": TEST_JWT_SECRET,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "FRONTEND_URL": "https://app.truebond.test",
            "BACKEND_URL": "https://api.truebond.test",
        },
    )


@pytest.fixture
async def runtime(settings: Settings, db: Any, clock: OffsetClock) -> AsyncIterator[bootstrap.Runtime]:
    """The assembled service with its indexes."""
    rt = await bootstrap.build(settings, db=db, clock=clock, fast_hashing=True)
    await bootstrap.ensure_indexes(rt.unit)
    yield rt
    await rt.close()


@pytest.fixture
async def aiohttp_client(aiohttp_client: Any) -> AsyncIterator[Any]:
    """pytest-aiohttp's factory, with every answer of the served app checked against its OpenAPI
    document (tests/support/conformance.py): an undeclared status or shape fails the test."""
    failures: list[str] = []

    async def make(app: Any, **kwargs: Any) -> Any:
        conformance.attach(app, failures)
        return await aiohttp_client(app, **kwargs)

    yield make
    assert not failures, "answers the OpenAPI document lacks:\n" + "\n".join(dict.fromkeys(failures))


@pytest.fixture
async def client(runtime: bootstrap.Runtime, aiohttp_client: Any) -> Any:
    """An HTTP client talking to the app on a real local port."""
    return await aiohttp_client(bootstrap.web_app(runtime))


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Capture the JSON log lines written during a test."""
    buffer = io.StringIO()
    configure_logging(json=True, stream=buffer)
    yield buffer
    configure_logging(json=True)
