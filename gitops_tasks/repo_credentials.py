"""Repository credentials from the cluster, as a lookup `GitMirrors` calls per repo URL.

Lists the Secrets labelled as repository credentials (ours and Argo CD's label) in the control
namespace through the cluster layer, turns them into `RepoCredentials` with the source layer's
pure functions, and caches them briefly so a sweep over thousands of apps lists them once.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .cluster import list_secrets
from .errors import GitOpsError
from .log import get_logger
from .model import keys
from .source import (
    RepoCredentials,
    credentials_from_secrets,
    match_credentials,
    match_helm_credentials,
)

_log = get_logger(component="repo-credentials")
# How soon a failed list of credential Secrets is tried again.
_RETRY_SECONDS = 5.0
_SELECTORS = (
    f"{keys.SECRET_TYPE_LABEL} in ({keys.SECRET_TYPE_REPOSITORY},{keys.SECRET_TYPE_REPO_CREDS})",
    f"{keys.ARGO_SECRET_TYPE_LABEL} in "
    f"({keys.SECRET_TYPE_REPOSITORY},{keys.SECRET_TYPE_REPO_CREDS})",
)


class ClusterRepoCredentials:
    """Callable: Git repo URL -> the credentials that apply to it, or None; `helm` does the same
    for Helm chart repositories."""

    def __init__(self, api_client: Any, namespace: str, ttl: float = 30.0,
                 retry: float = _RETRY_SECONDS) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.ttl = ttl
        self.retry = retry
        self._lock = threading.Lock()
        self._loaded_at = float("-inf")
        self._creds: list[RepoCredentials] = []

    def _refresh(self) -> list[RepoCredentials]:
        with self._lock:
            if time.monotonic() - self._loaded_at < self.ttl:
                return self._creds
            secrets: dict[str, dict[str, Any]] = {}
            try:
                for selector in _SELECTORS:
                    for s in list_secrets(self.api_client, self.namespace, selector):
                        secrets[s.get("metadata", {}).get("uid", id(s))] = s
            except GitOpsError as exc:
                # Most repositories need no credentials: a failed list (no RBAC for Secrets,
                # an API server hiccup) must not fail them. Keep what was known, say why a
                # private one may fail, and ask again soon.
                self._loaded_at = time.monotonic() - self.ttl + min(self.ttl, self.retry)
                _log.warning("repository credentials could not be listed; repositories that "
                             "need them may fail", namespace=self.namespace, error=str(exc),
                             known=len(self._creds))
                return self._creds
            self._creds = credentials_from_secrets(list(secrets.values()))
            self._loaded_at = time.monotonic()
            _log.debug("repository credentials loaded", count=len(self._creds),
                       namespace=self.namespace)
            return self._creds

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = float("-inf")

    def __call__(self, repo_url: str) -> RepoCredentials | None:
        return match_credentials(repo_url, self._refresh())

    def helm(self, repo_url: str) -> RepoCredentials | None:
        """The credentials of a Helm repository (a Secret with `type: helm`), or None."""
        return match_helm_credentials(repo_url, self._refresh())
