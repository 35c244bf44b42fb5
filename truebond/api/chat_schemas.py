"""Chat payload schemas, shared by the HTTP routes and the socket events (unknown keys refused)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import voluptuous as vol

from truebond.adapters.ratelimit import Policy
from truebond.api.chat_upload import FILE_FIELDS
from truebond.api.openapi import multipart
from truebond.api.validation import query_int, strict
from truebond.commands.chat import text

# DESIGN.md "Policies": 30 messages per user per minute, over REST, uploads and sockets together.
MESSAGES_PER_MINUTE = Policy("chat_message", "30/minute")

ID = vol.All(str, vol.Length(min=1, max=64), vol.Match(r"^[A-Za-z0-9_-]+$", msg="invalid id"))
CLIENT_KEY = vol.All(str, vol.Length(min=1, max=100), vol.Match(r"^[A-Za-z0-9_.:-]+$", msg="invalid client message id"))
NO_CONTROL_BUT_NEWLINES = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


def message_text(value: Any) -> str:
    """1-2000 characters after NFKC normalisation, no control characters but newlines and tabs."""
    if not isinstance(value, str):
        raise vol.Invalid("expected a string")
    normal = text.normalise(value)
    if not normal:
        raise vol.Invalid("a message needs text")
    if len(normal) > text.MAX_TEXT:
        raise vol.Invalid(f"at most {text.MAX_TEXT} characters")
    return str(vol.Match(NO_CONTROL_BUT_NEWLINES, msg="control characters are not allowed")(normal))


MESSAGE_TYPE = vol.In(("text",), msg="only text messages are sent here; images go to /api/messages/upload")

SEND_SCHEMA = strict(
    {
        vol.Required("receiver_id"): ID,
        vol.Required("content"): message_text,
        vol.Optional("message_type"): MESSAGE_TYPE,
        vol.Optional("conversation_id"): ID,
        vol.Optional("client_message_id"): CLIENT_KEY,
        vol.Optional("temp_id"): CLIENT_KEY,
    }
)
SOCKET_SEND_SCHEMA = strict(
    {
        vol.Required("receiver_id"): ID,
        vol.Required("content"): message_text,
        vol.Optional("type"): MESSAGE_TYPE,
        vol.Optional("message_type"): MESSAGE_TYPE,
        vol.Optional("conversation_id"): ID,
        vol.Optional("client_message_id"): CLIENT_KEY,
        vol.Optional("temp_id"): CLIENT_KEY,
    }
)
UPLOAD_FIELDS = strict(
    {
        vol.Required("receiver_id"): ID,
        vol.Optional("content"): vol.Any("", message_text),
        vol.Optional("caption"): vol.Any("", message_text),
        vol.Optional("conversation_id"): ID,
        vol.Optional("client_message_id"): CLIENT_KEY,
        vol.Optional("temp_id"): CLIENT_KEY,
        vol.Optional("message_type"): vol.In(("image",)),
    }
)
UPLOAD_FORM = multipart(UPLOAD_FIELDS, FILE_FIELDS)
START_SCHEMA = strict({vol.Required("receiver_id"): ID})
CREATE_OR_GET_SCHEMA = strict({vol.Required("user_id"): ID})
USER_SCHEMA = strict({vol.Required("user_id"): ID})
TYPING_SCHEMA = strict({vol.Required("receiver_id"): ID, vol.Optional("conversation_id"): ID})
READ_SCHEMA = strict({vol.Required("sender_id"): ID, vol.Optional("conversation_id"): ID})
DELIVERED_SCHEMA = strict({vol.Required("message_id"): ID, vol.Optional("sender_id"): ID, vol.Optional("conversation_id"): ID})


def before_value(value: Any) -> Any:
    """A message id, or an ISO 8601 time (read as UTC when it names no zone)."""
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise vol.Invalid("expected a message id or a time")
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return ID(value)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


before_value.openapi = {"type": "string", "minLength": 1, "maxLength": 64, "description": "A message id or an ISO 8601 time"}  # type: ignore[attr-defined]
HISTORY_QUERY = strict({vol.Optional("limit", default=50): query_int(1, 100), vol.Optional("before"): before_value})


def client_key(body: dict[str, Any]) -> str | None:
    """The client's idempotency key: `client_message_id`, or its other name `temp_id`."""
    value = body.get("client_message_id") or body.get("temp_id")
    return str(value) if value else None
