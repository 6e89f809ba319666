"""Applications (and their status) in the control cluster's control namespace.

Read and written by the reconciler, the sync step function and the tasks; the only place that
knows how an Application's status and operation are stored. Every write that builds on what it
read carries that read's resourceVersion (optimistic concurrency): two processes can never
overwrite each other's status, inventory or history, and a conflict is resolved by reading
again and re-applying the change (`update_status`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from .cluster import ApiConflict, ApiPermanent, Cluster, UnknownKind
from .errors import PermanentError, TransientError
from .log import get_logger
from .model import keys

Fence = Callable[[], None]
# Tries of a read-modify-write before giving up on an Application that keeps changing.
_CONFLICT_RETRIES = 10

_log = get_logger(component="appstore")


def _no_fence() -> None:
    return None


class AppNotFound(PermanentError):
    """The Application is not (or no longer) in the control namespace."""


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
                     previous: dict[str, Any] | None = None,
                     resource_version: str = "") -> dict[str, Any]:
        """Replace the status: a merge patch that also nulls what `previous` had and `status`
        dropped (a plain merge patch would keep, say, a stale health message). With
        `resource_version` the write fails with ApiConflict if the object changed since."""
        patch: dict[str, Any] = {"status": _replacing_merge_patch(previous or {}, status)}
        if resource_version:
            patch["metadata"] = {"resourceVersion": resource_version}
        return self.cluster.patch(keys.API_VERSION, keys.KIND, name, self.namespace, patch,
                                  subresource=self._status_subresource())

    def _status_subresource(self) -> str:
        info = self.cluster.resource(keys.API_VERSION, keys.KIND)
        return "status" if "status" in info.subresources else ""

    def update_status(
        self,
        name: str,
        change: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None],
        *,
        fence: Fence = _no_fence,
        current: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Read-modify-write of the status: `change(status, obj)` gets a copy of the current
        status (and the object, read-only) and returns the new status, or None to write
        nothing. On a conflict the object is read again and `change` called again, so it must
        be a function of what it is given. `current`: the object as just read (saves the first
        GET). Returns the object as written (or as read)."""
        for _ in range(_CONFLICT_RETRIES):
            obj, current = (current, None) if current is not None else (self.get(name), None)
            if obj is None:
                raise AppNotFound(f"Application {name} is not in namespace {self.namespace} "
                                  "(deleted?)", app=name)
            status = dict(obj.get("status") or {})
            new = change(copy.deepcopy(status), obj)
            if new is None or new == status:
                return obj
            fence()
            try:
                return self.write_status(name, new, status,
                                         str(obj["metadata"]["resourceVersion"]))
            except ApiConflict as exc:
                if exc.reason == "AlreadyExists":
                    raise
                _log.debug("status write conflict, reading again", app=name)
        raise TransientError(f"the status of Application {name} kept changing under "
                             f"{_CONFLICT_RETRIES} writes; trying again later", app=name)

    def patch(self, name: str, patch: Any, *, fence: Fence = _no_fence,
              patch_type: str = "merge") -> dict[str, Any]:
        """A patch of the Application itself (not its status), e.g. its `operation`."""
        fence()
        return self.cluster.patch(keys.API_VERSION, keys.KIND, name, self.namespace, patch,
                                  patch_type=patch_type)

    def remove_if(self, name: str, path: str, value: Any, *, remove: str = "",
                  fence: Fence = _no_fence) -> dict[str, Any] | None:
        """Remove `remove` (default: `path` itself) only while `path` still holds `value` (a
        JSON patch `test`): e.g. clear `/operation` only if `/operation/id` is the finished
        operation's, so a newer request is never lost. Returns the patched object, or None
        when the test failed or the Application is gone."""
        ops = [{"op": "test", "path": path, "value": value},
               {"op": "remove", "path": remove or path}]
        try:
            return self.patch(name, ops, fence=fence, patch_type="json")
        except (ApiPermanent, ApiConflict):
            return None


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
