"""JWT access and session tokens (HS256, signed with ``GUANJIA_SECRET_KEY``).

Two kinds share one format and differ in lifetime and use: ``access`` tokens (OAuth2 password
flow, 15 minutes by default) go in ``Authorization: Bearer``; ``session`` tokens (12 hours) live
only in the HttpOnly cookie of the web pages. A token names the user (``sub``) and the user's
``ver`` (token version); the user row is read on every request, so a disabled user or a bumped
version stops old tokens at once, not when they expire.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

import jwt

from guanjia.core.clock import Clock

ISSUER = "guanjia"
ALGORITHM = "HS256"
TokenKind = Literal["access", "session"]


class TokenInvalid(Exception):
    """The token is missing, malformed, expired, of the wrong kind or badly signed."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    version: int
    kind: TokenKind
    jti: str
    expires_at: int


class TokenService:
    """Issue and check tokens; issue time and expiry are judged on the app's :class:`Clock` (not
    PyJWT's own wall-clock read), so a test or ``pytest --at`` moves both the same way."""

    def __init__(self, secret: str, *, access_ttl_s: int = 15 * 60, session_ttl_s: int = 12 * 3600,
                 clock: Clock) -> None:
        if len(secret) < 16:
            raise ValueError("secret must have at least 16 characters")
        self._secret = secret
        self.access_ttl_s = access_ttl_s
        self.session_ttl_s = session_ttl_s
        self.clock: Clock = clock

    def issue(self, user_id: int, version: int, kind: TokenKind, *, now: float | None = None) -> tuple[str, int]:
        """Return ``(token, ttl_seconds)``."""
        issued = int(now if now is not None else self.clock.now().timestamp())
        ttl = self.access_ttl_s if kind == "access" else self.session_ttl_s
        claims = {"iss": ISSUER, "sub": str(user_id), "ver": version, "typ": kind,
                  "iat": issued, "exp": issued + ttl, "jti": secrets.token_urlsafe(12)}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM), ttl

    def decode(self, token: str, kind: TokenKind) -> TokenClaims:
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM], issuer=ISSUER,
                                options={"require": ["exp", "iat", "sub", "iss"], "verify_exp": False,
                                         "verify_iat": False, "verify_nbf": False})
        except jwt.PyJWTError as exc:
            raise TokenInvalid(str(exc)) from exc
        try:
            expired = int(claims["exp"]) <= self.clock.now().timestamp()
        except (TypeError, ValueError) as exc:
            raise TokenInvalid("malformed claims") from exc
        if expired:
            raise TokenInvalid("Signature has expired")
        if claims.get("typ") != kind:
            raise TokenInvalid(f"expected a {kind} token")
        try:
            return TokenClaims(int(claims["sub"]), int(claims.get("ver", 0)), kind,
                               str(claims.get("jti", "")), int(claims["exp"]))
        except (TypeError, ValueError) as exc:
            raise TokenInvalid("malformed claims") from exc

    def csrf_token(self, session_jti: str) -> str:
        """The CSRF token bound to one web session (HMAC of its ``jti``): a forged cross-site
        request cannot know it, and it changes with every login."""
        return hmac.new(self._secret.encode(), b"csrf:" + session_jti.encode(), hashlib.sha256).hexdigest()[:32]

    def check_csrf(self, session_jti: str, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(self.csrf_token(session_jti), presented)
