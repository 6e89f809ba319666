"""The client-side rate limit: a token bucket shared by every thread using one Cluster."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from gitops_tasks.cluster import Cluster, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_bucket_bursts_then_spreads() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 3, clock=clock, sleep=clock.sleep)
    waits = [bucket.acquire() for _ in range(5)]
    assert waits[:3] == [0, 0, 0]
    assert waits[3:] == pytest.approx([0.1, 0.1])
    assert clock.slept == pytest.approx([0.1, 0.1])
    clock.now += 10  # idle: the bucket refills, but only up to burst
    assert [bucket.acquire() for _ in range(3)] == [0, 0, 0]
    assert bucket.acquire() > 0


def test_bucket_disabled() -> None:
    bucket = TokenBucket(0, 1)
    assert all(bucket.acquire() == 0 for _ in range(100))


def test_cluster_requests_are_throttled(api_client: Any, namespace: str) -> None:
    cluster = Cluster(api_client, qps=20, burst=5)
    start = time.monotonic()
    for _ in range(30):
        cluster.get("v1", "ConfigMap", "absent", namespace)
    elapsed = time.monotonic() - start
    # 31 requests (one discovery): 5 at once, 26 more at 20/s.
    assert cluster.requests == 31
    assert 1.2 <= elapsed < 4, elapsed


def test_threads_share_the_bucket(api_client: Any, namespace: str) -> None:
    cluster = Cluster(api_client, qps=20, burst=5)
    cluster.resource("v1", "ConfigMap")

    def work() -> None:
        for _ in range(8):
            cluster.get("v1", "ConfigMap", "absent", namespace)

    threads = [threading.Thread(target=work) for _ in range(4)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    assert cluster.requests == 33
    assert 1.1 <= elapsed < 4, elapsed  # 32 gets: 4 tokens left + 28 at 20/s
