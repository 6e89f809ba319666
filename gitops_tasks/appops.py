"""What a user can ask of an Application through the controller, shared by the `app` commands
and the management API: requests written on the Application (so a restart loses nothing) and
queued at once when Redis answers. No output here; callers present the results."""

from __future__ import annotations

import getpass
import re
from typing import Any

from .appstore import AppNotFound
from .errors import GitOpsError
from .model import keys, parse_application
from .model.operation import Operation, SyncRequest
from .operations import request_sync, request_terminate
from .runtime import Runtime

_SHA = re.compile(r"^[0-9a-f]{7,40}$")


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


def resource_tree(rt: Runtime, name: str) -> dict[str, Any]:
    """The app's recorded resources with the objects their controllers made (ReplicaSets,
    Pods, Jobs), read live: {"nodes": [...]} (see `tree.build`)."""
    from . import tree
    from .cluster import ApiForbidden, UnknownKind

    obj = get(rt, name)
    app = parse_application(obj)
    resources = [r for r in (obj.get("status") or {}).get("resources") or []
                 if isinstance(r, dict)]
    cluster = rt.destinations.resolve(app.destination)
    live: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    others: list[dict[str, Any]] = []
    listed: set[tuple[str, str, str]] = set()

    def read_children(group: str, kind: str, namespace: str) -> None:
        for api_version, child in tree.child_kinds(group, kind):
            if (api_version, child, namespace) in listed:
                continue
            listed.add((api_version, child, namespace))
            try:
                found = cluster.list(api_version, child, namespace=namespace)
            except (ApiForbidden, UnknownKind):
                continue  # not ours to see: the tree shows the app's own objects only
            others.extend(found)
            if found:  # a Deployment's ReplicaSets have Pods of their own
                read_children(api_version.rpartition("/")[0], child, namespace)

    for r in resources:
        group, kind = str(r.get("group", "")), str(r.get("kind", ""))
        if not tree.child_kinds(group, kind):
            continue
        version = str(r.get("version", ""))
        api_version = f"{group}/{version}" if group else version
        namespace, res_name = str(r.get("namespace", "")), str(r.get("name", ""))
        try:
            parent = cluster.get(api_version, kind, res_name, namespace)
        except (ApiForbidden, UnknownKind):
            continue
        if parent is None:
            continue
        live[(group, kind, namespace, res_name)] = parent
        read_children(group, kind, namespace)
    if rt.health is None:
        return {"nodes": tree.build(resources, live, others)}
    return {"nodes": tree.build(resources, live, others, rt.health.current())}


def revision_metadata(rt: Runtime, name: str, revision: str) -> dict[str, str]:
    """{sha, author, date, message} of a commit of the app's repository."""
    obj = get(rt, name)
    app = parse_application(obj)
    if not _SHA.match(revision):
        raise Refused(f"{revision!r} is not a commit SHA", app=name)
    return rt.mirrors.commit_info(app.source.repo_url, revision, app=name)
