"""``guanjia.core.backoff``: capped jittered delays; building one is cheap (no new RNG per backoff)."""

from __future__ import annotations

import random

from guanjia.core.backoff import Backoff


def test_delays_double_up_to_the_cap_with_jitter() -> None:
    backoff = Backoff(initial=1.0, cap=4.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(5)]
    for delay, ceiling in zip(delays, [1.0, 2.0, 4.0, 4.0, 4.0], strict=True):
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_backoffs_share_one_rng_unless_given_one() -> None:
    """Issue 21: the ingest worker built a backoff per message, and seeding a new ``Random`` each
    time was the largest item of its per-message profile."""
    assert Backoff().rng is Backoff().rng
    mine = random.Random(3)
    assert Backoff(rng=mine).rng is mine
