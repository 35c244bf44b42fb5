"""Outgoing email: SendGrid's v3 mail send API, or the console in dev mode only."""

from __future__ import annotations

import sys
from typing import Protocol

import aiohttp
import attrs

from truebond.config import Settings
from truebond.errors import InfrastructureError
from truebond.logging import get_logger

log = get_logger(__name__)

SENDGRID_API = "https://api.sendgrid.com"
SEND_TIMEOUT_SECONDS = 10.0


class EmailFailed(InfrastructureError):
    """The provider did not accept the message (or could not be reached)."""


@attrs.frozen
class Mail:
    """One plain-text message to one recipient."""

    to: str
    subject: str
    text: str = attrs.field(repr=False)


class EmailSender(Protocol):
    """Something that delivers a Mail or raises EmailFailed."""

    async def send(self, mail: Mail) -> None:
        """Deliver `mail`; raise EmailFailed when it was not accepted."""
        ...

    async def close(self) -> None:
        """Release network resources."""
        ...


class SendGridEmail:
    """POST {base}/v3/mail/send with a Bearer API key; 2xx means accepted."""

    def __init__(self, api_key: str, sender: str, base_url: str | None = None) -> None:
        self._api_key = api_key
        self._sender = sender
        self._url = (base_url or SENDGRID_API).rstrip("/") + "/v3/mail/send"
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT_SECONDS))
        return self._session

    async def send(self, mail: Mail) -> None:
        """Hand the message to SendGrid; any non-2xx answer or network error is EmailFailed."""
        payload = {
            "personalizations": [{"to": [{"email": mail.to}]}],
            "from": {"email": self._sender},
            "subject": mail.subject,
            "content": [{"type": "text/plain", "value": mail.text}],
        }
        headers = {"Authorization": f"Bearer {self._api_key}", "Content-Type": "application/json"}
        try:
            async with self._client().post(self._url, json=payload, headers=headers) as resp:
                status = resp.status
                await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("email.send_failed", provider="sendgrid", cause=type(exc).__name__)
            raise EmailFailed("email provider unreachable") from None
        if not 200 <= status < 300:
            log.warning("email.send_failed", provider="sendgrid", status=status)
            raise EmailFailed(f"email provider answered {status}")
        log.info("email.sent", provider="sendgrid", status=status)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


class ConsoleEmail:
    """Dev only: writes the whole message (codes and links included) to stderr.

    The structured log would mask the code, so the message goes to stderr directly, marked.
    """

    async def send(self, mail: Mail) -> None:
        """Write the message to stderr with a DEV ONLY marker."""
        sys.stderr.write(
            f"\n===== DEV ONLY: email not sent, shown here =====\nTo: {mail.to}\nSubject: {mail.subject}\n\n{mail.text}\n=====\n"
        )
        sys.stderr.flush()
        log.info("email.printed", provider="console")

    async def close(self) -> None:
        """Nothing to release."""


class NoEmail:
    """Operator commands send no mail: every send fails (so a caller answers 503, never drops it)."""

    async def send(self, mail: Mail) -> None:
        """Refuse."""
        raise EmailFailed("this process sends no email")

    async def close(self) -> None:
        """Nothing to release."""


def build_email_sender(settings: Settings) -> EmailSender:
    """The sender EMAIL_PROVIDER names; the console one is refused outside dev and tests."""
    if settings.email_provider == "sendgrid":
        return SendGridEmail(settings.email_api_key, settings.email_from, settings.email_api_base)
    if settings.email_provider == "console" and settings.mode in ("dev", "test"):
        return ConsoleEmail()
    if settings.mode == "tool":
        return NoEmail()
    raise ValueError("EMAIL_PROVIDER must be sendgrid outside dev mode")
