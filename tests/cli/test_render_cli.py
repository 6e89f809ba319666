"""`gitops-tasks render` as a user runs it: a real git repo, a real process, real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops_tasks.model import keys

CLI = str(Path(sys.executable).parent / "gitops-tasks")

MANIFESTS = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: prod
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.27"}]
"""


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "apps" / "web").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "t")
    (root / "apps" / "web" / "all.yaml").write_text(MANIFESTS)
    git(root, "add", ".")
    git(root, "commit", "-qm", "first")
    return root


def app_yaml(tmp_path: Path, repo: Path, **source: str) -> Path:
    app = {
        "apiVersion": keys.API_VERSION, "kind": "Application",
        "metadata": {"name": "web"},
        "spec": {"source": {"repoURL": f"file://{repo}", "path": "apps/web",
                            "targetRevision": "main", **source},
                 "destination": {"server": "https://kubernetes.default.svc",
                                 "namespace": "prod"}},
    }
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(app))
    return path


def run(tmp_path: Path, *args: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ,
               GITOPS_TASKS_GIT_CACHE_DIR=str(tmp_path / "cache"),
               GITOPS_TASKS_REDIS_URL=redis_url)
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=120)


def test_render_prints_tracked_manifests_and_uses_cache(tmp_path: Path, repo: Path,
                                                        redis_url: str) -> None:
    app = app_yaml(tmp_path, repo)
    first = run(tmp_path, "render", "-f", str(app), redis_url=redis_url)
    assert first.returncode == 0, first.stderr
    objs = list(yaml.safe_load_all(first.stdout))
    assert [(o["kind"], o["metadata"]["name"]) for o in objs] == [
        ("ConfigMap", "settings"), ("Deployment", "web")]
    for o in objs:
        assert o["metadata"]["annotations"][keys.TRACKING_ANNOTATION].startswith("web:")
        assert o["metadata"]["labels"][keys.APP_LABEL] == "web"
    sha = git(repo, "rev-parse", "HEAD")
    assert sha in first.stderr and "(cached)" not in first.stderr
    second = run(tmp_path, "render", "-f", str(app), redis_url=redis_url)
    assert second.returncode == 0 and "(cached)" in second.stderr
    assert second.stdout == first.stdout


def test_render_without_redis_and_at_a_revision(tmp_path: Path, repo: Path) -> None:
    old = git(repo, "rev-parse", "HEAD")
    (repo / "apps" / "web" / "all.yaml").write_text(MANIFESTS.replace("prod", "staging"))
    git(repo, "commit", "-qam", "second")
    app = app_yaml(tmp_path, repo)
    dead = "redis://127.0.0.1:1/0"
    now = run(tmp_path, "render", "-f", str(app), redis_url=dead)
    assert now.returncode == 0, now.stderr
    assert "staging" in now.stdout
    then = run(tmp_path, "render", "-f", str(app), "--revision", old[:10], redis_url=dead)
    assert then.returncode == 0, then.stderr
    assert "mode: prod" in then.stdout and old in then.stderr


def test_render_errors_are_clear(tmp_path: Path, repo: Path, redis_url: str) -> None:
    unknown = run(tmp_path, "render", "-f", str(app_yaml(tmp_path, repo)), "--revision",
                  "no-such-branch", redis_url=redis_url)
    assert unknown.returncode != 0
    assert "web" in unknown.stderr and "no-such-branch" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"apiVersion": keys.API_VERSION, "kind": "Application",
                                   "metadata": {"name": "x"},
                                   "spec": {"source": {"path": "../up"}}}))
    invalid = run(tmp_path, "render", "-f", str(bad), redis_url=redis_url)
    assert invalid.returncode != 0
    assert "spec.source.repoURL: is required" in invalid.stderr
    assert "spec.destination: is required" in invalid.stderr
    assert "Traceback" not in invalid.stderr
    (repo / "apps" / "web" / "broken.yaml").write_text("kind: ConfigMap\nmetadata: [\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "broken")
    broken = run(tmp_path, "render", "-f", str(app_yaml(tmp_path, repo)), redis_url=redis_url)
    assert broken.returncode != 0
    assert "broken.yaml" in broken.stderr and "Traceback" not in broken.stderr
    missing = run(tmp_path, "render", "-f", str(tmp_path / "nope.yaml"), redis_url=redis_url)
    assert missing.returncode != 0 and "cannot read" in missing.stderr


def test_render_of_a_private_repository_uses_the_credential_secrets_of_the_cluster(
        tmp_path: Path, kubesim: Any, kubeconfig: Path) -> None:
    """Only the tests handed credentials to the mirrors: `render -f` of a private repository
    failed with authentication refused whatever Secrets the control namespace held."""
    import base64
    import uuid

    from tests.kubesim.http import call
    from tests.source.gitservers import GitHTTPServer, Origin

    origin = Origin(tmp_path / "served", tmp_path / "work", "private")
    origin.commit({"app/cm.yaml": MANIFESTS})
    server = GitHTTPServer(tmp_path / "served", "bob", "tok-123")
    try:
        control = f"ctl-{uuid.uuid4().hex[:8]}"
        call(kubesim.url, "POST", "/api/v1/namespaces",
             {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": control}})
        app_file = tmp_path / "app.yaml"
        app_file.write_text(yaml.safe_dump({
            "apiVersion": keys.API_VERSION, "kind": "Application",
            "metadata": {"name": "private", "namespace": control},
            "spec": {"source": {"repoURL": server.url("private"), "path": "app",
                                "targetRevision": "main"},
                     "destination": {"server": "https://kubernetes.default.svc",
                                     "namespace": "default"}}}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_TASKS_")}
        env.update(KUBECONFIG=str(kubeconfig), GITOPS_TASKS_NAMESPACE=control,
                   GITOPS_TASKS_REDIS_URL="redis://127.0.0.1:1/0",
                   GITOPS_TASKS_GIT_CACHE_DIR=str(tmp_path / "cache"))

        def render() -> subprocess.CompletedProcess[str]:
            return subprocess.run([CLI, "render", "-f", str(app_file)], capture_output=True,
                                  text=True, env=env, timeout=120)

        denied = render()
        assert denied.returncode == 1 and "refused access" in denied.stderr, denied.stderr
        data = {k: base64.b64encode(v.encode()).decode() for k, v in {
            "url": server.url("private"), "username": "bob", "password": "tok-123"}.items()}
        call(kubesim.url, "POST", f"/api/v1/namespaces/{control}/secrets", {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "repo", "labels": {
                keys.ARGO_SECRET_TYPE_LABEL: keys.SECRET_TYPE_REPOSITORY}},
            "data": data})
        done = render()
        assert done.returncode == 0, done.stderr
        assert [d["kind"] for d in yaml.safe_load_all(done.stdout)] == ["ConfigMap", "Deployment"]
        assert "tok-123" not in done.stdout + done.stderr
    finally:
        server.stop()


def test_render_refuses_a_typo_and_names_the_field(tmp_path: Path, repo: Path) -> None:
    """A misspelt field used to be dropped, rendering HEAD instead of the revision asked for."""
    app = yaml.safe_load(app_yaml(tmp_path, repo).read_text())
    app["spec"]["source"]["targetRevison"] = app["spec"]["source"].pop("targetRevision")
    app["spec"]["syncPolicy"] = {"syncOptions": ["CreateNamespce=true"]}
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(app))
    out = run(tmp_path, "render", "-f", str(path), redis_url="redis://127.0.0.1:1/0")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "spec.source.targetRevison: unknown field; did you mean targetRevision?" in out.stderr
    assert ("spec.syncPolicy.syncOptions[0]: unknown sync option CreateNamespce; did you mean "
            "CreateNamespace?") in out.stderr
    assert out.stdout == "" and "Traceback" not in out.stderr


def test_render_takes_an_argo_cd_manifest_as_it_is(tmp_path: Path, repo: Path) -> None:
    app = yaml.safe_load(app_yaml(tmp_path, repo).read_text())
    app["apiVersion"] = "argoproj.io/v1alpha1"
    path = tmp_path / "argo.yaml"
    path.write_text(yaml.safe_dump(app))
    out = run(tmp_path, "render", "-f", str(path), redis_url="redis://127.0.0.1:1/0")
    assert out.returncode == 0, out.stderr
    assert [o["kind"] for o in yaml.safe_load_all(out.stdout)] == ["ConfigMap", "Deployment"]


def test_render_a_chart_from_a_helm_repository(tmp_path: Path) -> None:
    from tests.render.chartrepo import HelmRepo, package

    with HelmRepo().running() as charts:
        for version in ("1.0.0", "1.1.0"):
            charts.publish(package("web", version), "web", version)
        path = tmp_path / "app.yaml"
        path.write_text(yaml.safe_dump({
            "apiVersion": keys.API_VERSION, "kind": "Application", "metadata": {"name": "web"},
            "spec": {"source": {"repoURL": charts.url, "chart": "web",
                                "targetRevision": "1.*"},
                     "destination": {"server": "https://kubernetes.default.svc",
                                     "namespace": "prod"}}}))
        done = run(tmp_path, "render", "-f", str(path), redis_url="redis://127.0.0.1:1/0")
        assert done.returncode == 0, done.stderr
        assert [o["metadata"]["name"] for o in yaml.safe_load_all(done.stdout)] == ["web-cm"]
        assert "1 objects at 1.1.0" in done.stderr
        pinned = run(tmp_path, "render", "-f", str(path), "--revision", "1.0.0",
                     redis_url="redis://127.0.0.1:1/0")
        assert pinned.returncode == 0 and "at 1.0.0" in pinned.stderr
