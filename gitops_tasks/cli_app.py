"""`gitops-tasks app ...`: the controller-backed commands. They act on Application resources in
the control namespace and go through the controller: a sync or a rollback is written on the
Application as its `operation` (Argo CD's shape, so nothing is lost if no worker is up yet), a
refresh as the refresh annotation, and each is also queued at once when Redis answers (the
watch would queue it within a second anyway). Nothing here applies to a cluster itself."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from . import appops, views
from .model import keys, parse_application
from .model import status as st
from .model.operation import OperationState, SyncRequest
from .runtime import Runtime

POLL = 0.5


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
    obj = appops.get(rt, name)
    _out(views.app_detail(obj) if output == "table" else views.dump(obj, output))
    return 0


def app_history(rt: Runtime, name: str, output: str) -> int:
    obj = appops.get(rt, name)
    if output == "table":
        _out(views.history(obj))
    else:
        _out(views.dump((obj.get("status") or {}).get("history") or [], output))
    return 0


def app_diff(rt: Runtime, name: str, timeout: float, output: str = "table") -> int:
    """Computed by a worker: exit 0 no difference, 1 some, 2 error, as `kubectl diff`."""
    answer = appops.diff(rt, name, timeout)
    changed = [r for r in answer["resources"] if r["status"] != "Synced"]
    if output != "table":
        _out(views.dump(answer, output))
        return 1 if changed else 0
    for r in changed:
        text = r["diff"] or f"{r['kind']}/{r['name']}: {r['status']}"
        _out(views.colour_diff(text) if sys.stdout.isatty() else text)
    sys.stderr.write(f"{name}: {len(changed)} of {len(answer['resources'])} resources differ "
                     f"at {answer['revision'][:12]}\n")
    return 1 if changed else 0


# ------------------------------------------------------------------------------ operations

def _live(text: str) -> None:
    """On a terminal one line that updates in place; elsewhere one line per change."""
    if sys.stdout.isatty():
        sys.stdout.write("\r\033[K" + text)
        sys.stdout.flush()
    else:
        _out(text)


def _follow(rt: Runtime, name: str, op_id: str, timeout: float,
            say: Callable[[str], None] = _live) -> int:
    """Print the operation's progress until it ends; 0 when it Succeeded."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        obj = appops.get(rt, name)
        raw = (obj.get("status") or {}).get("operationState")
        state = OperationState.from_dict(raw)
        if state is not None and state.operation.id == op_id:
            line = views.operation_summary(raw if isinstance(raw, dict) else {})
            if line != last:
                say(f"{name}: {line}")
                last = line
            if state.completed:
                if sys.stdout.isatty():
                    _out("")
                return 0 if state.phase == st.SUCCEEDED else 1
        elif last == "":
            say(f"{name}: requested (operation {op_id}), waiting for a worker")
            last = "requested"
        time.sleep(POLL)
    raise appops.Refused(f"operation {op_id} did not finish within {timeout:.0f}s; it goes on "
                       f"(`gitops-tasks app get {name}`)", app=name)


def app_sync(rt: Runtime, name: str, *, revision: str, prune: bool, dry_run: bool,
             force: bool, wait: bool, timeout: float) -> int:
    op = appops.sync(rt, name, SyncRequest(revision=revision, prune=prune or None,
                                           dry_run=dry_run, force=force or None),
                     appops.user())
    _out(f"{name}: sync requested (operation {op.id})")
    return _follow(rt, name, op.id, timeout) if wait else 0


def app_rollback(rt: Runtime, name: str, history_id: int, *, force: bool, wait: bool,
                 timeout: float) -> int:
    op = appops.rollback(rt, name, history_id, appops.user(), force=force)
    _out(f"{name}: rollback to history entry {history_id} requested (operation {op.id})")
    return _follow(rt, name, op.id, timeout) if wait else 0


def app_terminate(rt: Runtime, name: str) -> int:
    done = appops.terminate(rt, name)
    _out(f"{name}: {'termination requested' if done else 'no operation is running'}")
    return 0 if done else 1


def app_refresh(rt: Runtime, name: str, *, hard: bool) -> int:
    queued = appops.refresh(rt, name, hard=hard)
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
        obj = appops.get(rt, name)
        row = views.app_row(obj)
        running = row["operation"] in (st.RUNNING, st.TERMINATING) or "operation" in obj
        if (not health or row["health"] == "Healthy") and \
                (not sync or row["sync"] == "Synced") and (not operation or not running):
            _out(f"{name}: {row['sync']}, {row['health']} at {row['revision']}")
            return 0
        time.sleep(POLL)
    raise appops.Refused(f"not there within {timeout:.0f}s: sync {row.get('sync')}, health "
                       f"{row.get('health')}, operation {row.get('operation') or 'none'}",
                       app=name)


# ------------------------------------------------------------------------------ lifecycle

def app_create(rt: Runtime, doc: dict[str, Any], *, upsert: bool) -> int:
    doc = dict(doc)
    meta = dict(doc.get("metadata") or {})
    namespace = meta.get("namespace") or rt.apps.namespace
    if namespace != rt.apps.namespace:
        raise appops.Refused(f"the Application is for namespace {namespace}, the controller "
                           f"watches {rt.apps.namespace}", app=str(meta.get("name") or ""))
    meta["namespace"] = namespace
    doc["metadata"] = meta
    doc["apiVersion"] = keys.API_VERSION  # an Argo CD manifest works as it is
    app = parse_application(doc)  # every problem at once, before anything is written
    if rt.apps.get(app.name) is not None and not upsert:
        raise appops.Refused("already exists; pass --upsert to update it", app=app.name)
    rt.apps.cluster.apply(doc, force=True)
    _out(f"{app.name}: {'updated' if upsert else 'created'}")
    return 0


def app_delete(rt: Runtime, name: str, *, cascade: bool, wait: bool, timeout: float) -> int:
    obj = appops.get(rt, name)
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
            raise appops.Refused(f"still there after {timeout:.0f}s (its resources are being "
                               "deleted; is a worker running?)", app=name)
        time.sleep(POLL)
    return 0
