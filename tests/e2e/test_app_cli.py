"""`gitops-tasks app ...` end to end: the real command, against the real stack (redis-server,
kubesim, a worker and beat), acting only through Application resources and the queue."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import yaml

from .stack import CLI, Stack, configmap, wait_for


def cli(stack: Stack, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "app", *args], env=stack.env, input=stdin, text=True,
                          capture_output=True, timeout=120)


def test_the_app_commands_drive_an_application_through_the_controller(stack: Stack) -> None:
    v1 = stack.origin.commit({"web/cm.yaml": configmap("web", {"v": "1"})})
    stack.worker()
    stack.beat()
    manifest = stack.app_manifest("web", "web")  # manual sync policy
    manifest["apiVersion"] = "argoproj.io/v1alpha1"  # an Argo CD manifest works as it is
    created = cli(stack, "create", "-f", "-", stdin=yaml.safe_dump(manifest))
    assert created.returncode == 0, created.stderr
    again = cli(stack, "create", "-f", "-", stdin=yaml.safe_dump(manifest))
    assert again.returncode == 1 and "--upsert" in again.stderr
    listed = cli(stack, "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert [r["name"] for r in json.loads(listed.stdout)] == ["web"]

    synced = cli(stack, "sync", "web", "--wait", "--timeout", "60")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "Succeeded" in synced.stdout
    got = cli(stack, "get", "web")
    assert "Sync:        Synced" in got.stdout and "Health:      Healthy" in got.stdout, got.stdout
    table = cli(stack, "list")
    assert table.stdout.splitlines()[0].split()[:3] == ["NAME", "REPO", "PATH"]

    v2 = stack.origin.commit({"web/cm.yaml": configmap("web", {"v": "2"})})
    assert cli(stack, "refresh", "web").returncode == 0
    wait_for(lambda: (stack.status("web").get("sync") or {}).get("revision") == v2, 30,
             what="the refresh saw v2")
    diff = cli(stack, "diff", "web")
    assert diff.returncode == 1, diff.stdout + diff.stderr
    assert "-  v: '1'\n+  v: '2'" in diff.stdout, diff.stdout
    assert "1 of 1 resources differ" in diff.stderr
    assert cli(stack, "sync", "web", "--wait", "--timeout", "60").returncode == 0
    assert (stack.live("/api/v1/namespaces/{ns}/configmaps", "web") or {})["data"] == {"v": "2"}
    assert cli(stack, "diff", "web").returncode == 0

    history = json.loads(cli(stack, "history", "web", "-o", "json").stdout)
    assert [h["revision"] for h in history] == [v1, v2]
    first_id = history[0]["id"]
    back = cli(stack, "rollback", "web", str(first_id), "--wait", "--timeout", "60")
    assert back.returncode == 0, back.stdout + back.stderr
    assert (stack.live("/api/v1/namespaces/{ns}/configmaps", "web") or {})["data"] == {"v": "1"}
    waited = cli(stack, "wait", "web", "--health", "--timeout", "30")
    assert waited.returncode == 0, waited.stderr

    none = cli(stack, "terminate-op", "web")
    assert none.returncode == 1 and "no operation is running" in none.stdout

    missing = cli(stack, "get", "nope")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: ") and "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1

    gone = cli(stack, "delete", "web", "--cascade", "--wait", "--timeout", "60")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert stack.app("web") is None
    wait_for(lambda: stack.live("/api/v1/namespaces/{ns}/configmaps", "web") is None, 30,
             what="its ConfigMap deleted")


def test_an_invalid_manifest_is_refused_before_anything_is_written(stack: Stack) -> None:
    bad: dict[str, Any] = stack.app_manifest("bad", "web")
    del bad["spec"]["destination"]
    result = cli(stack, "create", "-f", "-", stdin=yaml.safe_dump(bad))
    assert result.returncode == 1
    assert "spec.destination" in result.stderr
    assert stack.app("bad") is None
