"""`gitops.diff`: the structured and human-readable diff of one app, as the task's result
(the only task whose result anyone reads: `gitops-tasks app diff` waits for it)."""

from __future__ import annotations

from typing import Any

from ..errors import GitOpsError
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
