"""How long to wait before reconnecting: exponential, capped, jittered.

Many clients that lost the same server must not come back in step (jitter), a server that is
down for long must not be hammered (exponential) and a client must not wait for hours (cap).
The jitter takes at most half of a wait away, so that while the cap is not reached a later wait
is never shorter than an earlier one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Waits of ``initial * 2**(attempt-1)`` seconds, at most ``cap``, each shortened by a
    random share of up to ``jitter`` (0 to 0.5)."""

    initial: float
    cap: float
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.cap:
            raise ValueError(f"backoff needs 0 < initial <= cap, got {self.initial}, {self.cap}")
        if not 0 <= self.jitter <= 0.5:
            raise ValueError(f"backoff jitter must lie in [0, 0.5], got {self.jitter}")

    def delay(self, attempt: int) -> float:
        """The wait before try number ``attempt + 1`` (``attempt`` >= 1 failures so far)."""
        exponent = min(max(attempt, 1) - 1, 64)  # 2**64 x anything positive passes any cap
        base = min(self.cap, self.initial * 2.0**exponent)
        return base * (1 - self.jitter * self.rng.random())
