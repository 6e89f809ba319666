"""The engine objects one process needs, built once from the settings: clusters, the Application
store, Git mirrors, caches, the reconciler, and the Redis client shared by caches, locks and
queue markers.

Called by the CLI (in-process commands) and by the task layer, which builds one per worker
process *after* the fork (connection pools must not be shared across processes). Plain Python:
nothing here knows about Celery.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from . import __version__
from .appstore import AppStore
from .charts.store import ChartRepositories
from .cluster import USER_AGENT, Cluster, Destinations, Limiter, load_api_client
from .diff import DryRunCache
from .health_config import HealthConfig
from .locks import QueueMarkers, RedisTokenBucket
from .log import get_logger
from .manifests import ManifestSource
from .reconcile import Reconciler
from .redisconn import client_from_url
from .render.cache import RenderCache
from .repo_credentials import ClusterRepoCredentials
from .sealing import Sealer
from .settings import Settings
from .source import GitMirrors

_log = get_logger(component="runtime")


def user_agent(role: str) -> str:
    """`gitops-tasks/<version> (<role>; <host>; pid <pid>)`: the API server's audit log and
    kubesim's request log tell every process apart."""
    return f"{USER_AGENT}/{__version__} ({role}; {socket.gethostname()}; pid {os.getpid()})"


def default_kubeconfig(explicit: str | None) -> str | None:
    path = explicit or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
    if path is None and Path("~/.kube/config").expanduser().exists():
        path = str(Path("~/.kube/config").expanduser())
    return path


def redis_or_none(url: str, sentinel_master: str, *, timeout: float = 2.0) -> redis.Redis | None:
    """A client when Redis answers now, else None (the in-process CLI works without one)."""
    try:
        client = client_from_url(url, sentinel_master=sentinel_master, socket_timeout=timeout,
                                 socket_connect_timeout=min(timeout, 0.5), retries=0)
        client.ping()
    except (redis.RedisError, ValueError, OSError):
        return None
    return client


@dataclass
class Runtime:
    settings: Settings
    api_client: Any
    control: Cluster
    destinations: Destinations
    apps: AppStore
    mirrors: GitMirrors
    reconciler: Reconciler
    redis: redis.Redis | None
    markers: QueueMarkers | None
    health: HealthConfig | None = None

    @classmethod
    def build(cls, settings: Settings, *, role: str, kubeconfig: str | None = None,
              context: str | None = None, require_redis: bool = False) -> Runtime:
        kubeconfig = default_kubeconfig(kubeconfig)
        api_client = load_api_client(kubeconfig, context)
        if require_redis:
            client: redis.Redis | None = client_from_url(
                settings.redis.url, sentinel_master=settings.redis.sentinel_master)
        else:
            client = redis_or_none(settings.redis.url, settings.redis.sentinel_master)
        cfg = settings.cluster
        agent = user_agent(role)

        def limiter(server: str) -> Limiter:
            # One bucket per API server for every worker process on every host.
            assert client is not None
            return RedisTokenBucket(client, f"api:{server}", qps=cfg.qps, burst=cfg.burst)

        destinations = Destinations(api_client, kubeconfig=kubeconfig,
                                    control_namespace=settings.control_namespace,
                                    qps=cfg.qps, burst=cfg.burst,
                                    request_timeout=cfg.request_timeout,
                                    limiter_factory=limiter if client is not None else None,
                                    user_agent=agent)
        control = Cluster(api_client, name="control", qps=cfg.qps, burst=cfg.burst,
                          request_timeout=cfg.request_timeout, user_agent=agent,
                          limiter=limiter(str(api_client.configuration.host))
                          if client is not None else None)
        apps = AppStore(control, settings.control_namespace)
        credentials = ClusterRepoCredentials(api_client, settings.control_namespace)
        mirrors = GitMirrors(settings.git, credentials)
        sealer = Sealer(settings.redis.cache_encryption_keys)
        charts = ChartRepositories(settings.git.cache_dir, credentials.helm,
                                   timeout=settings.render.helm_timeout,
                                   max_bytes=settings.render.helm_max_download_bytes)
        manifests = ManifestSource(mirrors, RenderCache(client, settings.redis.render_cache_ttl,
                                                        sealer), settings.render, charts)
        health = HealthConfig(control, settings.control_namespace,
                              settings.health.customizations_dir)
        reconciler = Reconciler(manifests, destinations, apps=apps,
                                dry_run_cache=DryRunCache(client, sealer=sealer),
                                hook_timeout=cfg.hook_timeout, tasks=settings.tasks,
                                reconcile=settings.reconcile, customizations=health.current)
        markers = QueueMarkers(client, ttl=settings.tasks.queued_ttl) if client else None
        return cls(settings, api_client, control, destinations, apps, mirrors, reconciler,
                   client, markers, health)

    def close(self) -> None:
        self.destinations.close()
        self.api_client.close()
        if self.redis is not None:
            self.redis.close()
