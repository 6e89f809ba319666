"""Cascade deletion: an Application deleted with the resources finalizer takes its resources
with it, then lets itself go.

Called by the `gitops.prune` task (under the app lock) when the watch or the sweep sees an
Application with a deletionTimestamp. A step deletes what is still there and returns; objects
that take time to go (finalizers, foreground deletion of their dependents) are waited for by
running the step again, never by sleeping. Only objects whose tracking annotation names this
app are deleted. Without the finalizer (ours, `resources-finalizer.gitops-tasks.io`, or Argo
CD's, with the `/background` and `/foreground` variants) the resources are left alone, as in
Argo CD. An app of apps that prunes a child Application therefore cascades: the child gets a
deletionTimestamp, its own cascade runs, and its finalizer is removed once its resources went.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .appstore import AppStore
from .cluster import Destinations, UnknownKind
from .errors import PermanentError
from .log import get_logger
from .model import keys, parse_application
from .model.operation import OperationState
from .model.resources import ResourceKey
from .render.tracking import owner_of
from .sweeping import inventory

Fence = Callable[[], None]

_FINALIZERS = (keys.RESOURCES_FINALIZER, keys.ARGO_RESOURCES_FINALIZER)
_PROPAGATION = {"": "Foreground", "foreground": "Foreground", "background": "Background"}

_log = get_logger(component="deletion")


def resources_finalizer(obj: dict[str, Any]) -> tuple[str, str] | None:
    """(the finalizer as written, the propagation policy it asks for), or None."""
    for finalizer in (obj.get("metadata") or {}).get("finalizers") or []:
        base, _, variant = str(finalizer).partition("/")
        if base in _FINALIZERS and variant in _PROPAGATION:
            return str(finalizer), _PROPAGATION[variant]
    return None


@dataclass(frozen=True)
class CascadeStep:
    done: bool  # the finalizer is gone (or there was none): nothing more to do
    message: str
    remaining: int = 0


class Cascade:
    def __init__(self, apps: AppStore, destinations: Destinations) -> None:
        self.apps = apps
        self.destinations = destinations

    def step(self, obj: dict[str, Any], fence: Fence) -> CascadeStep:
        name = str(obj["metadata"]["name"])
        found = resources_finalizer(obj)
        if found is None:
            return CascadeStep(True, "no resources finalizer: the resources are left in place")
        finalizer, propagation = found
        try:
            app = parse_application(obj)
        except PermanentError as exc:
            raise PermanentError(f"cannot delete the resources of an invalid Application "
                                 f"({exc.message}); fix its spec or remove the finalizer "
                                 f"{finalizer} to delete it without its resources",
                                 app=name) from exc
        cluster = self.destinations.resolve(app.destination)
        remaining = 0
        for key, api_version in self._resources(obj).items():
            try:
                live = cluster.get(api_version, key.kind, key.name, key.namespace)
            except UnknownKind:
                continue  # its CRD is gone, and the objects with it
            if live is None or owner_of(live) != name:
                continue
            remaining += 1
            if (live.get("metadata") or {}).get("deletionTimestamp"):
                continue  # going, waiting for its own finalizers
            fence()
            if cluster.delete(api_version, key.kind, key.name, key.namespace,
                              propagation=propagation):
                _log.info("deleted", app=name, resource=str(key), propagation=propagation)
        if remaining:
            return CascadeStep(False, f"waiting for {remaining} resource(s) to be deleted",
                               remaining)
        self._remove_finalizer(obj, finalizer, fence)
        return CascadeStep(True, "resources deleted; finalizer removed")

    @staticmethod
    def _resources(obj: dict[str, Any]) -> dict[ResourceKey, str]:
        """The recorded inventory plus what the last operation applied (it may have applied
        objects a refresh has not recorded yet)."""
        found = inventory(obj)
        state = OperationState.from_dict((obj.get("status") or {}).get("operationState"))
        for result in state.results if state else []:
            if result.version and result.key.name and result.key not in found:
                group = result.key.group
                found[result.key] = f"{group}/{result.version}" if group else result.version
        return found

    def _remove_finalizer(self, obj: dict[str, Any], finalizer: str, fence: Fence) -> None:
        finalizers = list(obj["metadata"].get("finalizers") or [])
        index = finalizers.index(finalizer)
        name = str(obj["metadata"]["name"])
        # Removed by index, guarded by a test of that index, so a concurrent change to the
        # list never removes someone else's finalizer.
        removed = self.apps.remove_if(name, f"/metadata/finalizers/{index}", finalizer,
                                      fence=fence)
        if not removed:
            fresh = self.apps.get(name)
            if fresh is not None and finalizer in (fresh["metadata"].get("finalizers") or []):
                self._remove_finalizer(fresh, finalizer, fence)
