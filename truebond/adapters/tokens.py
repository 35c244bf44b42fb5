"""Access tokens: HS256 JWTs with pinned algorithm, issuer and audience (pyjwt)."""

from __future__ import annotations

import secrets
from typing import Any

import attrs
import jwt

from truebond.errors import DomainError

ISSUER = "truebond"
AUDIENCE = "truebond-api"
ACCESS_TTL_SECONDS = 15 * 60
ALGORITHM = "HS256"
CLOCK_SKEW_SECONDS = 60


VERIFIED_CACHE_SIZE = 16_384


class InvalidToken(DomainError):
    """The token is malformed, forged, expired or for another audience."""


@attrs.frozen
class AccessClaims:
    """What a verified access token says."""

    user_id: str
    session_id: str
    role: str
    expires_at: int


class AccessTokens:
    """Issue and verify access tokens."""

    def __init__(self, secret: str) -> None:
        self._secret = secret
        # Tokens whose signature and static claims were checked: (claims, issued at) by the exact
        # token string. Only the time checks depend on `now`, so a hit runs just those again.
        self._verified: dict[str, tuple[AccessClaims, int]] = {}

    def issue(self, user_id: str, session_id: str, role: str, now: float) -> str:
        """A signed 15-minute access token for a session."""
        claims: dict[str, Any] = {
            "sub": user_id,
            "sid": session_id,
            "role": role,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": int(now),
            "exp": int(now) + ACCESS_TTL_SECONDS,
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str, now: float) -> AccessClaims:
        """The claims of a valid token; raises InvalidToken otherwise."""
        known = self._verified.get(token)
        if known is not None:
            return _in_time(*known, now)
        found = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()  # rare and cheap: the next requests verify their tokens again
        self._verified[token] = found
        return _in_time(*found, now)

    def _verify(self, token: str) -> tuple[AccessClaims, int]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={
                    "require": ["sub", "sid", "role", "exp", "iat", "iss", "aud"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(type(exc).__name__) from None
        # Time claims are checked against the injected clock (pyjwt would use the wall clock),
        # so a moved clock and a token issued by it agree; a little skew between servers is allowed.
        try:
            expires_at, issued_at = int(claims["exp"]), int(claims["iat"])
        except (TypeError, ValueError):
            raise InvalidToken("bad time claims") from None
        # A token that claims a longer life than the policy grants was not issued by this code
        # (or by a signer that must not be trusted with the key): refuse it whatever its `exp`.
        if expires_at - issued_at > ACCESS_TTL_SECONDS:
            raise InvalidToken("lifetime over the policy")
        return AccessClaims(str(claims["sub"]), str(claims["sid"]), str(claims["role"]), expires_at), issued_at


def _in_time(claims: AccessClaims, issued_at: int, now: float) -> AccessClaims:
    """The claims, if the token is neither expired nor issued in the future at `now`."""
    if claims.expires_at <= now:
        raise InvalidToken("expired")
    if issued_at > now + CLOCK_SKEW_SECONDS:
        raise InvalidToken("issued in the future")
    return claims
