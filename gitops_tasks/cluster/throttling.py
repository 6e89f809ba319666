"""Client-side rate limit for one API server, shared by every thread that talks to it.

`Cluster` consults its bucket before each HTTP request (discovery included), so a sync of a
thousand objects or a sweep over thousands of apps cannot flood the API server: requests beyond
`burst` are spread at `qps` per second, as client-go's token bucket does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Limiter(Protocol):
    """What a Cluster consults before each request: this process's `TokenBucket`, or one
    bucket in Redis shared by every worker (`gitops_tasks.locks.RedisTokenBucket`)."""

    def acquire(self) -> float:
        """Take one token, waiting until one is due; returns the seconds waited."""
        ...


# Builds the limiter for one API server (its URL), so every Cluster of a server shares it.
LimiterFactory = Callable[[str], Limiter]


class TokenBucket:
    """Thread-safe token bucket: `burst` tokens, refilled at `qps` per second.

    A caller that finds the bucket empty reserves the next token (the balance goes negative)
    and sleeps outside the lock until it is due, so waiting threads are served in arrival order
    and none holds the lock while sleeping. `qps <= 0` disables the limit.
    """

    def __init__(
        self,
        qps: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(self.burst)
        self._stamp = clock()

    def acquire(self) -> float:
        """Take one token, sleeping until one is available; returns the seconds waited."""
        if self.qps <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.qps)
            self._stamp = now
            self._tokens -= 1.0
            wait = -self._tokens / self.qps if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait
