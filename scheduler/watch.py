"""The Application watch: an Application created, edited, annotated for refresh, given a sync
request or deleted is acted on within a second, without waiting for the sweep.

Run by `gitops-tasks beat` on the elected leader only, next to the sweep schedule. It watches
the control namespace's Applications (a list-then-watch loop that lists again on 410 Expired)
and queues, coalesced:
- a refresh when the spec changed since the last refresh recorded it (a status write, which
  every refresh and sync makes, changes nothing here; a sync request changes the generation
  but not the spec, so generation alone would refresh on every request);
- a refresh (hard if asked) for `gitops-tasks.io/refresh` or Argo CD's `argocd.argoproj.io/refresh`;
- a sync when an operation was requested (`kubectl patch ... operation` works, as in Argo CD);
- a prune (the cascade) when an Application with the resources finalizer is being deleted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from gitops_tasks.cluster import Cluster, WatchExpired
from gitops_tasks.deletion import resources_finalizer
from gitops_tasks.errors import GitOpsError
from gitops_tasks.log import get_logger
from gitops_tasks.model import keys
from gitops_tasks.operations import pending_request
from gitops_tasks.sweeping import SeenStore, app_id, recorded_spec, spec_digest

Enqueue = Callable[..., Any]

_log = get_logger(component="watch")
_REFRESH_ANNOTATIONS = (keys.REFRESH_ANNOTATION, keys.ARGO_REFRESH_ANNOTATION)


def actions(obj: dict[str, Any], recorded_spec: str | None) -> list[tuple[str, bool]]:
    """What one Application event asks for: [(kind, hard)], kind in refresh/sync/prune.
    `recorded_spec` is the spec digest its last refresh saw (None: never refreshed). Pure."""
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return [("prune", False)] if resources_finalizer(obj) is not None else []
    out: list[tuple[str, bool]] = []
    annotations = meta.get("annotations") or {}
    asked = [str(annotations[k]) for k in _REFRESH_ANNOTATIONS if k in annotations]
    if asked:
        out.append(("refresh", "hard" in asked))
    elif recorded_spec != spec_digest(obj):
        out.append(("refresh", False))
    if pending_request(obj) is not None:
        out.append(("sync", False))
    return out


class ApplicationWatch:
    def __init__(self, cluster: Cluster, namespace: str, seen: SeenStore, enqueue: Enqueue,
                 request_hard: Callable[[str, str], None], *, timeout_seconds: int = 10
                 ) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.seen = seen
        self.enqueue = enqueue
        self.request_hard = request_hard
        # Short watches (resumed from where they ended, which costs one request): a stopping
        # leader's watch thread notices the stop within this many seconds.
        self.timeout_seconds = timeout_seconds
        # name -> spec digest this watch last queued a refresh for, so a burst of events for
        # one edit queues one refresh even before the refresh records what it saw.
        self._queued_spec: dict[str, str] = {}

    def run(self, stop: threading.Event) -> None:
        version = ""
        failures = 0
        while not stop.is_set():
            try:
                if not version:
                    # List, then watch from the list's resourceVersion: every Application is
                    # seen once, nothing that changes after the list is missed, and the watch
                    # resumes from a version the server still has (not from an old object's).
                    items, version = self.cluster.list_versioned(
                        keys.API_VERSION, keys.KIND, namespace=self.namespace)
                    for obj in items:
                        self.handle("ADDED", obj)
                for kind, obj in self.cluster.watch(
                        keys.API_VERSION, keys.KIND, namespace=self.namespace,
                        resource_version=version, timeout_seconds=self.timeout_seconds):
                    if stop.is_set():
                        return
                    version = str((obj.get("metadata") or {}).get("resourceVersion") or
                                  version)
                    if kind != "BOOKMARK":
                        self.handle(kind, obj)
                failures = 0
            except WatchExpired:
                version = ""  # too old: list again
            except Exception as exc:  # never let the watch die: the leader would go deaf
                failures += 1
                delay = min(2.0 ** failures, 30.0)
                _log.warning("Application watch failed; watching again", error=str(exc),
                             delay=delay, exc_info=not isinstance(exc, GitOpsError))
                stop.wait(delay)

    def handle(self, kind: str, obj: dict[str, Any]) -> None:
        name = str((obj.get("metadata") or {}).get("name") or "")
        if not name:
            return
        ident = app_id(self.namespace, name)
        if kind == "DELETED":
            self._queued_spec.pop(name, None)
            self.seen.forget(ident)
            return
        recorded = self._queued_spec.get(name)
        if recorded is None:
            stored = self.seen.get_many([ident]).get(ident)
            recorded = recorded_spec(stored[0]) if stored else None
        for what, hard in actions(obj, recorded):
            try:
                if what == "refresh" and hard:
                    self.request_hard(self.namespace, name)
                self.enqueue(what, self.namespace, name)
            except Exception as exc:  # Redis down: the next event (or the sweep) asks again
                _log.warning("could not queue", app=name, task=what, error=str(exc))
                continue
            if what == "refresh":
                self._queued_spec[name] = spec_digest(obj)
            _log.info("queued from the watch", app=name, watch_event=kind, task=what, hard=hard)
