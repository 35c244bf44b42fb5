"""What the OTP, account-safety and socket tests share: mail through the fake SendGrid, helpers.

A test module that needs mail binds the two fixtures at module level, which makes that module's
`settings` send mail with the real `sendgrid` adapter to the fake, over HTTP:

    mail = otp_support.mail
    settings = otp_support.settings
"""

from __future__ import annotations

import socket
import uuid
from typing import Any

import pytest

from tests.fakes import sendgrid
from tests.fakes.sendgrid import FakeSendGrid
from tests.support.secrets import TEST_JWT_SECRET
from truebond import bootstrap
from truebond.commands.identity import digest
from truebond.config import Settings


@pytest.fixture
async def mail(aiohttp_server: Any) -> FakeSendGrid:
    """The fake SendGrid the service mails through."""
    return await sendgrid.start(aiohttp_server)


@pytest.fixture
def settings(redis_url: str, mail: FakeSendGrid) -> Settings:
    """Test settings with the sendgrid adapter pointed at the fake."""
    return sendgrid.settings_for(redis_url, mail, TEST_JWT_SECRET)


def wrong(code: str) -> str:
    """A code that is certainly not `code`."""
    return f"{(int(code) + 1) % 10**6:06d}"


def unknown_email() -> str:
    """An address no account uses."""
    return f"nobody{uuid.uuid4().hex[:10]}@example.com"


def closed_port_url() -> str:
    """A redis:// URL where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


async def otp_events(runtime: bootstrap.Runtime, email: str) -> list[str]:
    """The event types on an email's OTP stream, in order."""
    return [rec.type for rec in await runtime.unit.store.load(f"otp-{digest(email)}")]
