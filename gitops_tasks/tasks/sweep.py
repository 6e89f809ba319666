"""`gitops.sweep`: the periodic drift sweep, queued by beat.

mode "full" (every reconciliation interval): find the apps where something moved (see
`gitops_tasks.sweeping`) and queue their refreshes, spread over the jitter; and, like "resume"
(every few seconds): re-queue every requested or running operation that no worker holds the lock
of and no message is queued for (a worker died, Redis lost its queue), and every deletion still
waiting for its cascade. Nothing a user asked for stays stuck longer than one resume interval
after its lock expired.
"""

from __future__ import annotations

import random
import time
from typing import Any

from ..deletion import resources_finalizer
from ..errors import GitOpsError
from ..locks import held_many
from ..log import bound, clear, get_logger
from ..operations import current_state, pending_request
from ..sweeping import SeenStore, Sweeper, app_id
from .app import SWEEP, celery_app
from .context import runtime, settings
from .enqueue import enqueue, request_hard_refresh
from .resolved import publish

_log = get_logger(component="tasks.sweep")
# The sync marker of a step that `refresh._automated_sync` runs inline (no message queued).
_INLINE = "inline-"


@celery_app.task(name=SWEEP, bind=True)
def sweep(self: Any, mode: str = "full") -> None:
    rt = runtime()
    if rt.markers is not None:
        rt.markers.release("sweep", mode, str(self.request.id or ""))
    clear()
    try:
        with bound(task="sweep", task_id=str(self.request.id or ""), mode=mode):
            sweep_now(mode)
    finally:
        clear()


def sweep_now(mode: str = "full") -> dict[str, int]:
    rt = runtime()
    started = time.perf_counter()
    namespace = rt.apps.namespace
    objs = rt.apps.list()
    counts = {"apps": len(objs), "resumed": 0, "cascades": 0, "refreshes": 0, "due": 0}
    _resume(objs, namespace, counts)
    if mode == "full":
        cfg = settings().reconcile
        result = Sweeper(rt.mirrors, rt.destinations, SeenStore(rt.redis), cfg,
                         namespace=namespace,
                         charts=rt.reconciler.manifests.charts).sweep(objs)
        publish(result.shas)
        spread = min(cfg.jitter, cfg.interval / 2)
        counts["due"] = len(result.due)
        for due in result.due:
            if due.hard:
                request_hard_refresh(namespace, due.name)
            queued = enqueue("refresh", namespace, due.name,
                             countdown=random.uniform(0, spread) if spread > 0 else 0.0)
            counts["refreshes"] += queued is not None
        counts.update(repos=result.repos, lists=result.lists)
        for problem in result.problems[:20]:
            _log.warning("sweep problem", problem=problem)
    _log.info("swept", mode=mode, seconds=round(time.perf_counter() - started, 3), **counts)
    return counts


def _resume(objs: list[dict[str, Any]], namespace: str, counts: dict[str, int]) -> None:
    rt = runtime()
    assert rt.redis is not None and rt.markers is not None
    wants_sync, wants_prune = [], []
    for obj in objs:
        name = str(obj["metadata"]["name"])
        if (obj.get("metadata") or {}).get("deletionTimestamp"):
            if resources_finalizer(obj) is not None:
                wants_prune.append(name)
            continue
        state = current_state(obj)
        if pending_request(obj) is not None or (state is not None and state.in_progress):
            wants_sync.append(name)
    if not wants_sync and not wants_prune:
        return
    ids = {n: app_id(namespace, n) for n in [*wants_sync, *wants_prune]}
    held = held_many(rt.redis, ids.values())
    for kind, names in (("sync", wants_sync), ("prune", wants_prune)):
        queued = rt.markers.queued_many(kind, [ids[n] for n in names])
        for name in names:
            if ids[name] in held:
                continue
            marker = queued.get(ids[name])
            if marker is not None:
                if not marker.startswith(_INLINE):
                    continue
                # A step run inline by a refresh is covered by the app lock, not by a queued
                # message: with the lock free, its worker died during the step (the marker
                # would block this sweep until the marker TTL). Drop that marker, if still it.
                rt.markers.release(kind, ids[name], marker)
            try:
                if enqueue(kind, namespace, name) is not None:
                    counts["resumed" if kind == "sync" else "cascades"] += 1
                    _log.info("resumed", app=name, kind=kind)
            except GitOpsError as exc:
                _log.warning("could not resume", app=name, kind=kind, error=str(exc))
