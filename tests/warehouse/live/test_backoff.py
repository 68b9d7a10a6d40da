"""Reconnect backoff: exponential, capped and jittered. Jitter spreads clients that lost the
same server apart; it must not make a later wait shorter than an earlier one while the cap is
not reached, and no wait exceeds the cap."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from warehouse.live.backoff import Backoff


@given(
    initial=st.floats(0.001, 10),
    factor=st.floats(1.5, 1e4),
    jitter=st.floats(0, 0.5),
    seed=st.integers(0, 2**32),
)
def test_waits_grow_until_the_cap_and_never_pass_it(initial, factor, jitter, seed):
    cap = initial * factor
    backoff = Backoff(initial, cap, jitter, random.Random(seed))
    delays = [backoff.delay(attempt) for attempt in range(1, 40)]
    assert all(0 < d <= cap for d in delays)
    assert delays[0] <= initial
    below = [d for a, d in zip(range(1, 40), delays, strict=True) if initial * 2**a <= cap]
    assert below == sorted(below)
    assert max(delays) >= cap * (1 - jitter)


def test_jitter_spreads_equal_attempts():
    backoff = Backoff(1.0, 60.0, 0.5, random.Random(1))
    assert len({backoff.delay(3) for _ in range(20)}) > 1
    assert Backoff(1.0, 60.0, 0.0).delay(3) == 4.0
