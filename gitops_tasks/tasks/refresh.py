"""`gitops.refresh`: compare one app's Git with its cluster, record status, and start the
automated sync when the policy says so.

Queued by the sweep (something moved, or the hard-refresh interval passed), the Application
watch (created, edited, annotated for refresh), the sync task (after an operation), the CLI and
later the webhook receiver. Transient failures re-queue the refresh with a backoff; permanent
ones are recorded on the Application (ComparisonError, InvalidSpecError) and not retried until
the commit or the spec changes.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from .. import metrics
from ..comparison import Comparison
from ..errors import GitOpsError, InvalidApplication, PermanentError, TransientError
from ..health import HealthStatus
from ..log import bind, get_logger
from ..model import Application, keys, parse_application
from ..model import status as st
from ..model.operation import SyncRequest
from ..operations import current_state, pending_request, request_sync
from ..retries import exponential, jittered
from ..sweeping import SeenStore, app_id, compared_fingerprint, error_fingerprint, spec_digest
from . import context
from .app import REFRESH, celery_app
from .base import running
from .context import runtime, settings
from .enqueue import enqueue, take_hard_refresh
from .resolved import REFRESH_TTL_SECONDS, publish, resolved_sha

_log = get_logger(component="tasks.refresh")
# Refreshes that follow a Progressing app (after 1, 2, 4, ... 30 s: about 5 minutes in all).
_PROGRESS_CHECKS = 12
_REFRESH_ANNOTATIONS = (keys.REFRESH_ANNOTATION, keys.ARGO_REFRESH_ANNOTATION)


@celery_app.task(name=REFRESH, bind=True)
def refresh(self: Any, namespace: str, name: str, attempt: int = 1, progress: int = 0) -> None:
    with running(self, "refresh", namespace, name) as ok:
        if ok:
            refresh_now(namespace, name, attempt, progress)


def refresh_now(namespace: str, name: str, attempt: int = 1, progress: int = 0) -> None:
    started = time.monotonic()
    rt = runtime()
    seen = SeenStore(rt.redis)
    ident = app_id(namespace, name)
    obj = rt.apps.get(name)
    if obj is None:
        seen.forget(ident)
        return
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        enqueue("prune", namespace, name)
        return
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    asked = [annotations[k] for k in _REFRESH_ANNOTATIONS if k in annotations]
    hard = take_hard_refresh(namespace, name) or "hard" in asked
    spec = spec_digest(obj)
    try:
        app = parse_application(obj)
    except InvalidApplication as exc:
        _record_invalid(name, exc)
        metrics.refresh_done("invalid", time.monotonic() - started)
        seen.put(ident, error_fingerprint("", spec))
        _clear_refresh_annotation(name, annotations)
        return
    # What the sweep published is a commit per (repoURL, targetRevision); a chart source's
    # version is resolved by its own refresh (see sweeping._resolve_charts).
    sha = None if app.source.chart else resolved_sha(app.source.repo_url,
                                                     app.source.target_revision)
    try:
        done = rt.reconciler.refresh_app(app, sha=sha, hard=hard, obj=obj)
    except TransientError as exc:
        metrics.refresh_done("error", time.monotonic() - started)
        _retry(namespace, name, attempt, exc)
        return
    except PermanentError as exc:
        metrics.refresh_done("error", time.monotonic() - started)
        _log.warning("refresh failed", error=str(exc))
        seen.put(ident, error_fingerprint(sha or "", spec))
        _clear_refresh_annotation(name, annotations)
        return
    metrics.refresh_done("ok", time.monotonic() - started)
    cmp = done.comparison
    bind(revision=cmp.revision)
    if sha is None:
        # Other refreshes of this repo in the next seconds need no ls-remote of their own.
        publish({(app.source.repo_url, app.source.target_revision): cmp.revision},
                ttl=REFRESH_TTL_SECONDS)
    stored = done.obj or obj
    seen.put(ident, compared_fingerprint(cmp, stored))
    _clear_refresh_annotation(name, annotations)
    auto = done.auto
    if auto.due:
        _automated_sync(app, namespace, cmp, done.obj, auto.attempt)
        return
    if auto.retry_at is not None:
        enqueue("refresh", namespace, name, countdown=max(0.0, auto.retry_at - time.time()))
    state = current_state(stored)
    if pending_request(stored) is not None or (state is not None and state.in_progress):
        enqueue("sync", namespace, name)  # an operation no message may carry: resume it
    else:
        follow_progress(namespace, name, cmp.health.status, progress)


def _automated_sync(app: Application, namespace: str, cmp: Comparison,
                    obj: dict[str, Any] | None, attempt: int) -> None:
    """Request the automated sync and, on a worker that takes sync tasks too, run its first
    step here and now on the comparison just made: no queue round trip, no second comparison.
    The sync marker is claimed first, so the watch (which sees the request) queues no second
    run; if a sync is queued already, that one does it."""
    rt = runtime()
    ident = app_id(namespace, app.name)
    inline = f"inline-{uuid.uuid4().hex}"
    claimed = (context.runs_syncs() and rt.markers is not None
               and rt.markers.claim("sync", ident, inline))
    try:
        policy = app.sync_policy.automated
        try:
            request_sync(rt.apps, app.name, SyncRequest(
                revision=cmp.revision, prune=bool(policy and policy.prune)),
                initiated_by="automated", automated=True, attempt=attempt, obj=obj)
        except GitOpsError as exc:
            _log.warning("could not request the automated sync", error=str(exc))
            return
        if claimed:
            from .sync import sync_step

            sync_step(namespace, app.name, comparison=cmp)
    finally:
        if claimed and rt.markers is not None:
            rt.markers.release("sync", ident, inline)
    if not claimed:
        enqueue("sync", namespace, app.name)


def follow_progress(namespace: str, name: str, health: HealthStatus, progress: int) -> None:
    """An app still Progressing (a rollout under way) is refreshed again soon, with a growing
    pause, so its status turns Healthy (or Degraded) minutes before the next sweep would see
    it. Stops after a while: a rollout stuck for good is the sweep's again."""
    if health is not HealthStatus.PROGRESSING or progress >= _PROGRESS_CHECKS:
        return
    cfg = settings().tasks
    delay = exponential(progress + 1, max(cfg.sync_poll_interval, 1.0), 2.0, 30.0)
    enqueue("refresh", namespace, name, countdown=delay, kwargs={"progress": progress + 1})


def _retry(namespace: str, name: str, attempt: int, exc: TransientError) -> None:
    cfg = settings().tasks
    if attempt > cfg.max_retries:
        _log.error("refresh keeps failing; the next sweep tries again", error=str(exc),
                   attempts=attempt)
        return
    delay = max(exc.retry_after or 0.0, jittered(exponential(
        attempt, cfg.retry_backoff, 2.0, cfg.retry_backoff_max)))
    _log.info("transient error, refresh retried", error=exc.message, delay=round(delay, 2),
              attempt=attempt)
    enqueue("refresh", namespace, name, countdown=delay, kwargs={"attempt": attempt + 1})


def _record_invalid(name: str, exc: InvalidApplication) -> None:
    def change(status: dict[str, Any], _: dict[str, Any]) -> dict[str, Any]:
        others = [c for c in status.get("conditions") or [] if c.get("type") != st.INVALID_SPEC]
        status["conditions"] = [*others, st.condition(st.INVALID_SPEC, exc.message,
                                                      status.get("conditions") or [])]
        status.setdefault("sync", {})["status"] = "Unknown"
        return status

    _log.warning("invalid Application", error=exc.message)
    try:
        runtime().apps.update_status(name, change)
    except GitOpsError as err:
        _log.warning("could not record the problem in the status", error=str(err))


def _clear_refresh_annotation(name: str, annotations: dict[str, Any]) -> None:
    present = [k for k in _REFRESH_ANNOTATIONS if k in annotations]
    if not present:
        return
    try:
        runtime().apps.patch(name, {"metadata": {"annotations": {k: None for k in present}}})
    except GitOpsError as exc:
        _log.warning("could not remove the refresh annotation", error=str(exc))
