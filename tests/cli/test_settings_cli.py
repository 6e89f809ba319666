"""`gitops-tasks settings`: every variable with its default and this environment's value,
credentials masked, and the start-up check's exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CLI = str(Path(sys.executable).parent / "gitops-tasks")


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_TASKS_")}
    return subprocess.run([CLI, "settings", *args], capture_output=True, text=True,
                          env=clean | env, timeout=60)


def test_values_are_shown_beside_defaults_and_credentials_never() -> None:
    done = _run("-o", "json", GITOPS_TASKS_LOCK_TTL="45",
                GITOPS_TASKS_REDIS_URL="redis://:hunter2pass@redis:6379/1",
                GITOPS_TASKS_WEBHOOK_GITHUB_SECRET="s3cr3t-github-value")
    assert done.returncode == 0, done.stderr
    shown = {v["name"]: v for v in json.loads(done.stdout)}
    assert shown["GITOPS_TASKS_LOCK_TTL"] == {"name": "GITOPS_TASKS_LOCK_TTL",
                                              "default": "30", "value": "45"}
    assert shown["GITOPS_TASKS_REDIS_URL"]["value"] == "redis://***@redis:6379/1"
    assert shown["GITOPS_TASKS_WEBHOOK_GITHUB_SECRET"]["value"] == "***"
    assert shown["GITOPS_TASKS_NAMESPACE"]["value"] is None
    assert "hunter2pass" not in done.stdout and "s3cr3t" not in done.stdout


def test_an_invalid_value_is_listed_then_named_in_one_error_line_with_exit_2() -> None:
    done = _run(GITOPS_TASKS_LOCK_TTL="soon", GITOPS_TASKS_KUBE_QPS="-1")
    assert done.returncode == 2
    assert ["GITOPS_TASKS_LOCK_TTL", "30", "soon"] in \
        [line.split() for line in done.stdout.splitlines()]
    error = done.stderr.strip().splitlines()
    assert len(error) == 1 and "GITOPS_TASKS_LOCK_TTL='soon'" in error[0] \
        and "GITOPS_TASKS_KUBE_QPS='-1'" in error[0]
