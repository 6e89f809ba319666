"""The `app` commands' views, from stored Applications (no cluster)."""

from __future__ import annotations

import json

from gitops_tasks import views

SHA = "0123456789abcdef0123456789abcdef01234567"
APP = {
    "metadata": {"name": "web"},
    "spec": {"source": {"repoURL": "https://h/r.git", "path": "apps/web",
                        "targetRevision": "main"},
             "destination": {"server": "https://kubernetes.default.svc", "namespace": "prod"}},
    "status": {
        "sync": {"status": "OutOfSync", "revision": SHA},
        "health": {"status": "Progressing", "message": "1 of 2 replicas"},
        "conditions": [{"type": "SyncError", "message": "boom"}],
        "resources": [{"kind": "Deployment", "namespace": "prod", "name": "web",
                       "status": "OutOfSync", "health": {"status": "Progressing"}}],
        "history": [{"id": 1, "revision": SHA, "deployedAt": "2026-12-01T10:00:00Z",
                     "initiatedBy": {"username": "ann"}}],
        "operationState": {
            "operation": {"id": "op1", "sync": {}, "initiatedBy": {"automated": True}},
            "phase": "Running", "message": "waiting for Deployment/web",
            "currentWave": {"phase": "Sync", "wave": 1},
            "syncResult": {"resources": [
                {"kind": "ConfigMap", "name": "a", "status": "Applied"},
                {"kind": "Deployment", "name": "web", "status": "Unchanged"},
                {"kind": "Job", "name": "migrate", "status": "", "hookType": "PreSync",
                 "hookPhase": "Running"}]}},
    },
}


def test_list_row_and_table() -> None:
    row = views.app_row(APP)
    assert row["revision"] == SHA[:12] and row["sync"] == "OutOfSync"
    assert row["last_sync"] == "2026-12-01T10:00:00Z" and row["operation"] == "Running"
    lines = views.app_list([APP]).splitlines()
    assert lines[0].split() == [c.upper() for c in views.LIST_COLUMNS]
    assert lines[1].split()[:3] == ["web", "https://h/r.git", "apps/web"]
    bare = views.app_row({"metadata": {"name": "new"}, "spec": {}})
    assert bare["sync"] == bare["health"] == "Unknown"


def test_operation_progress_and_detail() -> None:
    summary = views.operation_summary(APP["status"]["operationState"])  # type: ignore[index]
    assert summary == ("Running, wave 1 of Sync, 2/3 resources done, hooks: 1 (1 running) - "
                       "waiting for Deployment/web")
    detail = views.app_detail(APP)
    assert "Operation:   op1 by automated: Running" in detail
    assert "SyncError: boom" in detail and "1 of 2 replicas" in detail
    assert "Deployment  prod       web   OutOfSync  Progressing" in detail


def test_history_and_machine_output() -> None:
    assert views.history(APP).splitlines()[1].split() == ["1", SHA, "2026-12-01T10:00:00Z",
                                                          "ann"]
    assert json.loads(views.dump({"a": 1}, "json")) == {"a": 1}
    assert views.dump({"a": 1}, "yaml") == "a: 1"


def test_colour_diff_marks_removals_and_additions() -> None:
    coloured = views.colour_diff("--- live\n+++ desired\n@@ -1 +1 @@\n-  v: '1'\n+  v: '2'\n k")
    lines = coloured.splitlines()
    assert lines[3] == "\033[31m-  v: '1'\033[0m" and lines[4] == "\033[32m+  v: '2'\033[0m"
    assert lines[5] == " k"
