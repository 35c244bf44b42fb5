"""The secrets the test settings carry: a JWT key long enough for `serve`, a Stripe webhook secret."""

from __future__ import annotations

TEST_JWT_SECRET = "test-jwt-secret-that-is-long-enough-0123456789"
WEBHOOK_SECRET = "whsec_test_secret_for_signing_0123456789"
