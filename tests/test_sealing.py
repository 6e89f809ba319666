"""Secret data never sits in Redis in clear: render and dry-run cache entries that hold it are
sealed with the configured Fernet keys, or without one under a key only the writing process
holds. Proven by reading
every value Redis holds, not by the caches' own bookkeeping."""

from __future__ import annotations

import base64
import contextlib
import zlib
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from gitops_tasks.diff.cache import DryRunCache, manifest_hash
from gitops_tasks.manifests import ManifestSource
from gitops_tasks.render.cache import RenderCache
from gitops_tasks.sealing import SEALED, Sealer
from gitops_tasks.settings import GitSettings, SettingsError, load
from gitops_tasks.source import GitMirrors
from tests.source.gitservers import Origin
from tests.test_manifests import application

PASSWORD = "hunter2-very-secret"
SECRET = f"""\
apiVersion: v1
kind: Secret
metadata: {{name: creds}}
stringData: {{password: {PASSWORD}}}
"""
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\ndata: {mode: fast}\n"


def stored(redis_client: Any) -> list[bytes]:
    """Every value in Redis, decompressed where it is a zlib stream."""
    out = []
    for key in redis_client.scan_iter():
        if redis_client.type(key) != b"string":
            continue
        value = redis_client.get(key)
        with contextlib.suppress(zlib.error):
            value = zlib.decompress(value)
        out.append(value)
    return out


def in_clear(redis_client: Any) -> bool:
    b64 = base64.b64encode(PASSWORD.encode())
    return any(PASSWORD.encode() in v or b64 in v for v in stored(redis_client))


@pytest.fixture
def origin(tmp_path: Path) -> Origin:
    repo = Origin(tmp_path / "served", tmp_path / "work", "repo")
    repo.commit({"apps/web/secret.yaml": SECRET, "apps/plain/cm.yaml": CM})
    return repo


def source(tmp_path: Path, redis_client: Any, sealer: Sealer) -> ManifestSource:
    mirrors = GitMirrors(GitSettings(cache_dir=tmp_path / "cache"))
    return ManifestSource(mirrors, RenderCache(redis_client, sealer=sealer))


def test_without_a_key_renders_holding_secrets_help_only_their_process(
        tmp_path: Path, origin: Origin, redis_client: Any) -> None:
    redis_client.flushdb()
    src = source(tmp_path, redis_client, Sealer())
    secret_app = application(origin.file_url, name="web", path="apps/web")
    first = src.manifests(secret_app)
    assert first.manifests[0]["stringData"]["password"] == PASSWORD
    assert src.manifests(secret_app, sha=first.revision).cached
    # Another process (another Sealer without a key) cannot open it: a miss, not a failure.
    other = source(tmp_path, redis_client, Sealer()).manifests(secret_app, sha=first.revision)
    assert not other.cached and other.manifests == first.manifests
    plain_app = application(origin.file_url, name="plain", path="apps/plain")
    src.manifests(plain_app)
    assert src.manifests(plain_app, sha=first.revision).cached
    assert not in_clear(redis_client)


def test_with_a_key_they_are_sealed_reused_and_opened_after_a_rotation(
        tmp_path: Path, origin: Origin, redis_client: Any) -> None:
    redis_client.flushdb()
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    src = source(tmp_path, redis_client, Sealer([old]))
    app = application(origin.file_url, name="web", path="apps/web")
    cold = src.manifests(app)
    assert src.manifests(app, sha=cold.revision).cached
    assert not in_clear(redis_client)
    assert any(redis_client.get(k).startswith(SEALED) for k in redis_client.scan_iter("*render*"))
    # Rotated: the new key seals, the old one still opens what it sealed.
    rotated = source(tmp_path, redis_client, Sealer([new, old]))
    hit = rotated.manifests(app, sha=cold.revision)
    assert hit.cached and hit.manifests == cold.manifests
    # A process with another key (or none) misses and renders, it does not fail.
    for sealer in (Sealer([Fernet.generate_key().decode()]), Sealer()):
        other = source(tmp_path, redis_client, sealer).manifests(app, sha=cold.revision)
        assert not other.cached and other.manifests == cold.manifests


def test_dry_run_results_holding_secret_data_are_always_sealed(redis_client: Any) -> None:
    redis_client.flushdb()
    predicted = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                 "data": {"password": base64.b64encode(PASSWORD.encode()).decode()}}
    h = manifest_hash(predicted)
    own = DryRunCache(redis_client)
    own.put("https://c.example.com", h, "7", predicted)
    assert not in_clear(redis_client)
    assert own.get("https://c.example.com", h, "7") == predicted
    assert DryRunCache(redis_client).get("https://c.example.com", h, "7") is None
    sealer = Sealer([Fernet.generate_key().decode()])
    DryRunCache(redis_client, sealer=sealer).put("https://c.example.com", h, "7", predicted)
    assert not in_clear(redis_client)
    assert DryRunCache(redis_client, sealer=sealer).get("https://c.example.com", h, "7") == \
        predicted
    assert DryRunCache(redis_client).get("https://c.example.com", h, "7") is None


def test_a_bad_key_is_named_without_its_value() -> None:
    with pytest.raises(SettingsError) as info:
        load({"GITOPS_TASKS_CACHE_ENCRYPTION_KEYS": "not-a-fernet-key-at-all"})
    assert "GITOPS_TASKS_CACHE_ENCRYPTION_KEYS: expected Fernet keys" in str(info.value)
    assert "not-a-fernet" not in str(info.value)
    key = Fernet.generate_key().decode()
    assert load({"GITOPS_TASKS_CACHE_ENCRYPTION_KEYS": f"{key}, {key}"}).redis \
        .cache_encryption_keys == (key, key)
