"""`gitops.diff`: the structured and human-readable diff of one app, as the task's result
(the only task whose result anyone reads: `gitops-tasks app diff` waits for it)."""

from __future__ import annotations

from typing import Any

from ..errors import GitOpsError, TransientError
from ..model import parse_application
from .app import DIFF, celery_app
from .base import running
from .context import runtime


@celery_app.task(name=DIFF, bind=True, ignore_result=False)
def diff(self: Any, namespace: str, name: str) -> dict[str, Any]:
    with running(self, "diff", namespace, name) as ok:
        if not ok:
            return {"app": name, "error": "outside the control namespace"}
        rt = runtime()
        obj = rt.apps.get(name)
        if obj is None:
            return {"app": name, "error": f"Application {name} not found"}
        try:
            app = parse_application(obj)
            cmp = rt.reconciler.compare(app, dict(obj.get("status") or {}))
        except GitOpsError as exc:
            return {"app": name, "error": str(exc)}
        resources = []
        for key in sorted(cmp.diffs):
            d = cmp.diffs[key]
            resources.append({"group": key.group, "kind": key.kind, "namespace": key.namespace,
                              "name": key.name, "status": d.status.value,
                              "paths": sorted(d.paths), "diff": d.text()})
        return {"app": name, "revision": cmp.revision, "sync": cmp.sync_status,
                "resources": resources,
                "shared": {str(k): v for k, v in cmp.shared.items()},
                "errors": {str(k): v for k, v in cmp.errors.items()}}


class NoWorker(TransientError):
    """No worker answered a diff in time (try again: a 503, not the request's fault)."""


def request_diff(namespace: str, name: str, timeout: float) -> dict[str, Any]:
    """Queue `gitops.diff` and wait for its answer (for `gitops-tasks app diff`). Raises
    NoWorker when none answers within `timeout`."""
    from celery.exceptions import TimeoutError as CeleryTimeout

    from .app import REFRESH_QUEUE, ensure_configured
    from .context import settings

    result = ensure_configured(settings()).send_task(DIFF, args=[namespace, name],
                                                     queue=REFRESH_QUEUE)
    try:
        answer: dict[str, Any] = result.get(timeout=timeout)
    except CeleryTimeout as exc:
        raise NoWorker(f"no worker answered within {timeout:.0f}s (is `gitops-tasks worker` "
                       "running?)", app=name) from exc
    finally:
        result.forget()
    return answer
