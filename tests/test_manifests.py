"""From Application to manifests: the render cache in Redis, and credentials from the cluster."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops_tasks import errors
from gitops_tasks.manifests import ManifestSource
from gitops_tasks.model import keys, parse_application
from gitops_tasks.render.cache import RenderCache
from gitops_tasks.repo_credentials import ClusterRepoCredentials
from gitops_tasks.settings import GitSettings
from gitops_tasks.source import GitMirrors
from kubesim.server import KubeSim
from tests.source.gitservers import GitHTTPServer, Origin

from .kubesim.http import call

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.27"}]}
"""


def application(repo_url: str, name: str = "web", path: str = "apps/web") -> Any:
    return parse_application({
        "apiVersion": keys.API_VERSION, "kind": "Application", "metadata": {"name": name},
        "spec": {"source": {"repoURL": repo_url, "path": path, "targetRevision": "main"},
                 "destination": {"server": "https://kubernetes.default.svc",
                                 "namespace": "prod"}},
    })


@pytest.fixture
def origin(tmp_path: Path) -> Origin:
    repo = Origin(tmp_path / "served", tmp_path / "work", "repo")
    repo.commit({"apps/web/deploy.yaml": DEPLOY,
                 "apps/web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"})
    return repo


def test_warm_render_does_no_git_or_tool_work(tmp_path: Path, origin: Origin,
                                              redis_client: Any) -> None:
    mirrors = GitMirrors(GitSettings(cache_dir=tmp_path / "cache"))
    redis_client.flushdb()
    source = ManifestSource(mirrors, RenderCache(redis_client))
    app = application(origin.file_url)
    cold = source.manifests(app)
    assert not cold.cached and cold.revision == origin.git("rev-parse", "HEAD")
    assert sorted(o["kind"] for o in cold.manifests) == ["ConfigMap", "Deployment"]
    exports = mirrors.stats.exports
    warm = source.manifests(app, sha=cold.revision)
    assert warm.cached and warm.manifests == cold.manifests
    assert mirrors.stats.exports == exports
    # Another process's cache (a fresh ManifestSource, fresh mirrors) hits the same entry.
    other_mirrors = GitMirrors(GitSettings(cache_dir=tmp_path / "other-cache"))
    other = ManifestSource(other_mirrors, RenderCache(redis_client))
    hit = other.manifests(app, sha=cold.revision)
    assert hit.cached and other_mirrors.stats.exports == 0
    assert not (tmp_path / "other-cache" / "trees").exists()
    # A new commit is a new key.
    origin.commit({"apps/web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\n"})
    new = source.manifests(app)
    assert not new.cached and new.revision != cold.revision
    assert {o["metadata"]["name"] for o in new.manifests} == {"web", "d"}
    # Same repo and commit, other app name: its own entry (tracking differs).
    other_app = source.manifests(application(origin.file_url, name="web2"), sha=new.revision)
    assert not other_app.cached
    assert other_app.manifests[0]["metadata"]["labels"][keys.APP_LABEL] == "web2"


def test_redis_down_still_renders(tmp_path: Path, origin: Origin) -> None:
    import redis

    dead = redis.Redis(port=1, socket_connect_timeout=0.2)
    source = ManifestSource(GitMirrors(GitSettings(cache_dir=tmp_path / "c")), RenderCache(dead))
    assert len(source.manifests(application(origin.file_url)).manifests) == 2


def test_errors_name_the_app(tmp_path: Path, origin: Origin) -> None:
    source = ManifestSource(GitMirrors(GitSettings(cache_dir=tmp_path / "c")))
    with pytest.raises(errors.RevisionNotFound) as info:
        source.manifests(application(origin.file_url), "gone")
    assert info.value.app == "web" and "gone" in str(info.value)
    with pytest.raises(errors.AppPathNotFound) as missing:
        source.manifests(application(origin.file_url, path="apps/nope"))
    assert missing.value.app == "web" and "apps/nope" in str(missing.value)


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[tuple[GitHTTPServer, Origin]]:
    origin = Origin(tmp_path / "served", tmp_path / "work", "private")
    origin.commit({"apps/web/deploy.yaml": DEPLOY})
    server = GitHTTPServer(tmp_path / "served", "bob", "tok-123")
    yield server, origin
    server.stop()


def test_credentials_come_from_labelled_secrets(
    tmp_path: Path, kubesim: KubeSim, api_client: Any,
    private_server: tuple[GitHTTPServer, Origin],
) -> None:
    server, _origin = private_server
    url = server.url("private")
    control = f"ctl-{uuid.uuid4().hex[:8]}"
    call(kubesim.url, "POST", "/api/v1/namespaces",
         {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": control}})
    creds = ClusterRepoCredentials(api_client, control, ttl=0)
    source = ManifestSource(GitMirrors(GitSettings(cache_dir=tmp_path / "c", timeout=10),
                                       credentials=creds))
    with pytest.raises(errors.AuthenticationFailed) as denied:
        source.manifests(application(url))
    assert "tok-123" not in str(denied.value)
    # Argo CD's label and a URL-prefix template ("repo-creds") work.
    b64 = {k: base64.b64encode(v.encode()).decode() for k, v in {
        "url": f"http://127.0.0.1:{server.port}/", "username": "bob",
        "password": "tok-123"}.items()}
    r = call(kubesim.url, "POST", f"/api/v1/namespaces/{control}/secrets", {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "creds",
                     "labels": {keys.ARGO_SECRET_TYPE_LABEL: keys.SECRET_TYPE_REPO_CREDS}},
        "data": b64})
    assert r.status == 201
    rendered = source.manifests(application(url))
    assert rendered.manifests[0]["kind"] == "Deployment"
    # Wrong password in an exact "repository" secret wins over the template and is refused.
    call(kubesim.url, "POST", f"/api/v1/namespaces/{control}/secrets", {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "exact",
                     "labels": {keys.SECRET_TYPE_LABEL: keys.SECRET_TYPE_REPOSITORY}},
        "stringData": {"url": url, "username": "bob", "password": "wrong"}})
    fresh = ManifestSource(GitMirrors(GitSettings(cache_dir=tmp_path / "c2", timeout=10),
                                      credentials=creds))
    with pytest.raises(errors.AuthenticationFailed):
        fresh.manifests(application(url))


def test_a_commit_that_touches_none_of_an_apps_inputs_costs_it_no_render(
        tmp_path: Path, redis_client: Any) -> None:
    """The render cache is keyed by the content of what the render reads: the app's path and,
    for Kustomize, the bases it references outside it. Other apps' commits cost no export and
    no render; a change in its base does."""
    repo = Origin(tmp_path / "served", tmp_path / "work", "mono")
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {n}}}\ndata: {{v: '{v}'}}\n"
    repo.commit({
        "apps/web/kustomization.yaml": "resources: [../../base/web, extra.yaml]\n",
        "apps/web/extra.yaml": cm.format(n="extra", v=0),
        "base/web/kustomization.yaml": "resources: [cm.yaml]\n",
        "base/web/cm.yaml": cm.format(n="base", v=0),
        "apps/api/cm.yaml": cm.format(n="api", v=0),
    })
    redis_client.flushdb()
    mirrors = GitMirrors(GitSettings(cache_dir=tmp_path / "cache"))
    source = ManifestSource(mirrors, RenderCache(redis_client))
    web = application(repo.file_url, name="web", path="apps/web")
    first = source.manifests(web)
    assert not first.cached
    assert {o["metadata"]["name"] for o in first.manifests} == {"extra", "base"}
    exports = mirrors.stats.exports
    # Another app's file changes: a new commit, and web's render is the cached one.
    repo.commit({"apps/api/cm.yaml": cm.format(n="api", v=1)})
    second = source.manifests(web)
    assert second.revision != first.revision
    assert second.cached and second.manifests == first.manifests
    assert mirrors.stats.exports == exports, "no export of the new commit"
    # Its base outside its path changes: rendered again.
    repo.commit({"base/web/cm.yaml": cm.format(n="base", v=2)})
    third = source.manifests(web)
    assert not third.cached
    assert next(o for o in third.manifests if o["metadata"]["name"] == "base")["data"] == \
        {"v": "2"}
    # A symlink among its inputs: keyed by the commit (its target may be anywhere).
    repo.symlink("apps/web/link.yaml", "../api/cm.yaml")
    repo.commit({})
    fourth = source.manifests(web)
    repo.commit({"apps/api/cm.yaml": cm.format(n="api", v=3)})
    fifth = source.manifests(web)
    assert not fourth.cached and not fifth.cached


def test_a_failed_list_of_credential_secrets_fails_only_repositories_that_need_them(
    tmp_path: Path, kubesim: KubeSim, api_client: Any, origin: Origin,
    private_server: tuple[GitHTTPServer, Origin],
) -> None:
    """Listing the credential Secrets raised into every render, so a user without RBAC for
    Secrets (or an API server hiccup) failed apps of public repositories too."""
    server, _origin = private_server
    control = f"ctl-{uuid.uuid4().hex[:8]}"
    call(kubesim.url, "POST", "/api/v1/namespaces",
         {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": control}})
    fault = kubesim.add_fault(path=f"/api/v1/namespaces/{control}/secrets$", method="GET",
                              status=403, reason="Forbidden")
    try:
        creds = ClusterRepoCredentials(api_client, control, ttl=30, retry=0.2)
        source = ManifestSource(GitMirrors(GitSettings(cache_dir=tmp_path / "c", timeout=10),
                                           credentials=creds))
        assert len(source.manifests(application(origin.file_url)).manifests) == 2
        with pytest.raises(errors.AuthenticationFailed):
            source.manifests(application(server.url("private")))
        assert fault.hits >= 1  # the list was asked for, and refused
    finally:
        kubesim.faults.remove(fault)
    b64 = {k: base64.b64encode(v.encode()).decode() for k, v in {
        "url": server.url("private"), "username": "bob", "password": "tok-123"}.items()}
    call(kubesim.url, "POST", f"/api/v1/namespaces/{control}/secrets", {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "creds",
                     "labels": {keys.SECRET_TYPE_LABEL: keys.SECRET_TYPE_REPOSITORY}},
        "data": b64})
    time.sleep(0.3)  # past the retry interval: the list is asked again, and answers
    assert source.manifests(application(server.url("private"))).manifests[0]["kind"] == \
        "Deployment"


def test_helm_repository_credentials_from_an_argo_cd_secret(
    tmp_path: Path, kubesim: KubeSim, api_client: Any,
) -> None:
    from gitops_tasks.charts.store import ChartRepositories
    from tests.render.chartrepo import HelmRepo, package

    control = f"ctl-{uuid.uuid4().hex[:8]}"
    call(kubesim.url, "POST", "/api/v1/namespaces",
         {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": control}})
    creds = ClusterRepoCredentials(api_client, control, ttl=0)
    with HelmRepo(auth=("helm-user", "helm-pass")).running() as charts:
        charts.publish(package("web", "1.0.0"), "web", "1.0.0")
        source = ManifestSource(GitMirrors(GitSettings(cache_dir=tmp_path / "c")),
                                charts=ChartRepositories(tmp_path / "c", creds.helm, timeout=5))
        app = parse_application({
            "apiVersion": keys.API_VERSION, "kind": "Application", "metadata": {"name": "web"},
            "spec": {"source": {"repoURL": charts.url, "chart": "web", "targetRevision": "1.0.0"},
                     "destination": {"server": "https://kubernetes.default.svc"}}})
        with pytest.raises(errors.AuthenticationFailed):
            source.manifests(app)
        # Argo CD's Helm repository Secret: `type: helm` beside url, username, password.
        b64 = {k: base64.b64encode(v.encode()).decode() for k, v in {
            "type": "helm", "name": "charts", "url": charts.url, "username": "helm-user",
            "password": "helm-pass"}.items()}
        r = call(kubesim.url, "POST", f"/api/v1/namespaces/{control}/secrets", {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "helm-charts",
                         "labels": {keys.ARGO_SECRET_TYPE_LABEL: keys.SECRET_TYPE_REPOSITORY}},
            "data": b64})
        assert r.status == 201
        assert source.manifests(app).revision == "1.0.0"
        # The same Secret is no Git credential.
        assert creds(charts.url) is None
