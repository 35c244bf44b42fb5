"""Tests for truebond.logging (configuration, rendering) and truebond.masking (secret masking)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from truebond.logging import configure_logging, get_logger
from truebond.masking import mask_event, mask_text, mask_value

# --------------------------------------------------------------------------
# Test data
# --------------------------------------------------------------------------

REQUEST_ID = "3f2b8c9d4e5a4b6c8d7e9f0a1b2c3d4e"  # uuid4().hex

EMAIL = "alice.smith+dating@example.com"
EMAIL_2 = "bob_99@mail.example.co.in"
PHONE_E164 = "+919876543210"
PHONE_BARE = "9876543211"
CARD_SPACED = "4242 4242 4242 4242"
CARD_BARE = "5555555555554444"
CARD_DASHED = "4000-0566-5566-5556"
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI2NTRhYmMiLCJleHAiOjE3MDAwMDAwMDB9.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
STRIPE_SK_LIVE = "sk_live_51HxYzAbCdEfGh1234567890"
STRIPE_SK_TEST = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
STRIPE_RK = "rk_live_51HxYzRestricted123"
STRIPE_PK = "pk_test_TYooMQauvdEDq54NiTphI7jx"
STRIPE_WHSEC = "whsec_5f3a9b2c7d1e4f6a8b0c2d4e6f8a0b1c"
STRIPE_PI = "pi_3MtwBwLkdIwHu7ix28a3tqPa"
STRIPE_PI_SECRET = "pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_YrKJUKribcBjcG8HVhfZluoGH"
STRIPE_CH = "ch_3MmlLrLkdIwHu7ix0snN0B15"
STRIPE_CUS = "cus_NffrFeUfNV2Hib"
STRIPE_EVT = "evt_1NG8Du2eZvKYlo2CUI79vXWy"
STRIPE_SETI = "seti_1Mm8s8LkdIwHu7ixrsY4Nw0E"
STRIPE_PM = "pm_1MqLiJLkdIwHu7ixUEgbFdYF"
STRIPE_RE = "re_3MtwBwLkdIwHu7ix0f4cJ1rg"
STRIPE_DP = "dp_1MtwBwLkdIwHu7ixAbCdEfGh"
STRIPE_CS = "cs_test_a1B2c3D4e5F6g7H8i9J0"
STRIPE_PY = "py_3MtwBwLkdIwHu7ix1q2w3e4r"
STRIPE_SIG = (
    "t=1492774577,"
    "v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,"
    "v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
)
BEARER_VALUE = "opaqueAccessToken_7f3k2LmQ9"
OTP = "482913"
PASSWORD = "hunter2-Sup3rSecret!"
API_KEY = "AKIAIOSFODNN7EXAMPLEKEY"
COOKIE = "sessionid=zq8rbrUmWQ3kHl0cSessionCookie"
REFRESH_TOKEN = "rt-8d7f6e5d4c3b2a1-refresh-value"
ADDRESS = "221B Baker Street, London"
DB_PASSWORD = "mongoPassw0rdXYZ"

# Raw secrets that must never appear anywhere in the rendered output.
RAW_SECRETS = [
    EMAIL,
    EMAIL_2,
    "alice.smith",
    "example.com",
    PHONE_E164,
    "9876543210",
    PHONE_BARE,
    CARD_SPACED,
    CARD_BARE,
    CARD_DASHED,
    "4242424242424242",
    JWT,
    JWT.split(".")[0],
    JWT.split(".")[2],
    STRIPE_SK_LIVE,
    STRIPE_SK_TEST,
    STRIPE_RK,
    STRIPE_PK,
    STRIPE_WHSEC,
    STRIPE_PI,
    STRIPE_PI_SECRET,
    "YrKJUKribcBjcG8HVhfZluoGH",
    "3MtwBwLkdIwHu7ix",
    STRIPE_CH,
    STRIPE_CUS,
    STRIPE_EVT,
    STRIPE_SETI,
    STRIPE_PM,
    STRIPE_RE,
    STRIPE_DP,
    STRIPE_CS,
    STRIPE_PY,
    STRIPE_SIG,
    "1492774577",
    "5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd",
    BEARER_VALUE,
    PASSWORD,
    API_KEY,
    COOKIE,
    "zq8rbrUmWQ3kHl0c",
    REFRESH_TOKEN,
    ADDRESS,
    "Baker Street",
    DB_PASSWORD,
]

# Harmless values that must survive unchanged.
OBJECT_ID = "507f1f77bcf86cd799439011"
ISO_TS = "2024-11-26T00:43:12.123456+00:00"
UUID_DASHED = "123e4567-e89b-12d3-a456-426614174000"  # last group all digits
HTTP_PATH = "/api/auth/login"
EVENT_TYPE = "payment_intent.succeeded"
EPOCH = 1732579200


# --------------------------------------------------------------------------
# Fixtures / helpers
# --------------------------------------------------------------------------


def _reset_logging() -> None:
    structlog.contextvars.clear_contextvars()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_truebond_log_handler", False):
            root.removeHandler(handler)
    structlog.reset_defaults()


@pytest.fixture
def json_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    old_level = logging.getLogger().level
    configure_logging(json=True, level="DEBUG", stream=stream)
    structlog.contextvars.bind_contextvars(request_id=REQUEST_ID)
    yield stream
    _reset_logging()
    logging.getLogger().setLevel(old_level)


@pytest.fixture
def console_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    old_level = logging.getLogger().level
    configure_logging(json=False, level="DEBUG", stream=stream)
    structlog.contextvars.bind_contextvars(request_id=REQUEST_ID)
    yield stream
    _reset_logging()
    logging.getLogger().setLevel(old_level)


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    """Parse every output line as JSON; every line must carry request_id."""
    lines = [line for line in stream.getvalue().splitlines() if line.strip()]
    assert lines, "nothing was logged"
    records = []
    for line in lines:
        record = json.loads(line)
        assert isinstance(record, dict)
        assert record.get("request_id") == REQUEST_ID, line
        assert "timestamp" in record and "level" in record
        records.append(record)
    return records


def _by_event(records: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    matches = [r for r in records if str(r.get("event", "")).startswith(prefix)]
    assert len(matches) == 1, (prefix, records)
    return matches[0]


def _assert_no_raw_secrets(text: str) -> None:
    leaked = [secret for secret in RAW_SECRETS if secret in text]
    assert not leaked, f"raw secrets leaked into log output: {leaked}\n{text}"


def _log_everything(log: structlog.stdlib.BoundLogger) -> None:
    """Emit events containing every kind of secret, as keys and in text."""
    log.info(
        "user.signup",
        password=PASSWORD,
        userPassword=PASSWORD,
        passwd=PASSWORD,
        email=EMAIL,
        phone=PHONE_E164,
        mobile_number=PHONE_BARE,
        otp=OTP,
        otp_code=OTP,
        code=OTP,
        api_key=API_KEY,
        apikey=API_KEY,
        key=API_KEY,
        stripe_secret_key=STRIPE_SK_LIVE,
        client_secret=STRIPE_PI_SECRET,
        refresh_token=REFRESH_TOKEN,
        access_token=JWT,
        card_number=CARD_SPACED,
        cvc="737",
        cvv="737",
        pan=CARD_BARE,
        address=ADDRESS,
        lat=12.971599,
        lng=77.594566,
        latitude=12.971599,
        longitude=77.594566,
        signature=STRIPE_SIG,
        cookie=COOKIE,
        authorization=f"Bearer {BEARER_VALUE}",
        status_code=201,
        email_verified=True,
        headers={
            "Authorization": f"Bearer {BEARER_VALUE}",
            "Cookie": COOKIE,
            "Stripe-Signature": STRIPE_SIG,
            "X-Api-Key": API_KEY,
            "Accept": "application/json",
        },
        profile={
            "name": "Alice",
            "age": 29,
            "contact": {"email": EMAIL, "phone": PHONE_E164},
            "location": {"lat": 12.971599, "lng": 77.594566, "city": "Bengaluru"},
            "cards": [{"number": CARD_BARE}],
        },
        history=[
            {"token": JWT, "kind": "login"},
            ("secret", STRIPE_WHSEC),
            ["note mentioning", EMAIL_2],
        ],
    )
    log.info(f"login attempt by {EMAIL} from {PHONE_E164}")
    log.info(f"sms to {PHONE_BARE}: your otp {OTP}")
    log.info(f"verification code: {OTP}")
    log.info(f"card {CARD_SPACED} / {CARD_BARE} / {CARD_DASHED} declined")
    log.info(f"jwt issued {JWT}")
    log.info(f"Authorization: Bearer {BEARER_VALUE}")
    log.info(f"stripe keys {STRIPE_SK_LIVE} {STRIPE_SK_TEST} {STRIPE_RK} {STRIPE_PK}")
    log.info(f"webhook secret {STRIPE_WHSEC} header Stripe-Signature: {STRIPE_SIG}")
    log.info(f"client secret {STRIPE_PI_SECRET} for intent {STRIPE_PI}")
    log.info(
        "stripe objects",
        note=(f"{STRIPE_CH} {STRIPE_CUS} {STRIPE_EVT} {STRIPE_SETI} {STRIPE_PM} {STRIPE_RE} {STRIPE_DP} {STRIPE_CS} {STRIPE_PY}"),
        nested={"deeper": {"list": [f"mail {EMAIL_2}", (f"call {PHONE_E164}",)]}},
    )
    log.info(
        "db.connect",
        dsn=f"mongodb://truebond:{DB_PASSWORD}@mongo:27017/truebond",
    )


def _log_harmless(log: structlog.stdlib.BoundLogger) -> None:
    log.info(
        f"webhook {EVENT_TYPE} for {OBJECT_ID} at {ISO_TS} on {HTTP_PATH} -> 200",
        type=EVENT_TYPE,
        path=HTTP_PATH,
        status=200,
        status_code=404,
        attempts=3,
        user_id=OBJECT_ID,
        occurred_at=ISO_TS,
        trace_id=UUID_DASHED,
        created=EPOCH,
        created_str=str(EPOCH),
        other_events=["customer.subscription.created", "charge.succeeded"],
        reason="card_declined",
    )


# --------------------------------------------------------------------------
# JSON mode
# --------------------------------------------------------------------------


def test_json_masks_secrets_in_keys_messages_and_nested_values(
    json_stream: io.StringIO,
) -> None:
    _log_everything(get_logger("truebond.test"))

    text = json_stream.getvalue()
    _assert_no_raw_secrets(text)
    records = _records(json_stream)
    assert len(records) == 12

    signup = _by_event(records, "user.signup")
    for key in (
        "password",
        "userPassword",
        "passwd",
        "email",
        "phone",
        "mobile_number",
        "otp",
        "otp_code",
        "code",
        "api_key",
        "apikey",
        "key",
        "stripe_secret_key",
        "client_secret",
        "refresh_token",
        "access_token",
        "card_number",
        "cvc",
        "cvv",
        "pan",
        "address",
        "lat",
        "lng",
        "latitude",
        "longitude",
        "signature",
        "cookie",
        "authorization",
    ):
        assert signup[key] == "***", key
    # not sensitive: exact-key rule for "code", booleans can't leak anything
    assert signup["status_code"] == 201
    assert signup["email_verified"] is True
    assert signup["logger"] == "truebond.test"
    assert signup["level"] == "info"

    assert signup["headers"] == {
        "Authorization": "***",
        "Cookie": "***",
        "Stripe-Signature": "***",
        "X-Api-Key": "***",
        "Accept": "application/json",
    }
    profile = signup["profile"]
    assert profile["name"] == "Alice"
    assert profile["age"] == 29
    assert profile["contact"] == {"email": "***", "phone": "***"}
    assert profile["location"] == {"lat": "***", "lng": "***", "city": "Bengaluru"}
    assert profile["cards"] == "***"
    assert signup["history"] == [
        {"token": "***", "kind": "login"},
        ["secret", "***"],
        ["note mentioning", "***@***"],
    ]

    msg = _by_event(records, "login attempt")
    assert msg["event"] == "login attempt by ***@*** from ***phone***"
    assert _by_event(records, "sms to")["event"] == "sms to ***phone***: your otp ******"
    assert _by_event(records, "verification")["event"] == "verification code: ******"
    assert _by_event(records, "card ")["event"] == "card **** / **** / **** declined"
    assert _by_event(records, "jwt issued")["event"] == "jwt issued ***jwt***"
    assert _by_event(records, "Authorization")["event"] == "Authorization: Bearer ***"
    assert _by_event(records, "stripe keys")["event"] == ("stripe keys sk_live_*** sk_test_*** rk_live_*** pk_test_***")
    assert _by_event(records, "webhook secret")["event"] == ("webhook secret whsec_*** header Stripe-Signature: t=***,v1=***")
    assert _by_event(records, "client secret")["event"] == ("client secret pi_*** for intent pi_***")
    objects = _by_event(records, "stripe objects")
    assert objects["note"] == ("ch_*** cus_*** evt_*** seti_*** pm_*** re_*** dp_*** cs_test_*** py_***")
    assert objects["nested"] == {"deeper": {"list": ["mail ***@***", ["call ***phone***"]]}}
    assert _by_event(records, "db.connect")["dsn"] == ("mongodb://***:***@mongo:27017/truebond")


def test_json_stdlib_logging_goes_through_masking(json_stream: io.StringIO) -> None:
    logging.getLogger("x").error(
        "payment failed for %s card %s token %s",
        EMAIL,
        CARD_BARE,
        STRIPE_SK_LIVE,
        extra={"password": PASSWORD, "customer": {"phone": PHONE_E164}},
    )
    logging.getLogger("aiohttp.access").info('127.0.0.1 "GET %s HTTP/1.1" 200 id=%s', HTTP_PATH, OBJECT_ID)

    _assert_no_raw_secrets(json_stream.getvalue())
    records = _records(json_stream)
    assert len(records) == 2
    error = _by_event(records, "payment failed")
    assert error["event"] == "payment failed for ***@*** card **** token sk_live_***"
    assert error["level"] == "error"
    assert error["logger"] == "x"
    assert error["password"] == "***"
    assert error["customer"] == {"phone": "***"}
    access = _by_event(records, "127.0.0.1")
    assert access["event"] == f'127.0.0.1 "GET {HTTP_PATH} HTTP/1.1" 200 id={OBJECT_ID}'


def test_json_exception_tracebacks_are_logged_and_masked(
    json_stream: io.StringIO,
) -> None:
    log = get_logger("truebond.auth")
    try:
        raise ValueError(f"login failed for {EMAIL} with token {JWT} and Bearer {BEARER_VALUE}")
    except ValueError:
        log.exception("login.failed", attempt=2)
    try:
        raise RuntimeError(f"stripe rejected {STRIPE_SK_TEST} for {PHONE_E164}")
    except RuntimeError:
        logging.getLogger("stripe").exception("stripe call failed")

    _assert_no_raw_secrets(json_stream.getvalue())
    records = _records(json_stream)
    assert len(records) == 2

    failed = _by_event(records, "login.failed")
    assert failed["level"] == "error"
    assert failed["attempt"] == 2
    exc = failed["exception"]
    assert exc.startswith("Traceback (most recent call last):")
    assert "test_json_exception_tracebacks_are_logged_and_masked" in exc
    assert exc.rstrip().endswith("ValueError: login failed for ***@*** with token ***jwt*** and Bearer ***")

    stdlib = _by_event(records, "stripe call failed")
    assert stdlib["logger"] == "stripe"
    assert stdlib["exception"].rstrip().endswith("RuntimeError: stripe rejected sk_test_*** for ***phone***")


def test_json_harmless_values_survive(json_stream: io.StringIO) -> None:
    _log_harmless(get_logger())
    record = _records(json_stream)[0]
    assert record["event"] == (f"webhook {EVENT_TYPE} for {OBJECT_ID} at {ISO_TS} on {HTTP_PATH} -> 200")
    assert record["type"] == EVENT_TYPE
    assert record["path"] == HTTP_PATH
    assert record["status"] == 200
    assert record["status_code"] == 404
    assert record["attempts"] == 3
    assert record["user_id"] == OBJECT_ID
    assert record["occurred_at"] == ISO_TS
    assert record["trace_id"] == UUID_DASHED
    assert record["created"] == EPOCH
    assert record["created_str"] == str(EPOCH)
    assert record["other_events"] == [
        "customer.subscription.created",
        "charge.succeeded",
    ]
    assert record["reason"] == "card_declined"
    assert record["request_id"] == REQUEST_ID
    assert record["timestamp"].endswith("Z")


def test_request_id_from_contextvars_is_on_every_line(
    json_stream: io.StringIO,
) -> None:
    log = get_logger("truebond.api")
    log.info("one")
    log.warning("two", n=2)
    logging.getLogger("aiohttp.server").warning("three")
    with structlog.contextvars.bound_contextvars(user_id=OBJECT_ID):
        log.info("four")
    records = _records(json_stream)  # asserts request_id on each line
    assert [r["event"] for r in records] == ["one", "two", "three", "four"]
    assert records[3]["user_id"] == OBJECT_ID
    assert "user_id" not in records[0]


def test_level_filtering_applies_to_structlog_and_stdlib() -> None:
    stream = io.StringIO()
    old_level = logging.getLogger().level
    try:
        configure_logging(json=True, level="warning", stream=stream)
        get_logger("a").info("hidden")
        logging.getLogger("b").info("hidden too")
        get_logger("a").warning("shown")
        logging.getLogger("b").error("shown too")
        events = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
        assert events == ["shown", "shown too"]
    finally:
        _reset_logging()
        logging.getLogger().setLevel(old_level)


def test_configure_logging_is_idempotent_and_switches_stream() -> None:
    first, second = io.StringIO(), io.StringIO()
    old_level = logging.getLogger().level
    try:
        configure_logging(json=True, stream=first)
        configure_logging(json=True, stream=second)
        root = logging.getLogger()
        ours = [h for h in root.handlers if getattr(h, "_truebond_log_handler", 0)]
        assert len(ours) == 1
        get_logger("x").info("once", email=EMAIL)
        logging.getLogger("y").warning("stdlib once")
        assert first.getvalue() == ""
        lines = second.getvalue().splitlines()
        assert [json.loads(line)["event"] for line in lines] == ["once", "stdlib once"]
        assert EMAIL not in second.getvalue()
    finally:
        _reset_logging()
        logging.getLogger().setLevel(old_level)


def test_unknown_level_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging(json=True, level="LOUD", stream=io.StringIO())


# --------------------------------------------------------------------------
# Console mode
# --------------------------------------------------------------------------


def test_console_output_is_masked_and_colourless(console_stream: io.StringIO) -> None:
    log = get_logger("truebond.dev")
    _log_everything(log)
    _log_harmless(log)
    logging.getLogger("x").error("stdlib says %s / %s", EMAIL, JWT)
    try:
        raise KeyError(f"no user {EMAIL_2} with card {CARD_SPACED}")
    except KeyError:
        log.exception("lookup.failed")

    text = console_stream.getvalue()
    _assert_no_raw_secrets(text)
    assert "\x1b[" not in text  # no ANSI colours
    assert text.lstrip()[0] != "{"  # not JSON
    for placeholder in (
        "***@***",
        "***phone***",
        "****",
        "***jwt***",
        "Bearer ***",
        "t=***,v1=***",
        "sk_live_***",
        "whsec_***",
        "pi_***",
        "cus_***",
        "otp ******",
        "password=***",
        "email=***",
    ):
        assert placeholder in text, placeholder
    for harmless in (
        EVENT_TYPE,
        OBJECT_ID,
        ISO_TS,
        HTTP_PATH,
        UUID_DASHED,
        str(EPOCH),
        "status_code=404",
        "Traceback (most recent call last):",
        "KeyError",
    ):
        assert harmless in text, harmless
    log_lines = [line for line in text.splitlines() if " [info     ]" in line or "[error" in line]
    assert len(log_lines) == 15
    assert all(f"request_id={REQUEST_ID}" in line for line in log_lines)


# --------------------------------------------------------------------------
# Unit tests for the masking functions
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (f"mail {EMAIL}.", "mail ***@***."),
        (JWT, "***jwt***"),
        (f"token={JWT}&x=1", "token=***jwt***&x=1"),
        ("bearer abc.DEF-123_xyz==", "Bearer ***"),
        (STRIPE_SK_LIVE, "sk_live_***"),
        (STRIPE_SK_TEST, "sk_test_***"),
        (STRIPE_RK, "rk_live_***"),
        (STRIPE_PK, "pk_test_***"),
        (STRIPE_WHSEC, "whsec_***"),
        (STRIPE_PI_SECRET, "pi_***"),
        (f"/v1/payment_intents/{STRIPE_PI}/confirm", "/v1/payment_intents/pi_***/confirm"),
        (STRIPE_CUS, "cus_***"),
        (STRIPE_EVT, "evt_***"),
        (STRIPE_CS, "cs_test_***"),
        (STRIPE_SIG, "t=***,v1=***"),
        ("4242 4242 4242 4242", "****"),
        ("4242-4242-4242-4242", "****"),
        ("378282246310005", "****"),  # Amex, 15 digits
        ("3782 822463 10005", "****"),
        ("+919876543210", "***phone***"),
        ("call +1 415-555-2671 now", "call ***phone*** now"),
        ("9876543210", "***phone***"),
        ("447700900123", "***phone***"),
        ("otp 123456", "otp ******"),
        ("OTP: 123456", "OTP: ******"),
        ("your code is 123456", "your code is ******"),
        ("code=654321", "code=******"),
        ("redis://:s3cretPw@cache:6379/0", "redis://***:***@cache:6379/0"),
    ],
)
def test_mask_text_patterns(raw: str, expected: str) -> None:
    assert mask_text(raw) == expected


@pytest.mark.parametrize(
    "harmless",
    [
        REQUEST_ID,
        "a1b2c3d4e5f60718293a4b5c6d7e8f90",
        UUID_DASHED,
        ISO_TS,
        "2024-11-26T00:43:12Z",
        "2024-11-26 2024-11-27",
        "42",
        "200",
        "GET /api/auth/login 401",
        "/api/users/507f1f77bcf86cd799439011/photos/2",
        EVENT_TYPE,
        "customer.subscription.created",
        "checkout.session.completed",
        "charge.refunded",
        "card_declined",
        "re_authenticate",
        OBJECT_ID,
        "took 0.12345678901 seconds",
        "created 1732579200 / 1732579200123",
        "status code 404",
        "order 123456",  # 6 digits without an otp/code keyword
        "4242424242424241",  # fails the Luhn check
        "https://api.stripe.com/v1/charges?limit=10",
    ],
)
def test_mask_text_leaves_harmless_values_alone(harmless: str) -> None:
    assert mask_text(harmless) == harmless


def test_mask_event_key_rules() -> None:
    event = {
        "event": "keys",
        "Password": "x1",
        "newPassword": "x2",
        "X-API-KEY": "x3",
        "idempotency_key": "x4",
        "webhook_secret": "x5",
        "otpCode": "x6",
        "sms_otp": "x7",
        "set-cookie": "x8",
        "card_pan": "x9",
        "home_address": "x10",
        "user_lat": 1.5,
        "company": "Acme",
        "footprint": "small",
        "translate": "yes",
        "span": "ok",
        "error_code": "E42",
        "status_code": 500,
        "keys_count": 3,
        "monkey": "banana",
        "phone_verified": False,
        "avatar_key": None,
    }
    out = mask_event(None, "info", dict(event))
    for key in (
        "Password",
        "newPassword",
        "X-API-KEY",
        "idempotency_key",
        "webhook_secret",
        "otpCode",
        "sms_otp",
        "set-cookie",
        "card_pan",
        "home_address",
        "user_lat",
    ):
        assert out[key] == "***", key
    for key in (
        "company",
        "footprint",
        "translate",
        "span",
        "error_code",
        "status_code",
        "keys_count",
        "monkey",
        "phone_verified",
        "avatar_key",
    ):
        assert out[key] == event[key], key


def test_mask_value_does_not_mutate_input_and_reuses_clean_containers() -> None:
    clean = {"a": [1, 2, {"b": "c"}], "path": HTTP_PATH}
    assert mask_value(clean) is clean

    dirty = {"user": {"email": EMAIL, "tags": ["x", f"y {EMAIL_2}"]}, "ok": clean}
    masked = mask_value(dirty)
    assert masked == {"user": {"email": "***", "tags": ["x", "y ***@***"]}, "ok": clean}
    assert masked["ok"] is clean
    assert dirty["user"]["email"] == EMAIL  # original untouched
    assert dirty["user"]["tags"][1] == f"y {EMAIL_2}"


def test_mask_value_handles_objects_big_ints_and_cycles() -> None:
    err = ValueError(f"bad {EMAIL}")
    assert mask_value(err) == "ValueError('bad ***@***')"
    harmless_err = ValueError("bad input")
    assert mask_value(harmless_err) is harmless_err
    assert mask_value(919876543210) == "***phone***"
    assert mask_value(4242424242424242) == "****"
    assert mask_value(EPOCH) == EPOCH
    assert mask_value(12) == 12
    cyclic: list[Any] = [EMAIL]
    cyclic.append(cyclic)
    masked = mask_value(cyclic)
    assert EMAIL not in repr(masked)
