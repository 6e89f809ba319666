"""Applications (and their status) in the control cluster's control namespace.

Read and written by the reconciler (and later the tasks); the only place that knows how an
Application's status is stored.
"""

from __future__ import annotations

from typing import Any

from .cluster import Cluster, UnknownKind
from .model import keys


class AppStore:
    """Applications (and their status) in the control cluster's control namespace."""

    def __init__(self, cluster: Cluster, namespace: str = keys.DEFAULT_CONTROL_NAMESPACE) -> None:
        self.cluster = cluster
        self.namespace = namespace

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            return self.cluster.get(keys.API_VERSION, keys.KIND, name, self.namespace)
        except UnknownKind:
            return None

    def list(self) -> list[dict[str, Any]]:
        try:
            return self.cluster.list(keys.API_VERSION, keys.KIND, namespace=self.namespace)
        except UnknownKind:
            return []

    def write_status(self, name: str, status: dict[str, Any],
                     previous: dict[str, Any] | None = None) -> None:
        """Replace the status: a merge patch that also nulls what `previous` had and `status`
        dropped (a plain merge patch would keep, say, a stale health message)."""
        self.cluster.patch_status(keys.API_VERSION, keys.KIND, name, self.namespace,
                                  _replacing_merge_patch(previous or {}, status))


def _replacing_merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(old.get(k), dict):
            patch[k] = _replacing_merge_patch(old[k], v)
        else:
            patch[k] = v
    for k in old:
        if k not in new:
            patch[k] = None
    return patch
