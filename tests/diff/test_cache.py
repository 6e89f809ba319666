"""DryRunCache against a real redis-server, and Redis being down behaving as a miss."""

from __future__ import annotations

import time
import uuid
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from structlog.testing import capture_logs

from gitops_tasks.diff import DryRunCache, manifest_hash
from gitops_tasks.diff.cache import cache_key

from .helpers import load


def _cluster() -> str:
    # Unique per test: the redis-server is shared by the whole session.
    return f"https://cluster-{uuid.uuid4().hex[:8]}.example.com:6443"


def test_round_trip(redis_client: Any) -> None:
    cache = DryRunCache(redis_client)
    predicted = load("deployment-image-changed.yaml")["predicted"]
    cluster, h = _cluster(), manifest_hash({"kind": "Deployment"})
    assert cache.get(cluster, h, "4711") is None
    cache.put(cluster, h, "4711", predicted)
    assert cache.get(cluster, h, "4711") == predicted


def test_any_part_of_the_key_changing_is_a_miss(redis_client: Any) -> None:
    cache = DryRunCache(redis_client)
    cluster, h = _cluster(), manifest_hash({"kind": "Deployment"})
    cache.put(cluster, h, "10", {"kind": "Deployment"})
    assert cache.get(cluster, h, "11") is None  # the live object changed
    assert cache.get(cluster, manifest_hash({"kind": "Deployment", "x": 1}), "10") is None
    assert cache.get(_cluster(), h, "10") is None
    assert cache.get(cluster, h, "10") == {"kind": "Deployment"}


def test_entries_expire_and_are_compressed(redis_client: Any) -> None:
    cache = DryRunCache(redis_client, ttl=120)
    cluster, h = _cluster(), manifest_hash({})
    predicted = load("deployment-no-change.yaml")["live"]
    cache.put(cluster, h, "1", predicted)
    key = cache_key(cluster, h, "1")
    assert 0 < redis_client.ttl(key) <= 120
    assert len(redis_client.get(key)) < len(str(predicted)) / 3


def test_corrupt_entry_is_a_miss(redis_client: Any) -> None:
    cache = DryRunCache(redis_client)
    cluster, h = _cluster(), manifest_hash({})
    redis_client.set(cache_key(cluster, h, "1"), b"not zlib")
    with capture_logs() as logs:
        assert cache.get(cluster, h, "1") is None
    assert logs[0]["event"] == "dropping corrupt dry-run cache entry"


def test_key_keeps_a_url_cluster_name_unambiguous() -> None:
    key = cache_key("https://10.0.0.1:6443", "ab" * 32, "99")
    assert key.startswith("gitops:dryrun:v1:") and key.endswith(":" + "ab" * 32 + ":99")
    assert "https" not in key


def test_no_client_is_always_a_miss() -> None:
    cache = DryRunCache(None)
    cache.put("c", "h", "1", {"a": 1})
    assert cache.get("c", "h", "1") is None


def test_redis_down_is_a_miss_and_is_then_left_alone() -> None:
    cache = DryRunCache(redis.Redis(port=1))
    with capture_logs() as logs:
        assert cache.get("c", manifest_hash({}), "1") is None
        started = time.monotonic()
        cache.put("c", manifest_hash({}), "1", {"a": 1})
        assert cache.get("c", manifest_hash({}), "1") is None
        # The client retries for seconds per call; after one failure the cache skips Redis.
        assert time.monotonic() - started < 0.5
    assert [entry["log_level"] for entry in logs] == ["warning"]
    assert "unavailable" in logs[0]["event"] and "Connection refused" in logs[0]["error"]


def test_redis_down_on_put_never_raises() -> None:
    cache = DryRunCache(redis.Redis(port=1, retry=Retry(NoBackoff(), 0)))
    cache.put("c", manifest_hash({}), "1", {"a": 1})


def test_manifest_hash_is_stable_and_canonical() -> None:
    a = {"kind": "ConfigMap", "metadata": {"name": "c", "labels": {"x": "1", "y": "2"}},
         "data": {"k": "é"}}
    b = {"data": {"k": "é"}, "metadata": {"labels": {"y": "2", "x": "1"}, "name": "c"},
         "kind": "ConfigMap"}
    assert manifest_hash(a) == manifest_hash(b)
    assert len(manifest_hash(a)) == 64
    assert manifest_hash(a) != manifest_hash({**a, "data": {"k": "e"}})
    # Pinned: the hash is part of Redis keys shared by every worker of every version.
    assert manifest_hash({"a": 1}) == (
        "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862")
