"""Which cluster an Application deploys to: `destination.server` or `destination.name` -> Cluster.

Called by the task layer (once per refresh or sync) and the CLI. Clusters come from three
sources, later ones winning when a name or server appears twice, as in Argo CD where a cluster
Secret overrides the built-in in-cluster entry:

1. the default ApiClient: name `in-cluster`, server `https://kubernetes.default.svc` and its
   own configured host;
2. every context of a kubeconfig: name = context, server = that context's cluster server;
3. cluster Secrets in the control namespace labelled `gitops-tasks.io/secret-type: cluster` or
   Argo CD's `argocd.argoproj.io/secret-type: cluster`, with data `name`, `server` and
   `config` (JSON: bearerToken, username/password, tlsClientConfig).

Secrets are re-read at most every `secrets_ttl` seconds, and once more when a destination is not
found (a cluster just registered). One Cluster per (server, credentials) is kept, so its rate
limit, discovery cache and connection pool are shared by every app that deploys there.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import GitOpsError, PermanentError
from ..log import get_logger
from ..model import keys
from ..model.application import Destination
from .client import Cluster
from .config import api_client_from_cluster_config, api_client_from_kubeconfig
from .secrets import list_secrets
from .throttling import LimiterFactory
from .transport import USER_AGENT

IN_CLUSTER_NAME = "in-cluster"
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
# The value of keys.SECRET_TYPE_LABEL / ARGO_SECRET_TYPE_LABEL on a cluster Secret.
SECRET_TYPE_CLUSTER = keys.SECRET_TYPE_CLUSTER
_SELECTORS = (
    f"{keys.SECRET_TYPE_LABEL}={SECRET_TYPE_CLUSTER}",
    f"{keys.ARGO_SECRET_TYPE_LABEL}={SECRET_TYPE_CLUSTER}",
)

_log = get_logger(component="destinations")


def normalize_server(url: str) -> str:
    """Servers compare without a trailing slash and with scheme and host in lower case."""
    url = url.strip().rstrip("/")
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url.lower()
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{slash}{path}"


@dataclass
class _Entry:
    """One configured cluster; `factory` builds its ApiClient when first resolved."""

    name: str
    servers: tuple[str, ...]  # normalized; the first is the canonical one
    source: str
    fingerprint: str
    factory: Callable[[], Any] = field(repr=False)
    problem: str = ""  # a broken Secret: reported when an app points at it

    @property
    def server(self) -> str:
        return self.servers[0]


class Destinations:
    """Resolves Application destinations to Clusters; thread-safe, one per process."""

    def __init__(
        self,
        default_client: Any | None,
        *,
        kubeconfig: str | None = None,
        control_namespace: str = keys.DEFAULT_CONTROL_NAMESPACE,
        qps: float = 50.0,
        burst: int = 100,
        request_timeout: float = 30.0,
        secrets_ttl: float = 60.0,
        limiter_factory: LimiterFactory | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.default_client = default_client
        self.limiter_factory = limiter_factory
        self.user_agent = user_agent
        self.control_namespace = control_namespace
        self.qps = qps
        self.burst = burst
        self.request_timeout = request_timeout
        self.secrets_ttl = secrets_ttl
        self._lock = threading.Lock()
        self._clusters: dict[str, Cluster] = {}  # fingerprint -> Cluster
        self._secret_entries: list[_Entry] = []
        self._secrets_read_at = float("-inf")
        # Private files for Secret CA and client certificates, removed with this object.
        self._files = tempfile.TemporaryDirectory(prefix="gitops-tasks-clusters-")
        self._default = self._default_entries()
        self._kubeconfig = self._kubeconfig_entries(kubeconfig) if kubeconfig else []

    # ------------------------------------------------------------------ sources

    def _default_entries(self) -> list[_Entry]:
        if self.default_client is None:
            return []
        host = normalize_server(str(self.default_client.configuration.host))
        servers = (host,) if host == IN_CLUSTER_SERVER else (host, IN_CLUSTER_SERVER)
        client = self.default_client
        return [_Entry(IN_CLUSTER_NAME, servers, "the default client", f"default|{host}",
                       lambda: client)]

    def _kubeconfig_entries(self, path: str) -> list[_Entry]:
        try:
            doc = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise PermanentError(f"cannot read kubeconfig {path}: {exc}") from exc
        servers = {
            str(c.get("name")): str((c.get("cluster") or {}).get("server") or "")
            for c in doc.get("clusters") or [] if isinstance(c, dict)
        }
        entries = []
        for ctx in doc.get("contexts") or []:
            if not isinstance(ctx, dict) or not ctx.get("name"):
                continue
            name = str(ctx["name"])
            server = servers.get(str((ctx.get("context") or {}).get("cluster")), "")
            if not server:
                continue
            entries.append(_Entry(
                name, (normalize_server(server),), f"kubeconfig {path} context {name}",
                f"kubeconfig|{path}|{name}",
                functools.partial(api_client_from_kubeconfig, path, name)))
        return entries

    def _entry_from_secret(self, secret: dict[str, Any]) -> _Entry | None:
        meta = secret.get("metadata") or {}
        where = f"cluster Secret {meta.get('namespace', self.control_namespace)}/{meta.get('name')}"
        data = secret.get("data") or {}
        try:
            fields = {k: base64.b64decode(str(v)).decode() for k, v in data.items()
                      if k in ("name", "server", "config")}
        except (binascii.Error, UnicodeDecodeError, ValueError):
            _log.warning("cluster secret unreadable", secret=where)
            return None
        server = fields.get("server", "").strip()
        if not server:
            _log.warning("cluster secret without server", secret=where)
            return None
        name = fields.get("name", "").strip() or server
        fingerprint = "secret|" + hashlib.sha256(
            json.dumps(fields, sort_keys=True).encode()).hexdigest()
        problem = ""
        try:
            cluster_config = json.loads(fields.get("config") or "{}")
            if not isinstance(cluster_config, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            problem, cluster_config = f"{where}: config is not valid JSON ({exc})", {}
        files = Path(self._files.name)
        return _Entry(name, (normalize_server(server),), where, fingerprint,
                      lambda: api_client_from_cluster_config(server, cluster_config,
                                                             files_dir=files, where=where),
                      problem)

    def _read_secrets(self) -> list[_Entry]:
        if self.default_client is None:
            return []
        seen: set[str] = set()
        entries = []
        for selector in _SELECTORS:
            for secret in list_secrets(self.default_client, self.control_namespace, selector):
                uid = str((secret.get("metadata") or {}).get("uid") or id(secret))
                if uid in seen:
                    continue  # labelled both ways
                seen.add(uid)
                entry = self._entry_from_secret(secret)
                if entry is not None:
                    entries.append(entry)
        return entries

    def _entries(self) -> list[_Entry]:
        """Every configured cluster, highest precedence first (within a source: its order)."""
        return [*self._secret_entries, *self._kubeconfig, *self._default]

    def _reread_secrets(self) -> None:
        self._secret_entries = self._read_secrets()
        self._secrets_read_at = time.monotonic()
        # Forget Clusters of Secrets that changed or went away (threads still using one keep
        # it alive until they finish).
        current = {e.fingerprint for e in self._entries()}
        for fingerprint in [f for f in self._clusters if f not in current]:
            del self._clusters[fingerprint]

    # ------------------------------------------------------------------ resolve

    @staticmethod
    def _find(destination: Destination, entries: list[_Entry]) -> _Entry | None:
        server = normalize_server(destination.server) if destination.server else ""
        for entry in entries:
            if server and server not in entry.servers:
                continue
            if destination.name and destination.name != entry.name:
                continue
            return entry
        return None

    def resolve(self, destination: Destination) -> Cluster:
        """The Cluster for `destination`; PermanentError when nothing matches."""
        if not destination.server and not destination.name:
            raise PermanentError("the destination names neither a server nor a cluster name")
        with self._lock:
            listing_error: GitOpsError | None = None
            try:
                reread = time.monotonic() - self._secrets_read_at >= self.secrets_ttl
                if reread:
                    self._reread_secrets()
                entry = self._find(destination, self._entries())
                if entry is None and not reread:
                    # Maybe a cluster registered since the last read: look once more.
                    self._reread_secrets()
                    entry = self._find(destination, self._entries())
            except GitOpsError as exc:
                # Secrets unreadable now: the static sources (and the last read) may answer.
                listing_error = exc
                entry = self._find(destination, self._entries())
            if entry is None:
                if listing_error is not None:
                    raise listing_error
                raise PermanentError(self._unknown_message(destination))
            if entry.problem:
                raise PermanentError(entry.problem)
            cluster = self._clusters.get(entry.fingerprint)
            if cluster is None:
                cluster = Cluster(entry.factory(), name=entry.name, server=entry.server,
                                  qps=self.qps, burst=self.burst,
                                  request_timeout=self.request_timeout,
                                  limiter=(self.limiter_factory(entry.server)
                                           if self.limiter_factory else None),
                                  user_agent=self.user_agent)
                self._clusters[entry.fingerprint] = cluster
            return cluster

    def _unknown_message(self, destination: Destination) -> str:
        if destination.server and destination.name:
            wanted = f"named {destination.name} with server {destination.server}"
        elif destination.server:
            wanted = f"with server {destination.server}"
        else:
            wanted = f"named {destination.name}"
        known = ", ".join(f"{e.name} ({', '.join(e.servers)})" for e in
                          [*self._default, *self._kubeconfig, *self._secret_entries]) or "none"
        return (f"no cluster {wanted} is configured; known: {known} (add a kubeconfig context "
                f"or a cluster Secret in namespace {self.control_namespace})")

    def close(self) -> None:
        """Close the ApiClients this object created (not the default one) and remove files."""
        with self._lock:
            for cluster in self._clusters.values():
                if cluster.api_client is not self.default_client:
                    cluster.api_client.close()
            self._clusters.clear()
        self._files.cleanup()
