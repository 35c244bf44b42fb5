"""A local stand-in for SendGrid's v3 mail send API (real HTTP), capturing what was sent."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import attrs
from aiohttp import web

from truebond.config import Settings, load_settings

API_KEY = "SG.test-key-for-the-fake"
SENDER = "no-reply@truebond.test"


@attrs.define
class SentMail:
    """One captured message."""

    to: str
    subject: str
    text: str
    sender: str


@attrs.define
class FakeSendGrid:
    """POST /v3/mail/send: 202 and the mail captured, or `fail_with` when set."""

    mails: list[SentMail] = attrs.field(factory=list)
    fail_with: int | None = None
    delay: float = 0.0
    requests: int = 0
    url: str = ""

    def app(self) -> web.Application:
        """The aiohttp application of the fake."""
        app = web.Application()
        app.router.add_post("/v3/mail/send", self._send)
        return app

    async def _send(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return web.json_response({"errors": [{"message": "unauthorized"}]}, status=401)
        if self.fail_with is not None:
            return web.json_response({"errors": [{"message": "boom"}]}, status=self.fail_with)
        body: dict[str, Any] = await request.json()
        to = body["personalizations"][0]["to"][0]["email"]
        text = next(c["value"] for c in body["content"] if c["type"] == "text/plain")
        self.mails.append(SentMail(to=to, subject=body["subject"], text=text, sender=body["from"]["email"]))
        return web.Response(status=202)

    def to(self, email: str) -> list[SentMail]:
        """The mails sent to one address, oldest first."""
        return [m for m in self.mails if m.to == email.lower()]

    def last_code(self, email: str) -> str:
        """The 6-digit code of the newest mail to `email`."""
        found = re.search(r"\b(\d{6})\b", self.to(email)[-1].text)
        assert found is not None, "no code in the mail"
        return found.group(1)

    def last_link(self, email: str) -> str:
        """The first https link of the newest mail to `email`."""
        found = re.search(r"https://\S+", self.to(email)[-1].text)
        assert found is not None, "no link in the mail"
        return found.group(0)


async def start(aiohttp_server: Any) -> FakeSendGrid:
    """Run the fake on a free local port (pytest-aiohttp's aiohttp_server fixture)."""
    fake = FakeSendGrid()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


def settings_for(redis_url: str, fake: FakeSendGrid, jwt_secret: str) -> Settings:
    """Test settings that send mail through the fake with the sendgrid adapter."""
    return load_settings(
        "test",
        {
            "REDIS_URL": redis_url,
            "JWT_SECRET": jwt_secret,
            "EMAIL_PROVIDER": "sendgrid",
            "EMAIL_API_KEY": API_KEY,
            "EMAIL_FROM": SENDER,
            "FRONTEND_URL": "https://app.truebond.test",
            "BACKEND_URL": "https://api.truebond.test",
        },
        email_api_base=fake.url,
    )
