"""Backoff arithmetic shared by every retry: transient task errors, sync retries, automated
re-attempts. Pure functions; the callers turn the result into a countdown, never a sleep."""

from __future__ import annotations

import random


def exponential(attempt: int, base: float, factor: float = 2.0, cap: float = float("inf")
                ) -> float:
    """`base * factor**(attempt-1)` capped at `cap`; attempt 1 waits `base`."""
    if attempt <= 1:
        return min(base, cap)
    # Past a few dozen attempts the power overflows; the cap has long been reached by then.
    exponent = min(attempt - 1, 64)
    return min(base * factor ** exponent, cap)


def jittered(delay: float, spread: float = 0.5, rng: random.Random | None = None) -> float:
    """`delay` plus up to `spread` of itself at random ("full jitter" on top of a floor), so
    many apps failing together do not come back together."""
    if delay <= 0:
        return 0.0
    return delay + (rng or random).uniform(0, delay * spread)
