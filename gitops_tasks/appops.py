"""What a user can ask of an Application through the controller, shared by the `app` commands
and the management API: requests written on the Application (so a restart loses nothing) and
queued at once when Redis answers. No output here; callers present the results."""

from __future__ import annotations

import getpass
from typing import Any

from .appstore import AppNotFound
from .errors import GitOpsError
from .model import keys, parse_application
from .model.operation import Operation, SyncRequest
from .operations import request_sync, request_terminate
from .runtime import Runtime


class Refused(GitOpsError):
    """The request cannot be served as asked (`status`: the HTTP answer that fits)."""

    def __init__(self, message: str, *, app: str | None = None, status: int = 400) -> None:
        super().__init__(message, app=app)
        self.status = status


def user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def get(rt: Runtime, name: str) -> dict[str, Any]:
    obj = rt.apps.get(name)
    if obj is None:
        raise Refused(f"no Application {name} in namespace {rt.apps.namespace}", app=name,
                      status=404)
    return obj


def queue(rt: Runtime, kind: str, name: str, *, hard: bool = False) -> bool:
    """Queue the task now when Redis answers; False when only the watch will."""
    if rt.redis is None:
        return False
    from . import tasks
    from .tasks import context

    if not context.has_settings():
        context.set_settings(rt.settings, role="cli")
    tasks.configure(rt.settings)
    try:
        if hard:
            tasks.request_hard_refresh(rt.apps.namespace, name)
        tasks.enqueue(kind, rt.apps.namespace, name, markers=rt.markers)
    except GitOpsError:
        return False
    return True


def sync(rt: Runtime, name: str, request: SyncRequest, initiated_by: str) -> Operation:
    try:
        op = request_sync(rt.apps, name, request, initiated_by=initiated_by)
    except AppNotFound as exc:
        raise Refused(exc.message, app=name, status=404) from exc
    queue(rt, "sync", name)
    return op


def rollback(rt: Runtime, name: str, history_id: int, initiated_by: str, *,
             force: bool = False) -> Operation:
    obj = get(rt, name)
    app = parse_application(obj)
    if app.automated and not force:
        raise Refused("automated sync is on: it would sync targetRevision again right after; "
                      "turn it off first, or force it", app=name, status=409)
    entries = (obj.get("status") or {}).get("history") or []
    entry = next((h for h in entries if h.get("id") == history_id), None)
    if entry is None:
        ids = ", ".join(str(h.get("id")) for h in entries) or "none"
        raise Refused(f"no history entry {history_id} (entries: {ids})", app=name,
                      status=404)
    return sync(rt, name, SyncRequest(revision=str(entry["revision"])), initiated_by)


def terminate(rt: Runtime, name: str) -> bool:
    try:
        done = request_terminate(rt.apps, name)
    except AppNotFound as exc:
        raise Refused(exc.message, app=name, status=404) from exc
    if done:
        queue(rt, "sync", name)
    return done


def refresh(rt: Runtime, name: str, *, hard: bool) -> bool:
    """Annotate (the watch acts on it) and queue; True when queued at once."""
    get(rt, name)
    rt.apps.patch(name, {"metadata": {"annotations": {
        keys.REFRESH_ANNOTATION: "hard" if hard else "normal"}}})
    return queue(rt, "refresh", name, hard=hard)


def diff(rt: Runtime, name: str, timeout: float) -> dict[str, Any]:
    """A worker's diff (`gitops.diff`): {revision, sync, resources: [...]}."""
    get(rt, name)
    if rt.redis is None:
        raise Refused("a diff needs the controller's Redis (GITOPS_TASKS_REDIS_URL)",
                      app=name, status=503)
    from .tasks import context
    from .tasks.diff import request_diff

    if not context.has_settings():
        context.set_settings(rt.settings, role="cli")
    answer = request_diff(rt.apps.namespace, name, timeout)
    if answer.get("error"):
        raise Refused(str(answer["error"]), app=name, status=422)
    return answer
