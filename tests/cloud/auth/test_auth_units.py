"""Pure pieces of the auth layer: password hashing, tokens, the login rate limiter."""

from __future__ import annotations

import datetime as dt

import pytest

from cloud.auth.passwords import check_strength, hash_password, needs_rehash, verify_password
from cloud.auth.ratelimit import LoginLimiter, TokenBucket
from cloud.auth.tokens import TokenInvalid, TokenService
from guanjia.core.clock import ManualClock


def test_password_hash_is_argon2id_salted_and_verifies() -> None:
    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a.startswith("$argon2id$")
    assert a != b  # salted
    assert verify_password(a, "correct horse")
    assert not verify_password(a, "wrong horse")
    assert not verify_password(None, "correct horse")
    assert not verify_password("not-a-hash", "x")
    assert not needs_rehash(a)
    assert needs_rehash("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo")


def test_password_strength_rules() -> None:
    assert check_strength("short") is not None
    assert check_strength("aaaaaaaaaaaa") is not None
    assert check_strength("x" * 300) is not None
    assert check_strength("butler-demo-pass") is None


def test_tokens_roundtrip_kind_expiry_and_signature() -> None:
    clock = ManualClock(dt.datetime(2026, 12, 31, 23, 50, tzinfo=dt.UTC))
    tokens = TokenService("s" * 40, clock=clock)
    token, ttl = tokens.issue(7, 3, "access")
    claims = tokens.decode(token, "access")
    assert (claims.user_id, claims.version, claims.kind) == (7, 3, "access")
    assert ttl == 15 * 60
    with pytest.raises(TokenInvalid):
        tokens.decode(token, "session")  # an access token is not a session
    with pytest.raises(TokenInvalid):
        TokenService("t" * 40, clock=clock).decode(token, "access")  # other secret
    old, _ = tokens.issue(7, 3, "access", now=1_000_000)
    with pytest.raises(TokenInvalid):
        tokens.decode(old, "access")  # expired
    clock.advance(dt.timedelta(minutes=14, seconds=59))  # expiry is judged on the injected clock
    assert tokens.decode(token, "access").user_id == 7
    clock.advance(dt.timedelta(seconds=1))
    with pytest.raises(TokenInvalid):
        tokens.decode(token, "access")
    with pytest.raises(TokenInvalid):
        tokens.decode("garbage", "access")


def test_csrf_token_is_bound_to_the_session() -> None:
    tokens = TokenService("s" * 40, clock=ManualClock())
    assert tokens.check_csrf("jti-1", tokens.csrf_token("jti-1"))
    assert not tokens.check_csrf("jti-2", tokens.csrf_token("jti-1"))
    assert not tokens.check_csrf("jti-1", None)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_and_is_bounded() -> None:
    clock = Clock()
    bucket = TokenBucket(3, 1.0, max_keys=2, clock=clock)
    assert [bucket.take("k") for _ in range(3)] == [0, 0, 0]
    assert bucket.take("k") == pytest.approx(1.0)
    clock.now = 1.0
    assert bucket.take("k") == 0
    bucket.take("a")
    bucket.take("b")
    assert len(bucket) == 2  # "k" evicted, memory bounded


def test_login_limiter_per_account_and_ip() -> None:
    clock = Clock()
    limiter = LoginLimiter(per_account=3, account_refill_s=10, per_ip=5, ip_refill_s=1, clock=clock)
    for _ in range(3):
        assert limiter.check("Bob", "1.1.1.1") == 0
        limiter.failed("Bob", "1.1.1.1")
    assert limiter.check("bob", "1.1.1.1") == 10  # case-insensitive username
    assert limiter.check("bob", "2.2.2.2") == 0  # another client is not locked out
    limiter.failed("eve", "1.1.1.1")
    limiter.failed("mallory", "1.1.1.1")
    assert limiter.check("trent", "1.1.1.1") > 0  # the IP bucket stops spraying usernames
    clock.now = 10
    assert limiter.check("bob", "1.1.1.1") == 0
    limiter.succeeded("bob", "1.1.1.1")
