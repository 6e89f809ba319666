"""Settings, grouped by concern and read once from the environment (`GITOPS_TASKS_*`).

Every process (worker, beat, webhook, CLI) calls `load()` at start-up and passes the groups it
needs down; nothing below reads the environment itself, so tests build settings explicitly.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_PREFIX = "GITOPS_TASKS_"


@dataclass(frozen=True)
class GitSettings:
    # Bare mirrors, one per normalised repo URL, shared by the worker processes of a host.
    cache_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "gitops-tasks"
                            / "git")
    # Seconds a git network operation may take before it counts as unreachable.
    timeout: float = 60.0
    max_file_bytes: int = 8 * 1024 * 1024
    max_repo_bytes: int = 1024 * 1024 * 1024
    # Seconds a resolved branch or tag is trusted before asking the remote again.
    resolve_ttl: float = 0.0
    # Exported commit trees kept per repository (least recently used go first, and only once a
    # new tree is extracted); the tree just exported always stays, even with 0.
    max_trees_per_repo: int = 20
    # Seconds a tree must have gone unused before it may be evicted: readers take no lock, so
    # this must exceed the longest a render keeps using a tree after export() returned it.
    tree_min_idle_seconds: float = 600.0


@dataclass(frozen=True)
class RenderSettings:
    tool_timeout: float = 90.0
    # Config-management plugins: name -> shell-free command (argv), run in the app's directory.
    plugins: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    max_output_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class RedisSettings:
    url: str = "redis://127.0.0.1:6379/0"
    # Rendered manifests are immutable per commit: keep them a week unless evicted.
    render_cache_ttl: int = 7 * 24 * 3600


@dataclass(frozen=True)
class ClusterSettings:
    # Client-side rate limit per destination cluster, so a big sync cannot flood an API server.
    qps: float = 50.0
    burst: int = 100
    request_timeout: float = 30.0
    # Seconds a hook (PreSync/PostSync Job...) may run before the sync counts it as failed.
    hook_timeout: float = 300.0


@dataclass(frozen=True)
class Settings:
    git: GitSettings = field(default_factory=GitSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    render: RenderSettings = field(default_factory=RenderSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    control_namespace: str = "gitops-tasks"


def _parse_plugins(text: str) -> dict[str, tuple[str, ...]]:
    """`name=cmd arg arg;other=cmd` -> {name: argv}."""
    import shlex

    plugins: dict[str, tuple[str, ...]] = {}
    for part in text.split(";"):
        name, sep, command = part.partition("=")
        if sep and name.strip() and command.strip():
            plugins[name.strip()] = tuple(shlex.split(command))
    return plugins


def load(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env

    def get(name: str, default: str) -> str:
        return env.get(_PREFIX + name, default)

    git_defaults = GitSettings()
    render_defaults = RenderSettings()
    redis_defaults = RedisSettings()
    return Settings(
        git=GitSettings(
            cache_dir=Path(get("GIT_CACHE_DIR", str(git_defaults.cache_dir))),
            timeout=float(get("GIT_TIMEOUT", str(git_defaults.timeout))),
            max_file_bytes=int(get("GIT_MAX_FILE_BYTES", str(git_defaults.max_file_bytes))),
            max_repo_bytes=int(get("GIT_MAX_REPO_BYTES", str(git_defaults.max_repo_bytes))),
            resolve_ttl=float(get("GIT_RESOLVE_TTL", str(git_defaults.resolve_ttl))),
            max_trees_per_repo=int(get("GIT_MAX_TREES", str(git_defaults.max_trees_per_repo))),
            tree_min_idle_seconds=float(get("GIT_TREE_MIN_IDLE",
                                            str(git_defaults.tree_min_idle_seconds))),
        ),
        render=RenderSettings(
            tool_timeout=float(get("RENDER_TIMEOUT", str(render_defaults.tool_timeout))),
            plugins=_parse_plugins(get("PLUGINS", "")),
            max_output_bytes=int(get("RENDER_MAX_OUTPUT_BYTES",
                                     str(render_defaults.max_output_bytes))),
        ),
        redis=RedisSettings(
            url=get("REDIS_URL", redis_defaults.url),
            render_cache_ttl=int(get("RENDER_CACHE_TTL", str(redis_defaults.render_cache_ttl))),
        ),
        cluster=ClusterSettings(
            qps=float(get("KUBE_QPS", str(ClusterSettings.qps))),
            burst=int(get("KUBE_BURST", str(ClusterSettings.burst))),
            request_timeout=float(get("KUBE_TIMEOUT", str(ClusterSettings.request_timeout))),
            hook_timeout=float(get("HOOK_TIMEOUT", str(ClusterSettings.hook_timeout))),
        ),
        control_namespace=get("NAMESPACE", "gitops-tasks"),
    )
