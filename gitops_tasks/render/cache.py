"""Rendered manifests in Redis, keyed by everything that determines them.

A commit's tree never changes, so (repo, commit, path, source options, app, destination
namespace) fully determines a render: every worker on every host reuses one entry, and a warm
render costs one Redis GET plus decompression. Called by `gitops_tasks.manifests`.

Redis being down never fails a render: the cache only saves work, so errors count as misses.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from typing import Any

import redis

from ..log import get_logger
from ..model import Source
from ..sealing import Sealer, holds_secret_data

KEY_PREFIX = "gitops:render:v1:"
# The repository paths an app's last render read (JSON list): the webhook receiver refreshes
# the app when a push changes any of them, a Kustomize base outside its path included.
INPUTS_KEY = "gitops:render-inputs:{namespace}/{name}"

_log = get_logger(component="render-cache")


def cache_key(repo_id: str, sha: str, source: Source, app_name: str, namespace: str) -> str:
    """The Redis key for one render; `repo_id` is the normalised repo URL (no credentials)."""
    opts = source.options_hash(app_name, namespace)
    repo = hashlib.sha256(repo_id.encode()).hexdigest()[:16]
    return f"{KEY_PREFIX}{repo}:{sha}:{opts}"


def encode(manifests: list[dict[str, Any]]) -> bytes:
    return zlib.compress(json.dumps(manifests, separators=(",", ":")).encode(), 3)


def decode(blob: bytes) -> list[dict[str, Any]]:
    value = json.loads(zlib.decompress(blob))
    if not isinstance(value, list):
        raise ValueError("render cache entry is not a list")
    return value


class RenderCache:
    def __init__(self, client: redis.Redis | None, ttl: int = 7 * 24 * 3600,
                 sealer: Sealer | None = None) -> None:
        self.client = client
        self.ttl = ttl
        self.sealer = sealer or Sealer()

    def get(self, key: str) -> list[dict[str, Any]] | None:
        if self.client is None:
            return None
        try:
            blob = self.client.get(key)
        except redis.RedisError as exc:
            _log.warning("render cache unavailable", error=str(exc))
            return None
        if blob is None:
            return None
        plain = self.sealer.open(blob)  # type: ignore[arg-type]
        if plain is None:
            return None  # sealed under a key this process does not have: a miss
        try:
            return decode(plain)
        except (ValueError, zlib.error) as exc:
            _log.warning("dropping corrupt render cache entry", key=key, error=str(exc))
            return None

    def put(self, key: str, manifests: list[dict[str, Any]]) -> None:
        if self.client is None:
            return
        blob = encode(manifests)
        if holds_secret_data(manifests):
            blob = self.sealer.seal(blob)
        try:
            self.client.set(key, blob, ex=self.ttl)
        except redis.RedisError as exc:
            _log.warning("render cache unavailable", error=str(exc))

    def put_inputs(self, namespace: str, name: str, paths: list[str]) -> None:
        if self.client is None:
            return
        try:
            self.client.set(INPUTS_KEY.format(namespace=namespace, name=name),
                            json.dumps(paths), ex=self.ttl)
        except redis.RedisError as exc:
            _log.warning("render cache unavailable", error=str(exc))


def recorded_inputs(client: redis.Redis, apps: list[tuple[str, str]]
                    ) -> dict[tuple[str, str], list[str]]:
    """{(namespace, name): paths} of the apps whose last render recorded its inputs (one
    round trip). Raises RedisError."""
    if not apps:
        return {}
    values = client.mget([INPUTS_KEY.format(namespace=ns, name=n) for ns, n in apps])
    out: dict[tuple[str, str], list[str]] = {}
    for app, raw in zip(apps, values, strict=True):
        if raw is None:
            continue
        try:
            paths = json.loads(raw)
        except ValueError:
            continue
        if isinstance(paths, list) and all(isinstance(p, str) for p in paths):
            out[app] = paths
    return out
