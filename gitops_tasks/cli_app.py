"""`gitops-tasks app ...`: the controller-backed commands. They act on Application resources in
the control namespace and go through the controller: a sync or a rollback is written on the
Application as its `operation` (Argo CD's shape, so nothing is lost if no worker is up yet), a
refresh as the refresh annotation, and each is also queued at once when Redis answers (the
watch would queue it within a second anyway). Nothing here applies to a cluster itself."""

from __future__ import annotations

import getpass
import sys
import time
from collections.abc import Callable
from typing import Any

from . import views
from .appstore import AppNotFound
from .errors import GitOpsError
from .model import keys, parse_application
from .model import status as st
from .model.operation import OperationState, SyncRequest
from .operations import request_sync, request_terminate
from .runtime import Runtime

POLL = 0.5


class CommandError(GitOpsError):
    """A command that cannot do what was asked: one line for the user."""


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _get(rt: Runtime, name: str) -> dict[str, Any]:
    obj = rt.apps.get(name)
    if obj is None:
        raise CommandError(f"no Application {name} in namespace {rt.apps.namespace} "
                           "(`gitops-tasks app list` shows them)", app=name)
    return obj


def _queue(rt: Runtime, kind: str, name: str, *, hard: bool = False) -> bool:
    """Queue the task now when Redis answers; False when only the watch will."""
    if rt.redis is None:
        return False
    from . import tasks
    from .tasks import context

    context.set_settings(rt.settings, role="cli")
    tasks.configure(rt.settings)
    try:
        if hard:
            tasks.request_hard_refresh(rt.apps.namespace, name)
        tasks.enqueue(kind, rt.apps.namespace, name, markers=rt.markers)
    except GitOpsError:
        return False
    return True


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------------------------ reads

def app_list(rt: Runtime, output: str) -> int:
    objs = sorted(rt.apps.list(), key=lambda o: str(o["metadata"]["name"]))
    if output == "table":
        _out(views.app_list(objs))
    else:
        _out(views.dump([views.app_row(o) for o in objs], output))
    return 0


def app_get(rt: Runtime, name: str, output: str) -> int:
    obj = _get(rt, name)
    _out(views.app_detail(obj) if output == "table" else views.dump(obj, output))
    return 0


def app_history(rt: Runtime, name: str, output: str) -> int:
    obj = _get(rt, name)
    if output == "table":
        _out(views.history(obj))
    else:
        _out(views.dump((obj.get("status") or {}).get("history") or [], output))
    return 0


def app_diff(rt: Runtime, name: str, timeout: float) -> int:
    """Through the queue (a worker renders and dry-runs): exit 0 no difference, 1 some, 2
    error, as `kubectl diff`."""
    _get(rt, name)
    if rt.redis is None:
        raise CommandError("app diff needs the controller's Redis (GITOPS_TASKS_REDIS_URL); "
                           "`gitops-tasks diff -f FILE` diffs in-process", app=name)
    from .tasks import context
    from .tasks.diff import request_diff

    context.set_settings(rt.settings, role="cli")
    answer = request_diff(rt.apps.namespace, name, timeout)
    if answer.get("error"):
        raise CommandError(str(answer["error"]), app=name)
    changed = [r for r in answer["resources"] if r["status"] != "Synced"]
    for r in changed:
        _out(r["diff"] or f"{r['kind']}/{r['name']}: {r['status']}")
    sys.stderr.write(f"{name}: {len(changed)} of {len(answer['resources'])} resources differ "
                     f"at {answer['revision'][:12]}\n")
    return 1 if changed else 0


# ------------------------------------------------------------------------------ operations

def _follow(rt: Runtime, name: str, op_id: str, timeout: float,
            say: Callable[[str], None] = _out) -> int:
    """Print the operation's progress until it ends; 0 when it Succeeded."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        obj = _get(rt, name)
        raw = (obj.get("status") or {}).get("operationState")
        state = OperationState.from_dict(raw)
        if state is not None and state.operation.id == op_id:
            line = views.operation_summary(raw if isinstance(raw, dict) else {})
            if line != last:
                say(f"{name}: {line}")
                last = line
            if state.completed:
                return 0 if state.phase == st.SUCCEEDED else 1
        elif last == "":
            say(f"{name}: requested (operation {op_id}), waiting for a worker")
            last = "requested"
        time.sleep(POLL)
    raise CommandError(f"operation {op_id} did not finish within {timeout:.0f}s; it goes on "
                       f"(`gitops-tasks app get {name}`)", app=name)


def app_sync(rt: Runtime, name: str, *, revision: str, prune: bool, dry_run: bool,
             force: bool, wait: bool, timeout: float) -> int:
    try:
        op = request_sync(rt.apps, name, SyncRequest(revision=revision, prune=prune or None,
                                                     dry_run=dry_run, force=force or None),
                          initiated_by=_user())
    except AppNotFound as exc:
        raise CommandError(exc.message, app=name) from exc
    queued = _queue(rt, "sync", name)
    _out(f"{name}: sync requested (operation {op.id})"
         f"{'' if queued else '; Redis did not answer: the watch will queue it'}")
    return _follow(rt, name, op.id, timeout) if wait else 0


def app_rollback(rt: Runtime, name: str, history_id: int, *, force: bool, wait: bool,
                 timeout: float) -> int:
    obj = _get(rt, name)
    app = parse_application(obj)
    if app.automated and not force:
        raise CommandError("automated sync is on: it would sync targetRevision again right "
                           "after; turn it off first, or pass --force", app=name)
    entries = (obj.get("status") or {}).get("history") or []
    entry = next((h for h in entries if h.get("id") == history_id), None)
    if entry is None:
        ids = ", ".join(str(h.get("id")) for h in entries) or "none"
        raise CommandError(f"no history entry {history_id} (entries: {ids})", app=name)
    return app_sync(rt, name, revision=str(entry["revision"]), prune=False, dry_run=False,
                    force=False, wait=wait, timeout=timeout)


def app_terminate(rt: Runtime, name: str) -> int:
    try:
        done = request_terminate(rt.apps, name)
    except AppNotFound as exc:
        raise CommandError(exc.message, app=name) from exc
    if done:
        _queue(rt, "sync", name)
    _out(f"{name}: {'termination requested' if done else 'no operation is running'}")
    return 0 if done else 1


def app_refresh(rt: Runtime, name: str, *, hard: bool) -> int:
    _get(rt, name)
    rt.apps.patch(name, {"metadata": {"annotations": {
        keys.REFRESH_ANNOTATION: "hard" if hard else "normal"}}})
    queued = _queue(rt, "refresh", name, hard=hard)
    _out(f"{name}: {'hard ' if hard else ''}refresh requested"
         f"{'' if queued else ' (the watch will queue it)'}")
    return 0


def app_wait(rt: Runtime, name: str, *, health: bool, sync: bool, operation: bool,
             timeout: float) -> int:
    """Until Healthy and/or Synced and/or no operation runs (default: all three)."""
    if not (health or sync or operation):
        health = sync = operation = True
    deadline = time.monotonic() + timeout
    row: dict[str, str] = {}
    while time.monotonic() < deadline:
        obj = _get(rt, name)
        row = views.app_row(obj)
        running = row["operation"] in (st.RUNNING, st.TERMINATING) or "operation" in obj
        if (not health or row["health"] == "Healthy") and \
                (not sync or row["sync"] == "Synced") and (not operation or not running):
            _out(f"{name}: {row['sync']}, {row['health']} at {row['revision']}")
            return 0
        time.sleep(POLL)
    raise CommandError(f"not there within {timeout:.0f}s: sync {row.get('sync')}, health "
                       f"{row.get('health')}, operation {row.get('operation') or 'none'}",
                       app=name)


# ------------------------------------------------------------------------------ lifecycle

def app_create(rt: Runtime, doc: dict[str, Any], *, upsert: bool) -> int:
    doc = dict(doc)
    meta = dict(doc.get("metadata") or {})
    namespace = meta.get("namespace") or rt.apps.namespace
    if namespace != rt.apps.namespace:
        raise CommandError(f"the Application is for namespace {namespace}, the controller "
                           f"watches {rt.apps.namespace}", app=str(meta.get("name") or ""))
    meta["namespace"] = namespace
    doc["metadata"] = meta
    doc["apiVersion"] = keys.API_VERSION  # an Argo CD manifest works as it is
    app = parse_application(doc)  # every problem at once, before anything is written
    if rt.apps.get(app.name) is not None and not upsert:
        raise CommandError("already exists; pass --upsert to update it", app=app.name)
    rt.apps.cluster.apply(doc, force=True)
    _out(f"{app.name}: {'updated' if upsert else 'created'}")
    return 0


def app_delete(rt: Runtime, name: str, *, cascade: bool, wait: bool, timeout: float) -> int:
    obj = _get(rt, name)
    if cascade:
        finalizers = list((obj.get("metadata") or {}).get("finalizers") or [])
        if not any(f.startswith((keys.RESOURCES_FINALIZER, keys.ARGO_RESOURCES_FINALIZER))
                   for f in finalizers):
            rt.apps.patch(name, {"metadata": {
                "finalizers": [*finalizers, keys.RESOURCES_FINALIZER],
                "resourceVersion": obj["metadata"]["resourceVersion"]}})
    rt.apps.cluster.delete(keys.API_VERSION, keys.KIND, name, rt.apps.namespace,
                           propagation="Background")
    _out(f"{name}: deleted{' with its resources' if cascade else ' (its resources stay)'}")
    if not wait:
        return 0
    deadline = time.monotonic() + timeout
    while rt.apps.get(name) is not None:
        if time.monotonic() > deadline:
            raise CommandError(f"still there after {timeout:.0f}s (its resources are being "
                               "deleted; is a worker running?)", app=name)
        time.sleep(POLL)
    return 0
