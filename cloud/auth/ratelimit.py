"""Login rate limiting: in-memory token buckets keyed by (username, client IP) and by IP alone.

Why in memory: logins hit one API process at a time in the deployments we ship (one cloud
service, or a few behind a sticky load balancer); a shared store (Redis) would be the next step
when the API is scaled out, and is documented as such in ``docs/web.md``. The per-(user, IP)
bucket stops password guessing against one account; the per-IP bucket stops one client spraying
many usernames. The table of buckets is bounded (LRU eviction) so a flood of distinct keys cannot
exhaust memory; evicting a bucket only ever makes a key *more* permissive, never locks anyone out.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBucket:
    """A keyed token bucket: ``capacity`` attempts at once, refilled at ``per_second``."""

    def __init__(self, capacity: float, per_second: float, *, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1 or per_second <= 0 or max_keys < 1:
            raise ValueError("capacity >= 1, per_second > 0 and max_keys >= 1 are required")
        self.capacity = capacity
        self.per_second = per_second
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _refilled(self, key: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.capacity, now)
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.per_second)
            bucket.updated = now
            self._buckets.move_to_end(key)
        return bucket

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again (0 when it may now); consumes nothing."""
        bucket = self._refilled(key)
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.per_second

    def take(self, key: str) -> float:
        """Consume one token: 0 when allowed, else the seconds to wait (nothing consumed)."""
        bucket = self._refilled(key)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.per_second

    def reset(self, key: str) -> None:
        self._buckets.pop(key, None)


class LoginLimiter:
    """Both buckets together; failed attempts consume, a success refunds the account bucket.

    Defaults: 5 attempts per account and IP, then one more every 12 s (5 a minute); 30 per IP,
    then one every 2 s.
    """

    def __init__(self, *, per_account: int = 5, account_refill_s: float = 12.0,
                 per_ip: int = 30, ip_refill_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.account = TokenBucket(per_account, 1 / account_refill_s, clock=clock)
        self.ip = TokenBucket(per_ip, 1 / ip_refill_s, clock=clock)

    @staticmethod
    def _key(username: str, ip: str) -> str:
        return f"{username.strip().lower()}\x00{ip}"

    def check(self, username: str, ip: str) -> int:
        """Whole seconds to wait before an attempt is allowed (0: go ahead). Consumes nothing."""
        wait = max(self.account.retry_after(self._key(username, ip)), self.ip.retry_after(ip))
        return math.ceil(wait)

    def failed(self, username: str, ip: str) -> None:
        self.account.take(self._key(username, ip))
        self.ip.take(ip)

    def succeeded(self, username: str, ip: str) -> None:
        self.account.reset(self._key(username, ip))
