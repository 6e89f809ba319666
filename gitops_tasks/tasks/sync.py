"""`gitops.sync` (one step of an app's operation) and `gitops.prune` (cascade deletion, or
deleting just what left Git), each under the app's fenced lock.

Queued when a sync is requested (automated policy, CLI, API), by themselves with the countdown
the step returned while resources progress, and by the sweep for any operation no worker is
running. A step holds the lock for seconds, not for the whole operation: the lock's heartbeat
keeps it while the step runs, and every write first checks it is still held, so a worker that
was paused past the TTL (or partitioned from Redis) stops before its next write.
"""

from __future__ import annotations

import time
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from .. import metrics
from ..appstore import AppNotFound
from ..comparison import Comparison
from ..deletion import Cascade
from ..diff import ResourceStatus
from ..errors import GitOpsError, InvalidApplication, LockBusy, LockLost, TransientError
from ..locks import AppLock
from ..log import bind, get_logger
from ..model import parse_application
from ..model import status as st
from ..model.operation import OperationState, SyncRequest
from ..operations import ClusterState, OperationInProgress, pending_request, request_sync
from ..sweeping import SeenStore, app_id, compared_fingerprint
from .app import PRUNE, SYNC, celery_app
from .base import running
from .context import runtime, settings
from .enqueue import enqueue
from .refresh import follow_progress

_log = get_logger(component="tasks.sync")


@celery_app.task(name=SYNC, bind=True)
def sync(self: Any, namespace: str, name: str) -> None:
    with running(self, "sync", namespace, name) as ok:
        if ok:
            sync_step(namespace, name)


def sync_step(namespace: str, name: str, comparison: Comparison | None = None) -> None:
    """One step of the app's operation. `comparison`: the refresh that just requested it
    compared at that revision a moment ago (see `refresh`): the first step needs no other."""
    started = time.monotonic()
    outcome = "error"
    try:
        outcome = _sync_step(namespace, name, comparison)
    finally:
        metrics.sync_step_done(outcome, time.monotonic() - started)


def _sync_step(namespace: str, name: str, comparison: Comparison | None) -> str:
    """The step; returns what became of it (the metrics' `outcome`)."""
    rt = runtime()
    poll = settings().tasks.sync_poll_interval
    lock = _lock(namespace, name)
    try:
        if not lock.acquire():
            # Whoever holds it re-queues the operation if it needs more; this retry only
            # covers a request that landed just as they finished, so it need not be eager.
            metrics.lock_busy()
            enqueue("sync", namespace, name, countdown=max(poll, 1.0))
            return "busy"
    except LockBusy as exc:
        _log.warning("cannot take the app lock", error=exc.message)
        metrics.lock_busy()
        enqueue("sync", namespace, name, countdown=poll)
        return "busy"
    try:
        with lock.holding():
            bind(lock_epoch=lock.epoch)
            # Read under the lock: what the previous holder wrote is in it.
            obj = rt.apps.get(name)
            if obj is None:
                return "stopped"
            if (obj.get("metadata") or {}).get("deletionTimestamp"):
                enqueue("prune", namespace, name)
                return "stopped"
            try:
                app = parse_application(obj)
            except InvalidApplication as exc:
                _fail_invalid(obj, exc, lock.check)
                metrics.sync_finished(st.ERROR_PHASE)
                return "finished"
            store = ClusterState(rt.apps, app, lock.check, obj=obj)
            outcome = rt.reconciler.stepper.step(app, store, fence=lock.check,
                                                 comparison=comparison)
    except LockLost as exc:
        _log.warning("lost the app lock; stopped before the next write", reason=exc.reason)
        metrics.lock_lost()
        enqueue("sync", namespace, name, countdown=poll)
        return "lost"
    except SoftTimeLimitExceeded:
        _log.warning("sync step ran past its soft time limit; continuing in a new step")
        enqueue("sync", namespace, name, countdown=poll)
        return "timeout"
    except (AppNotFound, OperationInProgress) as exc:
        _log.info("sync step stopped", reason=exc.message)
        return "stopped"
    if outcome.state is not None:
        bind(operation=outcome.state.operation.id, revision=outcome.state.revision)
    _log.info("sync step", phase=outcome.state.phase if outcome.state else None,
              message=outcome.message, requeue_after=outcome.requeue_after,
              applied=len(outcome.applied))
    if outcome.requeue_after is not None:
        enqueue("sync", namespace, name, countdown=outcome.requeue_after)
    state = outcome.state
    if state is None or not state.completed or outcome.requeue_after is not None:
        return "continued" if outcome.requeue_after is not None else "idle"
    metrics.sync_finished(state.phase)
    if state.succeeded and outcome.comparison is not None and not state.operation.sync.dry_run:
        # The last step recorded the post-sync status itself; the sweep needs its
        # fingerprint, and an app still rolling out a follow-up refresh.
        SeenStore(rt.redis).put(app_id(namespace, name),
                                compared_fingerprint(outcome.comparison, obj))
        follow_progress(namespace, name, outcome.comparison.health.status, 0)
    else:
        enqueue("refresh", namespace, name)  # what a failed (or dry-run) sync left
    return "finished"


def _lock(namespace: str, name: str) -> AppLock:
    rt = runtime()
    assert rt.redis is not None
    return AppLock(rt.redis, app_id(namespace, name), ttl=settings().tasks.lock_ttl)


def _fail_invalid(obj: dict[str, Any], exc: InvalidApplication, fence: Any) -> None:
    """An operation requested on an Application whose spec is invalid ends in Error."""
    rt = runtime()
    name = str(obj["metadata"]["name"])
    request = pending_request(obj)
    state = OperationState.from_dict((obj.get("status") or {}).get("operationState"))
    if request is not None:
        state = OperationState(operation=request)
    if state is None or state.completed:
        return
    state.phase, state.message, state.finished_at = st.ERROR_PHASE, exc.message, st.now()
    store = ClusterState(rt.apps, name, fence, obj=obj)
    store.load()
    store.save(state)
    store.clear_request(state.operation.id)


@celery_app.task(name=PRUNE, bind=True)
def prune(self: Any, namespace: str, name: str) -> None:
    with running(self, "prune", namespace, name) as ok:
        if ok:
            prune_step(namespace, name)


def prune_step(namespace: str, name: str) -> None:
    """A deleted Application: cascade. Otherwise: delete what left Git now, as a sync of just
    those objects with prune (the same step function, the same lock)."""
    rt = runtime()
    poll = settings().tasks.sync_poll_interval
    obj = rt.apps.get(name)
    if obj is None:
        SeenStore(rt.redis).forget(app_id(namespace, name))
        return
    if not (obj.get("metadata") or {}).get("deletionTimestamp"):
        _prune_removed(namespace, name, obj)
        return
    lock = _lock(namespace, name)
    try:
        if not lock.acquire():
            enqueue("prune", namespace, name, countdown=poll)
            return
    except LockBusy:
        enqueue("prune", namespace, name, countdown=poll)
        return
    try:
        with lock.holding():
            step = Cascade(rt.apps, rt.destinations).step(obj, lock.check)
    except LockLost as exc:
        _log.warning("lost the app lock; stopped before the next write", reason=exc.reason)
        enqueue("prune", namespace, name, countdown=poll)
        return
    except TransientError as exc:
        _log.info("transient error while deleting; retrying", error=exc.message)
        enqueue("prune", namespace, name, countdown=poll)
        return
    except GitOpsError as exc:
        _log.error("cannot delete the Application's resources", error=str(exc))
        return
    _log.info("cascade step", done=step.done, message=step.message, remaining=step.remaining)
    if not step.done:
        enqueue("prune", namespace, name, countdown=poll)
    else:
        SeenStore(rt.redis).forget(app_id(namespace, name))


def _prune_removed(namespace: str, name: str, obj: dict[str, Any]) -> None:
    rt = runtime()
    try:
        app = parse_application(obj)
        cmp = rt.reconciler.compare(app, dict(obj.get("status") or {}))
    except GitOpsError as exc:
        _log.warning("cannot prune", error=str(exc))
        return
    gone = tuple(sorted(k for k, d in cmp.diffs.items()
                        if d.status == ResourceStatus.REQUIRES_PRUNING))
    if not gone:
        _log.info("nothing to prune")
        return
    request_sync(rt.apps, name, SyncRequest(revision=cmp.revision, prune=True, resources=gone),
                 initiated_by="prune")
    enqueue("sync", namespace, name)
