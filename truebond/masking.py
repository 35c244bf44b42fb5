"""Secret / PII masking for log events, by key name and by value pattern.

:func:`mask_event` is the structlog processor that :mod:`truebond.logging` runs
last before rendering; :func:`mask_text` and :func:`mask_value` mask single
strings and nested values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from functools import lru_cache
from typing import Any

from structlog.typing import EventDict, WrappedLogger

__all__ = [
    "MASK",
    "mask_event",
    "mask_fields",
    "mask_text",
    "mask_value",
]

MASK = "***"
"""Replacement for values of sensitive keys."""

_EMAIL_MASK = "***@***"
_JWT_MASK = "***jwt***"
_CARD_MASK = "****"
_PHONE_MASK = "***phone***"
_OTP_MASK = "******"
_SIGNATURE_MASK = "t=***,v1=***"
_BEARER_MASK = "Bearer ***"
_URL_CREDENTIALS_MASK = "://***:***@"

_MAX_DEPTH = 24
# Set (and overwritten) by our own processors; never carry user data.
_TRUSTED_KEYS = frozenset({"timestamp", "level", "logger"})

# --------------------------------------------------------------------------
# Key-based masking
# --------------------------------------------------------------------------

# Key (normalised to snake_case) *contains* one of these -> sensitive.
_SENSITIVE_KEY_SUBSTRINGS: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",  # also client_secret, webhook_secret
    "token",  # also access_token, refresh_token, id_token
    "authorization",
    "cookie",  # also set_cookie
    "signature",
    "api_key",
    "apikey",
    "card",
    "cvc",
    "cvv",
    "refresh",
    "email",
    "phone",
    "mobile",
    "address",
    "latitude",
    "longitude",
    "credential",
    "jwt",
)
# Key contains one of these as a whole ``_``-separated word -> sensitive.
# (Word match rather than substring so that ``company`` / ``footprint`` /
# ``translate`` are not caught by ``pan`` / ``otp`` / ``lat``.)
_SENSITIVE_KEY_WORDS: frozenset[str] = frozenset({"otp", "pan", "lat", "lng", "lon", "pin", "cvc", "cvv"})
# Key is exactly one of these -> sensitive. ``status_code`` stays readable.
_SENSITIVE_EXACT_KEYS: frozenset[str] = frozenset({"code", "otp_code", "key"})

_CAMEL_BOUNDARY_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_ALNUM_RE = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=4096)
def _is_sensitive_key(key: str) -> bool:
    """Return True if values stored under *key* must be hidden."""
    norm = _NON_ALNUM_RE.sub("_", _CAMEL_BOUNDARY_RE.sub("_", key).lower())
    norm = norm.strip("_")
    if not norm:
        return False
    if norm in _SENSITIVE_EXACT_KEYS or norm.endswith("_key"):
        return True
    if any(word in _SENSITIVE_KEY_WORDS for word in norm.split("_")):
        return True
    return any(part in norm for part in _SENSITIVE_KEY_SUBSTRINGS)


# --------------------------------------------------------------------------
# Value-pattern masking
# --------------------------------------------------------------------------

# Stripe object id / key prefixes.  Only the prefix is kept ("pi_***").
_STRIPE_LIVE_TEST_PREFIXES = r"(?:sk|rk|pk|cs)_(?:live|test)_"
_STRIPE_PREFIXES = (
    r"whsec|acct|cus|evt|seti|pi|ch|pm|re|dp|cs|py|tok|src|card|sub|txn|"
    r"po|tr|ba|si|sk|rk|pk"
)

# Value patterns.  Each is anchored with a look-behind / word boundary so the
# scan stays linear even on long base64 blobs, and each only runs when a cheap
# substring test says it could match.  The passes run in this order and the
# placeholders they produce are inert for the later passes.

# user:password@ inside URLs / DSNs (mongodb://u:p@host, redis://:p@host)
_URLCRED_RE = re.compile(r"://[^/\s:@]*:[^/\s@]+@")
# Stripe-Signature header value: t=1492774577,v1=5257a8...,v0=...
_SIGNATURE_RE = re.compile(r"\bt=\d+(?:,\s*v\d+=[A-Za-z0-9]+)+")
# Authorization: Bearer <anything token-ish>
_BEARER_RE = re.compile(r"(?i:\bbearer)\s+[A-Za-z0-9\-._~+/]+=*")
# JWT: header.payload.signature; the header always starts with eyJ
_JWT_RE = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@"
    r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
# Stripe ids / keys / client secrets (pi_X_secret_Y).  The id body must be
# >= 8 alnum chars containing a digit or capital letter, so identifiers such
# as re_authenticate / card_declined / payment_intent survive.
_STRIPE_RE = re.compile(
    r"\b(?P<prefix>" + _STRIPE_LIVE_TEST_PREFIXES + r"|(?:" + _STRIPE_PREFIXES + r")_)(?=[a-z]*[0-9A-Z])[A-Za-z0-9]{8,}(?:_[A-Za-z0-9]+)*"
)
# a 6-digit one-time code after "otp" / "code" / "passcode" / "pin"
_OTP_RE = re.compile(
    r"(?P<prefix>(?i:\b(?:otp|code|passcode|pin))(?:\s*(?i:is)\b)?[\s:=#-]*)"
    r"\d{6}(?!\d)"
)
_NUMBER_RE = re.compile(
    # E.164 phone number: +919876543210, +1 415-555-2671
    r"(?P<e164>(?<![\w+])\+[1-9](?:[ -]?\d){7,14}(?!\w))"
    # card number: 13-19 digits, bare or grouped 4-4-4-4 / 4-6-5 (Amex) /
    # 4-4-4-4-3 with one consistent space or dash separator
    r"|(?P<card>(?<![\w+.-])(?:\d{13,19}|\d{4}(?P<sep>[ -])\d{4,6}"
    r"(?P=sep)\d{4,5}(?:(?P=sep)\d{1,4})?)(?!\w))"
    # bare 10-15 digit run: phone number
    r"|(?P<digits>(?<![\w+.-])\d{10,15}(?!\w))"
)
# coordinates in a query string or form (lat=12.97&lng=77.59): never logged
_COORD_RE = re.compile(r"(?i)\b(?P<prefix>(?:lat|lng|lon|latitude|longitude)=)[^&\s\"']*")
_FOUR_DIGITS_RE = re.compile(r"\d{4}")
_SIX_DIGITS_RE = re.compile(r"\d{6}")
_SEPARATORS_RE = re.compile(r"[ -]")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _looks_like_epoch(digits: str) -> bool:
    # Unix time in s / ms / us / ns (years 2001-2033).  No card brand and no
    # valid 10- or 13-digit phone number starts with 1, so nothing is lost.
    return digits[0] == "1" and len(digits) in (10, 13, 16, 19)


def _replace_number(match: re.Match[str]) -> str:
    text = match.group()
    if match.lastgroup == "e164":
        return _PHONE_MASK
    digits = _SEPARATORS_RE.sub("", text)
    bare = digits == text
    if bare and _looks_like_epoch(digits):
        return text
    if len(digits) >= 13 and _luhn_ok(digits):
        return _CARD_MASK
    if bare and len(digits) <= 15:
        return _PHONE_MASK
    return text


def mask_text(s: str) -> str:
    """Return *s* with credentials, e-mails, JWTs, Stripe ids/secrets, card and
    phone numbers, OTPs and bearer tokens replaced by placeholders."""
    if len(s) < 6:  # too short to hold anything we mask
        return s
    if "://" in s:
        s = _URLCRED_RE.sub(_URL_CREDENTIALS_MASK, s)
    if "t=" in s:
        s = _SIGNATURE_RE.sub(_SIGNATURE_MASK, s)
    if "earer" in s or "EARER" in s:
        s = _BEARER_RE.sub(_BEARER_MASK, s)
    if "eyJ" in s:
        s = _JWT_RE.sub(_JWT_MASK, s)
    if "@" in s:
        s = _EMAIL_RE.sub(_EMAIL_MASK, s)
    if "_" in s:
        s = _STRIPE_RE.sub(r"\g<prefix>" + MASK, s)
    if "=" in s:
        s = _COORD_RE.sub(r"\g<prefix>" + MASK, s)
    if _SIX_DIGITS_RE.search(s) is not None:
        s = _OTP_RE.sub(r"\g<prefix>" + _OTP_MASK, s)
    if "+" in s or _FOUR_DIGITS_RE.search(s) is not None:
        s = _NUMBER_RE.sub(_replace_number, s)
    return s


def mask_value(value: Any, _depth: int = 0) -> Any:
    """Recursively mask *value* (dicts/lists/tuples/sets/strings).

    Containers are copied only when something inside them changed; the input
    is never mutated.
    """
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        if -1_000_000_000 < value < 1_000_000_000:
            return value
        text = str(value)
        masked = mask_text(text)
        return value if masked == text else masked
    if _depth >= _MAX_DEPTH:
        return mask_text(_safe_repr(value))
    if isinstance(value, Mapping):
        return _mask_mapping(value, _depth + 1)
    if isinstance(value, (list, tuple)):
        return _mask_sequence(value, _depth + 1)
    if isinstance(value, (set, frozenset)):
        items = [mask_value(v, _depth + 1) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items)
    # Arbitrary object (exception, bytes, dataclass, ...): renderers will use
    # repr() for it, so check that and only replace the object if needed.
    text = _safe_repr(value)
    masked = mask_text(text)
    return value if masked == text else masked


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not kill logging
        return f"<unrepresentable {type(value).__name__}>"


def _mask_item(key: object, value: Any, depth: int) -> tuple[object, Any]:
    if isinstance(key, str):
        if _is_sensitive_key(key):
            if value is None or isinstance(value, bool):
                return key, value  # cannot leak anything, keeps logs useful
            return mask_text(key), MASK
        return mask_text(key), mask_value(value, depth)
    return key, mask_value(value, depth)


def _mask_mapping(value: Mapping[Any, Any], depth: int) -> Any:
    changed = not isinstance(value, dict)  # CIMultiDict etc. -> plain dict
    out: dict[Any, Any] = {}
    for k, v in value.items():
        nk, nv = _mask_item(k, v, depth)
        if nk is not k or nv is not v:
            changed = True
        out[nk] = nv
    return out if changed else value


def _mask_sequence(value: list[Any] | tuple[Any, ...], depth: int) -> Any:
    # ("Authorization", "xyz") header pairs, e.g. list(request.headers.items())
    if len(value) == 2 and isinstance(value[0], str) and _is_sensitive_key(value[0]):
        second = value[1]
        if not (second is None or isinstance(second, bool)):
            pair = [value[0], MASK]
            return pair if isinstance(value, list) else tuple(pair)
    items = [mask_value(v, depth) for v in value]
    if all(a is b for a, b in zip(items, value, strict=True)):
        return value
    if isinstance(value, list):
        return items
    if type(value) is tuple:
        return tuple(items)
    return items  # namedtuple & co: a plain list renders fine


def mask_event(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor hiding secrets & PII by key name and by value pattern.

    Must run after ``format_exc_info`` so exception text is masked as well.
    """
    for key in list(event_dict):
        if key in _TRUSTED_KEYS:
            continue
        value = event_dict[key]
        new_key, new_value = _mask_item(key, value, 0)
        if new_key != key:
            del event_dict[key]
            event_dict[str(new_key)] = new_value
        elif new_value is not value:
            event_dict[key] = new_value
    return event_dict


def mask_fields(trusted: Collection[str]) -> Callable[[WrappedLogger, str, EventDict], EventDict]:
    """A processor masking every field but the `trusted` ones (for lines whose own fields are safe).

    The access line's fields are numbers and route templates; what is left to mask is the few
    fields that can carry client input (the request id, the method, contextvars).
    """
    trusted_keys = frozenset(trusted)

    def processor(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        # Keys are the code's own names here; only values can carry client input.
        for key, value in event_dict.items():
            if key in trusted_keys or value is None or isinstance(value, bool):
                continue
            event_dict[key] = MASK if _is_sensitive_key(key) else mask_value(value)
        return event_dict

    return processor
