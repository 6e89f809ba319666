"""Server-side dry-run results in Redis, so a refresh where nothing changed costs no dry-run.

Called by the engine around its dry-run apply: `get` before asking the API server, `put` after.
A predicted object is fully determined by the desired manifest and the live object it is applied
to (the field manager and force flag are constants), and the live resourceVersion changes with
every write, so (cluster, manifest hash, live resourceVersion) is a sound key. What it does not
capture (a new webhook or a CRD schema with new defaults) is bounded by the TTL.

The cache only saves work: Redis errors are misses, logged, never raised. After a connection
failure Redis is left alone for a while, since a client retries with backoff for seconds per call
and a refresh makes one call per resource.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from typing import Any

import redis

from ..log import get_logger
from ..sealing import Sealer, holds_secret_data

KEY_TEMPLATE = "gitops:dryrun:v1:{cluster}:{manifest}:{rv}"
DEFAULT_TTL = 24 * 3600
# How long to skip Redis after a connection error or timeout.
DOWN_BACKOFF_SECONDS = 30.0

_log = get_logger(component="dryrun-cache")


def manifest_hash(obj: dict[str, Any]) -> str:
    """A stable hash of a desired manifest: SHA-256 of its canonical JSON (sorted keys, no
    whitespace), so key order and formatting in Git do not matter."""
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def cache_key(cluster: str, manifest_hash: str, live_rv: str) -> str:
    # The cluster name can be a URL (colons, slashes): hashed so the key stays unambiguous.
    cluster_id = hashlib.sha256(cluster.encode()).hexdigest()[:16]
    return KEY_TEMPLATE.format(cluster=cluster_id, manifest=manifest_hash, rv=live_rv)


class DryRunCache:
    """Keep one per process: the "Redis is down" backoff lives in the instance."""

    def __init__(self, client: redis.Redis | None, ttl: int = DEFAULT_TTL,
                 sealer: Sealer | None = None) -> None:
        self.client = client
        self.ttl = ttl
        self.sealer = sealer or Sealer()
        self._skip_until = 0.0

    def get(self, cluster: str, manifest_hash: str, live_rv: str) -> dict[str, Any] | None:
        """The cached predicted object, or None (miss, Redis unavailable, corrupt entry)."""
        if not self._usable():
            return None
        assert self.client is not None
        key = cache_key(cluster, manifest_hash, live_rv)
        try:
            blob = self.client.get(key)
        except redis.RedisError as exc:
            self._failed("get", exc)
            return None
        if blob is None:
            return None
        plain = self.sealer.open(blob)  # type: ignore[arg-type]
        if plain is None:
            return None  # sealed under a key this process does not have: a miss
        try:
            value = json.loads(zlib.decompress(plain))
        except (ValueError, zlib.error) as exc:
            _log.warning("dropping corrupt dry-run cache entry", key=key, error=str(exc))
            return None
        if not isinstance(value, dict):
            _log.warning("dropping corrupt dry-run cache entry", key=key, error="not an object")
            return None
        return value

    def put(
        self, cluster: str, manifest_hash: str, live_rv: str, predicted: dict[str, Any]
    ) -> None:
        if not self._usable():
            return
        assert self.client is not None
        blob = zlib.compress(json.dumps(predicted, separators=(",", ":")).encode(), 3)
        if holds_secret_data([predicted]):
            blob = self.sealer.seal(blob)
        try:
            self.client.set(cache_key(cluster, manifest_hash, live_rv), blob, ex=self.ttl)
        except redis.RedisError as exc:
            self._failed("put", exc)

    def _usable(self) -> bool:
        return self.client is not None and time.monotonic() >= self._skip_until

    def _failed(self, op: str, exc: redis.RedisError) -> None:
        if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
            self._skip_until = time.monotonic() + DOWN_BACKOFF_SECONDS
            _log.warning("dry-run cache unavailable; not using it for a while", op=op,
                         error=str(exc), retry_in=DOWN_BACKOFF_SECONDS)
        else:
            _log.warning("dry-run cache error", op=op, error=str(exc))
