"""`gitops-tasks diff` and `gitops-tasks sync` as a user runs them against a cluster (kubesim)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from gitops_tasks.model import keys
from kubesim.server import KubeSim
from tests.conftest import Kubectl
from tests.source.gitservers import Origin

from ..kubesim.http import call

CLI = str(Path(sys.executable).parent / "gitops-tasks")


def run(args: list[str], kubeconfig: Path, tmp: Path, control: str
        ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KUBECONFIG=str(kubeconfig),
               GITOPS_TASKS_GIT_CACHE_DIR=str(tmp / "cache"),
               GITOPS_TASKS_REDIS_URL="redis://127.0.0.1:1/0",
               GITOPS_TASKS_NAMESPACE=control)
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=120)


def test_diff_and_sync_cli(kubesim: KubeSim, kubeconfig: Path, tmp_path: Path,
                           kubectl: Kubectl, application_crd: None) -> None:
    ident = uuid.uuid4().hex[:8]
    dest, control = f"dst-{ident}", f"ctl-{ident}"
    for ns in (dest, control):
        call(kubesim.url, "POST", "/api/v1/namespaces",
             {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    origin = Origin(tmp_path / "served", tmp_path / "work", "repo")
    origin.commit({
        "app/cm.yaml": yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                                       "metadata": {"name": "cfg"}, "data": {"mode": "a"}}),
        "app/secret.yaml": yaml.safe_dump({"apiVersion": "v1", "kind": "Secret",
                                           "metadata": {"name": "creds"},
                                           "stringData": {"password": "hunter2"}}),
    })
    app: dict[str, Any] = {
        "apiVersion": keys.API_VERSION, "kind": "Application",
        "metadata": {"name": "cli-app", "namespace": control},
        "spec": {"source": {"repoURL": origin.file_url, "path": "app",
                            "targetRevision": "main"},
                 "destination": {"server": "https://kubernetes.default.svc",
                                 "namespace": dest}},
    }
    app_file = tmp_path / "app.yaml"
    app_file.write_text(yaml.safe_dump(app))
    # Register the Application so its status (and `kubectl get applications`) is kept.
    kubectl.run("apply", "--server-side", "-f", str(app_file))

    before = run(["diff", "-f", str(app_file)], kubeconfig, tmp_path, control)
    assert before.returncode == 1, before.stderr
    assert "ConfigMap" in before.stdout and "(Missing)" in before.stdout
    # A Missing object is shown whole, as it would be created, Secret values masked.
    assert "+  mode: a" in before.stdout and "+    gitops-tasks.io/app: cli-app" in before.stdout
    assert "password" in before.stdout and "hunter2" not in before.stdout

    dry = run(["sync", "-f", str(app_file), "--dry-run"], kubeconfig, tmp_path, control)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "WouldApply" in dry.stdout
    assert call(kubesim.url, "GET", f"/api/v1/namespaces/{dest}/configmaps/cfg").status == 404

    synced = run(["sync", "-f", str(app_file)], kubeconfig, tmp_path, control)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "Applied" in synced.stdout and "Succeeded" in synced.stdout
    assert call(kubesim.url, "GET", f"/api/v1/namespaces/{dest}/configmaps/cfg").status == 200

    same = run(["diff", "-f", str(app_file)], kubeconfig, tmp_path, control)
    assert same.returncode == 0, same.stdout + same.stderr

    origin.commit({"app/secret.yaml": yaml.safe_dump({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
        "stringData": {"password": "correct-horse"}})})
    changed = run(["diff", "-f", str(app_file)], kubeconfig, tmp_path, control)
    assert changed.returncode == 1
    assert "Secret" in changed.stdout and "password" in changed.stdout
    assert "hunter2" not in changed.stdout and "correct-horse" not in changed.stdout
    assert "aHVudGVyMg" not in changed.stdout  # nor the base64 of the old value

    # refresh records status; the app is manual, so no sync runs.
    refreshed = run(["refresh", "-f", str(app_file)], kubeconfig, tmp_path, control)
    assert refreshed.returncode == 0, refreshed.stderr
    assert "OutOfSync" in refreshed.stdout and "automated sync is due" not in refreshed.stdout
    # rollback to history entry 0 (the first sync) keeps the old secret.
    rolled = run(["rollback", "-f", str(app_file), "--id", "0"], kubeconfig, tmp_path, control)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert "Succeeded" in rolled.stdout
    unknown = run(["rollback", "-f", str(app_file), "--id", "7"], kubeconfig, tmp_path, control)
    assert unknown.returncode == 1 and "no history entry 7" in unknown.stderr

    table = kubectl.run("get", "applications", "-n", control).stdout
    assert "cli-app" in table and "Synced" in table

    bad = run(["diff", "-f", str(app_file), "--revision", "nope"], kubeconfig, tmp_path, control)
    assert bad.returncode == 2 and "nope" in bad.stderr and "Traceback" not in bad.stderr
    missing_cluster = dict(app)
    missing_cluster["spec"] = dict(app["spec"], destination={"name": "elsewhere",
                                                             "namespace": dest})
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(missing_cluster))
    failed = run(["sync", "-f", str(other)], kubeconfig, tmp_path, control)
    assert failed.returncode == 1 and "elsewhere" in failed.stdout + failed.stderr
    assert "Traceback" not in failed.stderr


def test_refresh_runs_the_automated_sync(kubesim: KubeSim, kubeconfig: Path, tmp_path: Path,
                                         kubectl: Kubectl,
                                         application_crd: None) -> None:
    ident = uuid.uuid4().hex[:8]
    dest, control = f"dst-{ident}", f"ctl-{ident}"
    for ns in (dest, control):
        call(kubesim.url, "POST", "/api/v1/namespaces",
             {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    origin = Origin(tmp_path / "served", tmp_path / "work", "repo")
    origin.commit({"app/cm.yaml": yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                                                  "metadata": {"name": "auto"}})})
    app_file = tmp_path / "app.yaml"
    app_file.write_text(yaml.safe_dump({
        "apiVersion": keys.API_VERSION, "kind": "Application",
        "metadata": {"name": "auto", "namespace": control},
        "spec": {"source": {"repoURL": origin.file_url, "path": "app"},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": dest},
                 "syncPolicy": {"automated": {"prune": True, "selfHeal": True}}}}))
    unregistered = run(["diff", "-f", str(app_file)], kubeconfig, tmp_path, control)
    assert unregistered.returncode == 1
    assert f"is not in namespace {control}" in unregistered.stderr
    kubectl.run("apply", "--server-side", "-f", str(app_file))
    first = run(["refresh", "-f", str(app_file)], kubeconfig, tmp_path, control)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "automated sync is due" in first.stdout and "Succeeded" in first.stdout
    assert call(kubesim.url, "GET", f"/api/v1/namespaces/{dest}/configmaps/auto").status == 200
    again = run(["refresh", "-f", str(app_file)], kubeconfig, tmp_path, control)
    assert again.returncode == 0 and "Synced" in again.stdout
    assert "automated sync is due" not in again.stdout


def test_in_process_sync_takes_the_app_lock(kubesim: KubeSim, kubeconfig: Path, tmp_path: Path,
                                            kubectl: Kubectl, redis_url: str,
                                            application_crd: None) -> None:
    """With Redis reachable, `sync -f` takes the app's lock as a worker does: it refuses while
    a worker holds it, and a worker cannot take it while the CLI syncs."""
    import redis

    from gitops_tasks.locks import AppLock, held_by

    ident = uuid.uuid4().hex[:8]
    dest, control = f"dst-{ident}", f"ctl-{ident}"
    for ns in (dest, control):
        call(kubesim.url, "POST", "/api/v1/namespaces",
             {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    origin = Origin(tmp_path / "served", tmp_path / "work", "repo")
    origin.commit({"app/cm.yaml": yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                                                  "metadata": {"name": "locked"}})})
    app_file = tmp_path / "app.yaml"
    app_file.write_text(yaml.safe_dump({
        "apiVersion": keys.API_VERSION, "kind": "Application",
        "metadata": {"name": "locked", "namespace": control},
        "spec": {"source": {"repoURL": origin.file_url, "path": "app"},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": dest}}}))
    kubectl.run("apply", "--server-side", "-f", str(app_file))
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), GITOPS_TASKS_REDIS_URL=redis_url,
               GITOPS_TASKS_GIT_CACHE_DIR=str(tmp_path / "cache"),
               GITOPS_TASKS_NAMESPACE=control)
    client = redis.Redis.from_url(redis_url)
    worker_lock = AppLock(client, f"{control}/locked", ttl=30)
    assert worker_lock.acquire()
    refused = subprocess.run([CLI, "sync", "-f", str(app_file)], capture_output=True, text=True,
                             env=env, timeout=120)
    assert refused.returncode == 1
    assert "a gitops-tasks worker is syncing this app" in refused.stderr
    assert call(kubesim.url, "GET", f"/api/v1/namespaces/{dest}/configmaps/locked").status == 404
    worker_lock.release()
    synced = subprocess.run([CLI, "sync", "-f", str(app_file)], capture_output=True, text=True,
                            env=env, timeout=120)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert call(kubesim.url, "GET", f"/api/v1/namespaces/{dest}/configmaps/locked").status == 200
    assert held_by(client, f"{control}/locked") is None  # released when the CLI finished


def test_sync_reports_objects_too_large_for_the_cluster_and_applies_the_rest(
        kubesim: KubeSim, kubeconfig: Path, tmp_path: Path, kubectl: Kubectl,
        application_crd: None) -> None:
    """etcd refuses a ConfigMap over its limits (a 500 kube-apiserver passes on): that one
    resource fails with the server's message, at once rather than after transient retries, and
    the others are applied."""
    ident = uuid.uuid4().hex[:8]
    dest, control = f"dst-{ident}", f"ctl-{ident}"
    for ns in (dest, control):
        call(kubesim.url, "POST", "/api/v1/namespaces",
             {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    def configmap(name: str, values: str) -> str:
        return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": name}, "data": {"values.yaml": values}})

    origin = Origin(tmp_path / "served", tmp_path / "work", "repo")
    origin.commit({
        # Rendered Helm values, as a chart that ships its values in a ConfigMap does.
        "app/values.yaml": configmap("helm-values", "replicas: 1\n" * (2 * 1024 * 1024 // 12)),
        "app/chart.yaml": configmap("chart-files", "x" * (1600 * 1024)),
        "app/small.yaml": configmap("small", "replicas: 1\n"),
    })
    app_file = tmp_path / "app.yaml"
    app_file.write_text(yaml.safe_dump({
        "apiVersion": keys.API_VERSION, "kind": "Application",
        "metadata": {"name": "big", "namespace": control},
        "spec": {"source": {"repoURL": origin.file_url, "path": "app"},
                 "destination": {"server": "https://kubernetes.default.svc",
                                 "namespace": dest}}}))
    kubectl.run("apply", "--server-side", "-f", str(app_file))

    started = time.monotonic()
    synced = run(["sync", "-f", str(app_file)], kubeconfig, tmp_path, control)
    assert time.monotonic() - started < 60, "retried as if the error were transient"
    assert synced.returncode == 1, synced.stdout + synced.stderr
    assert "Traceback" not in synced.stderr
    rows = {line.split()[2]: line for line in synced.stdout.splitlines()
            if line.startswith("ConfigMap")}
    assert "Failed" in rows["helm-values"].split()[3]
    assert ("rpc error: code = ResourceExhausted desc = trying to send message larger than max"
            in rows["helm-values"])
    assert "Failed" in rows["chart-files"].split()[3]
    assert "etcdserver: request is too large" in rows["chart-files"]
    assert rows["small"].split()[3] == "Applied"
    assert "transient" not in synced.stdout
    base = f"/api/v1/namespaces/{dest}/configmaps"
    assert call(kubesim.url, "GET", f"{base}/small").status == 200
    assert call(kubesim.url, "GET", f"{base}/helm-values").status == 404
    assert call(kubesim.url, "GET", f"{base}/chart-files").status == 404


def test_refresh_prints_what_made_the_comparison_fail_and_exits_1(
        kubesim: KubeSim, kubeconfig: Path, tmp_path: Path) -> None:
    """A resource the cluster cannot compare (a kind it does not serve) made `refresh` print
    a status and exit 0, with the reason only in status.conditions."""
    ident = uuid.uuid4().hex[:8]
    origin = Origin(tmp_path / "served", tmp_path / "work", "repo")
    origin.commit({"app/all.yaml": yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok"}},
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}])})
    app_file = tmp_path / "app.yaml"
    app_file.write_text(yaml.safe_dump({
        "apiVersion": keys.API_VERSION, "kind": "Application",
        "metadata": {"name": f"unknown-kind-{ident}", "namespace": "gitops-tasks"},
        "spec": {"source": {"repoURL": origin.file_url, "path": "app", "targetRevision": "main"},
                 "destination": {"server": "https://kubernetes.default.svc",
                                 "namespace": "default"}}}))
    done = run(["refresh", "-f", str(app_file)], kubeconfig, tmp_path, f"ctl-{ident}")
    assert done.returncode == 1, done.stdout + done.stderr
    assert ("ComparisonError: Widget.example.com w: cluster in-cluster serves no kind 'Widget'"
            in done.stderr), done.stderr
    assert "Traceback" not in done.stderr
    # diff and sync say the same, and exit non-zero.
    diff = run(["diff", "-f", str(app_file)], kubeconfig, tmp_path, f"ctl-{ident}")
    assert diff.returncode == 2, diff.stdout + diff.stderr
    assert "ComparisonError: Widget.example.com w: cluster in-cluster serves no kind" in \
        diff.stderr
    synced = run(["sync", "-f", str(app_file)], kubeconfig, tmp_path, f"ctl-{ident}")
    assert synced.returncode == 1, synced.stdout + synced.stderr
    assert "serves no kind 'Widget'" in synced.stdout + synced.stderr


def test_diff_and_sync_take_an_argo_cd_manifest_and_refuse_a_typo(
        kubesim: KubeSim, kubeconfig: Path, tmp_path: Path, application_crd: None) -> None:
    ident = uuid.uuid4().hex[:8]
    dest, control = f"dst-{ident}", f"ctl-{ident}"
    for ns in (dest, control):
        call(kubesim.url, "POST", "/api/v1/namespaces",
             {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    origin = Origin(tmp_path / "served", tmp_path / "work", "repo")
    origin.commit({"app/cm.yaml": yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                                                  "metadata": {"name": "argo-cfg"}})})
    app: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "argo-app", "namespace": "argocd"},
        "spec": {"project": "default",
                 "source": {"repoURL": origin.file_url, "path": "app", "targetRevision": "main"},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": dest},
                 "syncPolicy": {"syncOptions": ["CreateNamespace=true"]}},
    }
    app_file = tmp_path / "argo.yaml"
    app_file.write_text(yaml.safe_dump(app))
    diff = run(["diff", "-f", str(app_file)], kubeconfig, tmp_path, control)
    assert diff.returncode == 1, diff.stdout + diff.stderr
    assert "argo-cfg" in diff.stdout and "(Missing)" in diff.stdout
    synced = run(["sync", "-f", str(app_file)], kubeconfig, tmp_path, control)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert call(kubesim.url, "GET", f"/api/v1/namespaces/{dest}/configmaps/argo-cfg"
                ).status == 200

    app["spec"]["syncPolicy"]["automated"] = {"selfheal": True}
    app_file.write_text(yaml.safe_dump(app))
    for command in ("diff", "sync"):
        typo = run([command, "-f", str(app_file)], kubeconfig, tmp_path, control)
        assert typo.returncode == 1, typo.stdout + typo.stderr
        assert ("spec.syncPolicy.automated.selfheal: unknown field; did you mean selfHeal?"
                in typo.stderr)
        assert "Traceback" not in typo.stderr


def test_sync_prune_of_an_unregistered_app_finds_its_objects_by_label(
        kubesim: KubeSim, kubeconfig: Path, tmp_path: Path) -> None:
    """No Application in the cluster, so no recorded inventory: what left Git is found by
    the app's tracking label and pruned; an object that merely carries a copy of the label
    and annotation (as a controller copies them to what it creates) is not the app's."""
    ident = uuid.uuid4().hex[:8]
    dest, control = f"dst-{ident}", f"ctl-{ident}"
    for ns in (dest, control):
        call(kubesim.url, "POST", "/api/v1/namespaces",
             {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    def cm(name: str) -> str:
        return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": name}, "data": {"k": name}})

    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": f"gone-{ident}"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}
    origin = Origin(tmp_path / "served", tmp_path / "work", "repo")
    origin.commit({"app/keep.yaml": cm("keep"), "app/gone.yaml": cm("gone"),
                   "app/role.yaml": yaml.safe_dump(role)})
    app = {"apiVersion": keys.API_VERSION, "kind": "Application",
           "metadata": {"name": "loose", "namespace": control},
           "spec": {"source": {"repoURL": origin.file_url, "path": "app",
                               "targetRevision": "main"},
                    "destination": {"server": "https://kubernetes.default.svc",
                                    "namespace": dest}}}
    app_file = tmp_path / "app.yaml"
    app_file.write_text(yaml.safe_dump(app))
    first = run(["sync", "-f", str(app_file)], kubeconfig, tmp_path, control)
    assert first.returncode == 0, first.stdout + first.stderr
    gone = call(kubesim.url, "GET", f"/api/v1/namespaces/{dest}/configmaps/gone").body
    # A copy: the label and annotation of `gone`, on an object of another name.
    copied = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "copied", "labels": gone["metadata"]["labels"],
                           "annotations": gone["metadata"]["annotations"]}}
    assert call(kubesim.url, "POST", f"/api/v1/namespaces/{dest}/configmaps", copied
                ).status == 201

    origin.git("rm", "-q", "app/gone.yaml", "app/role.yaml")
    origin.commit({}, message="remove gone and the role")
    diff = run(["diff", "-f", str(app_file)], kubeconfig, tmp_path, control)
    assert diff.returncode == 1
    assert "found by their tracking label" in diff.stderr
    assert "gone" in diff.stdout and "copied" not in diff.stdout
    pruned = run(["sync", "-f", str(app_file), "--prune"], kubeconfig, tmp_path, control)
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert "Pruned" in pruned.stdout, pruned.stdout
    assert call(kubesim.url, "GET", f"/api/v1/namespaces/{dest}/configmaps/gone").status == 404
    assert call(kubesim.url, "GET",
                f"/apis/rbac.authorization.k8s.io/v1/clusterroles/gone-{ident}").status == 404
    assert call(kubesim.url, "GET", f"/api/v1/namespaces/{dest}/configmaps/keep").status == 200
    assert call(kubesim.url, "GET",
                f"/api/v1/namespaces/{dest}/configmaps/copied").status == 200
