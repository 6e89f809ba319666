"""Putting work on the queue, coalesced: at most one queued task of each kind per app.

Called by every producer (the sweep, the Application watch, the CLI, later the webhook
receiver and the API) and by the tasks themselves when they re-enqueue (a sync step waiting
for health, a transient retry). A producer claims the app's marker for that kind with a fresh
task id and sends the task only if the claim succeeded; the task releases the marker when it
starts, so a request that arrives while it runs queues the next run. A thousand webhooks for
one app therefore queue one refresh, and nothing asked for is dropped.
"""

from __future__ import annotations

import uuid
from typing import Any

from kombu.exceptions import OperationalError

from ..errors import TransientError
from ..locks import QueueMarkers
from ..log import get_logger
from ..sweeping import app_id
from .app import PRUNE, REFRESH, SWEEP, SYNC, ensure_configured
from .context import runtime, settings

TASKS = {"refresh": REFRESH, "sync": SYNC, "prune": PRUNE, "sweep": SWEEP}
# A flag a producer sets when it asks for a hard refresh: the queued refresh (maybe a normal
# one queued earlier) reads and clears it when it runs.
HARD_KEY = "gitops:hard-refresh:{app}"

_log = get_logger(component="enqueue")


def enqueue(kind: str, namespace: str, name: str, *, countdown: float = 0.0,
            kwargs: dict[str, Any] | None = None, markers: QueueMarkers | None = None
            ) -> str | None:
    """Queue task `kind` ("refresh", "sync", "prune") for one app unless one is queued
    already; returns the new task id, or None when coalesced."""
    markers = markers or runtime().markers
    assert markers is not None, "the task layer needs Redis"
    ident = app_id(namespace, name)
    task_id = uuid.uuid4().hex
    if not markers.claim(kind, ident, task_id, ttl=_marker_ttl(countdown)):
        return None
    try:
        ensure_configured(settings()).send_task(
            TASKS[kind], args=[namespace, name], kwargs=kwargs or {}, task_id=task_id,
            countdown=countdown if countdown > 0 else None)
    except OperationalError as exc:
        markers.release(kind, ident, task_id)
        raise TransientError(f"could not queue {kind} of {ident}: {exc}", app=name) from exc
    return task_id


def _marker_ttl(countdown: float) -> float | None:
    """A message with a countdown waits in the worker that took it; if that worker dies, the
    message is back only after the visibility timeout. Its marker therefore lives just past
    the due time (plus two resume sweeps): then the resume sweep queues the operation again.
    A live but busy worker may start it later than that; the second run the sweep queued is
    then a harmless duplicate (the lock serialises them, the step is idempotent)."""
    if countdown <= 0:
        return None  # the default (GITOPS_TASKS_QUEUED_TTL): a message waiting in the queue
    return countdown + max(5.0, 2 * settings().reconcile.resume_interval)


def enqueue_sweep(mode: str = "full", *, markers: QueueMarkers | None = None) -> str | None:
    """Queue one sweep ("full" or "resume"), unless one of that mode is queued."""
    markers = markers or runtime().markers
    assert markers is not None
    task_id = uuid.uuid4().hex
    if not markers.claim("sweep", mode, task_id):
        return None
    try:
        ensure_configured(settings()).send_task(SWEEP, kwargs={"mode": mode}, task_id=task_id)
    except OperationalError as exc:
        markers.release("sweep", mode, task_id)
        raise TransientError(f"could not queue a {mode} sweep: {exc}") from exc
    return task_id


def request_hard_refresh(namespace: str, name: str) -> None:
    client = runtime().redis
    if client is not None:
        client.set(HARD_KEY.format(app=app_id(namespace, name)), "1", ex=3600)


def take_hard_refresh(namespace: str, name: str) -> bool:
    client = runtime().redis
    if client is None:
        return False
    return bool(client.delete(HARD_KEY.format(app=app_id(namespace, name))))
