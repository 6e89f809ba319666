"""Applications whose source is a chart in a Helm repository (https:// with index.yaml, or an
oci:// registry), served on loopback by the test: the version a targetRevision range picks is
the revision, the chart renders with the helm options, warm renders fetch nothing, a sync
applies it and records the version, and the sweep resolves such apps without git."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops_tasks import errors
from gitops_tasks.charts.store import ChartRepositories
from gitops_tasks.charts.transfer import ChartNotFound
from gitops_tasks.cluster import Destinations
from gitops_tasks.manifests import ManifestSource
from gitops_tasks.model import keys, parse_application
from gitops_tasks.model.application import Application
from gitops_tasks.render.cache import RenderCache
from gitops_tasks.settings import GitSettings, ReconcileSettings
from gitops_tasks.source import GitMirrors, RepoCredentials, match_helm_credentials
from gitops_tasks.sweeping import SeenStore, Sweeper
from tests.render.chartrepo import HelmRepo, OciRegistry, package

CONFIGMAP = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-web\n"
    "data:\n  version: \"{{ .Chart.Version }}\"\n  color: \"{{ .Values.color }}\"\n"
    "  size: \"{{ .Values.size }}\"\n")


def web_chart(version: str) -> bytes:
    """Chart `web` with a second value file shipped inside it (values-prod.yaml)."""
    archive = package("web", version, templates={"cm.yaml": CONFIGMAP},
                      values="color: blue\nsize: s\n")
    return _with_file(archive, "web/values-prod.yaml", "color: red\n")


def _with_file(archive: bytes, name: str, text: str) -> bytes:
    import io
    import tarfile

    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as src, \
            tarfile.open(fileobj=out, mode="w:gz") as dst:
        for member in src:
            f = src.extractfile(member)
            dst.addfile(member, f)
        info = tarfile.TarInfo(name)
        info.size = len(text.encode())
        dst.addfile(info, io.BytesIO(text.encode()))
    return out.getvalue()


def chart_app(repo_url: str, revision: str, *, name: str = "web",
              helm: dict[str, Any] | None = None, namespace: str = "prod") -> Application:
    source: dict[str, Any] = {"repoURL": repo_url, "chart": "web", "targetRevision": revision}
    if helm is not None:
        source["helm"] = helm
    return parse_application({
        "apiVersion": keys.API_VERSION, "kind": "Application",
        "metadata": {"name": name, "namespace": "gitops-tasks"},
        "spec": {"source": source,
                 "destination": {"server": "https://kubernetes.default.svc",
                                 "namespace": namespace}}})


@pytest.fixture
def repo() -> Iterator[HelmRepo]:
    with HelmRepo().running() as server:
        for version in ("1.0.0", "1.2.0", "1.2.5", "2.0.0"):
            server.publish(web_chart(version), "web", version)
        yield server


def source_for(tmp_path: Path, redis_client: Any = None,
               charts: ChartRepositories | None = None) -> ManifestSource:
    return ManifestSource(GitMirrors(GitSettings(cache_dir=tmp_path / "cache")),
                          RenderCache(redis_client), charts=charts)


def data(rendered: Any) -> dict[str, str]:
    cm = next(o for o in rendered.manifests if o["kind"] == "ConfigMap")
    return dict(cm["data"])


def test_a_range_picks_the_version_which_is_the_revision(tmp_path: Path,
                                                        repo: HelmRepo) -> None:
    source = source_for(tmp_path)
    app = chart_app(repo.url, "1.2.*", helm={
        "valueFiles": ["values-prod.yaml"], "parameters": [{"name": "size", "value": "xl"}],
        "releaseName": "shop"})
    assert source.resolve(app) == "1.2.5"
    rendered = source.manifests(app)
    assert rendered.revision == "1.2.5" and not rendered.cached
    # Value files are the chart's own (relative to it), then parameters, as in Argo CD.
    assert data(rendered) == {"version": "1.2.5", "color": "red", "size": "xl"}
    cm = next(o for o in rendered.manifests if o["kind"] == "ConfigMap")
    assert cm["metadata"]["name"] == "shop-web"
    assert cm["metadata"]["annotations"][keys.TRACKING_ANNOTATION].startswith("web:")


@pytest.mark.parametrize("revision, version", [(">=1.0 <2", "1.2.5"), ("*", "2.0.0"),
                                               ("1.0.0", "1.0.0"), ("~1.2.0", "1.2.5")])
def test_argo_cd_revision_forms(tmp_path: Path, repo: HelmRepo, revision: str,
                                version: str) -> None:
    assert source_for(tmp_path).manifests(chart_app(repo.url, revision)).revision == version


def test_warm_renders_fetch_nothing_for_a_version(tmp_path: Path, repo: HelmRepo,
                                                  redis_client: Any) -> None:
    redis_client.flushdb()
    source = source_for(tmp_path, redis_client)
    app = chart_app(repo.url, "1.2.*")
    source.manifests(app)
    assert repo.requests == ["/charts/index.yaml", "/charts/packages/web-1.2.5.tgz"]
    # A range is resolved again (a new version may be out), nothing else is fetched.
    again = source.manifests(app)
    assert again.cached and repo.requests[2:] == ["/charts/index.yaml"]
    # The revision a sync or a rollback pins costs no request at all.
    pinned = source.manifests(app, "1.2.5")
    assert pinned.cached and len(repo.requests) == 3
    # A new version in range is picked up by the next render.
    repo.publish(web_chart("1.2.7"), "web", "1.2.7")
    assert source.manifests(app).revision == "1.2.7"


def test_the_archive_store_survives_the_render_cache(tmp_path: Path, repo: HelmRepo) -> None:
    app = chart_app(repo.url, "1.0.0")
    source_for(tmp_path).manifests(app)
    source_for(tmp_path).manifests(app)  # no Redis: renders again, from the stored archive
    assert repo.requests.count("/charts/packages/web-1.0.0.tgz") == 1


def test_no_matching_version_names_chart_and_repository(tmp_path: Path, repo: HelmRepo) -> None:
    with pytest.raises(ChartNotFound) as err:
        source_for(tmp_path).manifests(chart_app(repo.url, "^3"))
    assert err.value.app == "web"
    assert f"no version of chart 'web' in {repo.url} matches '^3'" in str(err.value)


def test_an_unreachable_repository_is_transient(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(errors.RepoUnreachable):
        source_for(tmp_path).manifests(chart_app(f"http://127.0.0.1:{port}/charts", "1.0.0"))


def test_credentials_are_not_in_messages(tmp_path: Path) -> None:
    with HelmRepo(auth=("u", "p4ss")).running() as repo:
        repo.publish(web_chart("1.0.0"), "web", "1.0.0")
        with pytest.raises(errors.AuthenticationFailed) as err:
            source_for(tmp_path).manifests(chart_app(
                repo.url.replace("http://", "http://u:wrong@"), "1.0.0"))
        assert "wrong" not in str(err.value)
        # Credentials embedded in the repoURL are used, as for Git.
        embedded = repo.url.replace("http://", "http://u:p4ss@")
        assert source_for(tmp_path).manifests(chart_app(embedded, "1.0.0")).revision == "1.0.0"


def test_oci_chart_source_with_a_registry_token(tmp_path: Path) -> None:
    with OciRegistry(auth=("robot", "pw"), bearer=True).running() as registry:
        for version in ("1.0.0", "1.1.0", "2.0.0"):
            registry.push("charts/web", web_chart(version), version)
        creds = [RepoCredentials(url=f"oci://{registry.host}/charts", username="robot",
                                 password="pw", repo_type="helm", oci_force_http=True)]
        charts = ChartRepositories(tmp_path / "cache",
                                   lambda url: match_helm_credentials(url, creds), timeout=5)
        source = source_for(tmp_path, charts=charts)
        rendered = source.manifests(chart_app(f"oci://{registry.host}/charts", "1.*"))
        assert rendered.revision == "1.1.0" and data(rendered)["version"] == "1.1.0"


def test_sync_applies_the_chart_and_records_its_version(env: Any, repo: HelmRepo) -> None:
    app = env.app("web", ".", source={"repoURL": repo.url, "chart": "web",
                                      "targetRevision": "1.2.*"})
    outcome = env.reconciler.sync(app)
    assert outcome.succeeded, outcome.message
    assert outcome.revision == "1.2.5"
    live = env.live("/api/v1/namespaces/{ns}/configmaps", "web-web")
    assert live is not None and live["data"]["version"] == "1.2.5"
    status = env.status("web")
    assert status["sync"]["revision"] == "1.2.5"
    assert status["history"][-1]["revision"] == "1.2.5"
    # A new version in range: the next refresh sees the app out of sync at that version.
    repo.publish(web_chart("1.2.6"), "web", "1.2.6")
    refreshed = env.reconciler.refresh_app(parse_application(env.apps.get("web")))
    assert refreshed.comparison.revision == "1.2.6"
    assert refreshed.comparison.sync_status == "OutOfSync"


def test_the_sweep_resolves_chart_apps_without_git(tmp_path: Path, repo: HelmRepo,
                                                   api_client: Any) -> None:
    repo.publish(package("api", "0.3.0"), "api", "0.3.0")
    mirrors = GitMirrors(GitSettings(cache_dir=tmp_path / "cache"))

    def obj(name: str, chart: str, revision: str) -> dict[str, Any]:
        return {"apiVersion": keys.API_VERSION, "kind": "Application",
                "metadata": {"name": name, "namespace": "gitops-tasks"},
                "spec": {"source": {"repoURL": repo.url, "chart": chart,
                                    "targetRevision": revision},
                         "destination": {"server": "https://kubernetes.default.svc",
                                         "namespace": "prod"}}}

    sweeper = Sweeper(mirrors, Destinations(api_client, control_namespace="gitops-tasks"),
                      SeenStore(None), ReconcileSettings(), namespace="gitops-tasks",
                      clock=time.time, charts=ChartRepositories(tmp_path / "cache", timeout=5))
    result = sweeper.sweep([obj("web", "web", "1.*"), obj("web-2", "web", "*"),
                            obj("api", "api", "0.*"), obj("gone", "nosuch", "*")])
    assert sorted((d.name, d.sha) for d in result.due) == [
        ("api", "0.3.0"), ("gone", None), ("web", "1.2.5"), ("web-2", "2.0.0")]
    # One index read for all the charts of the repository; no git at all.
    assert repo.requests == ["/charts/index.yaml"]
    assert mirrors.stats.ls_remotes == 0 and result.shas == {}
    assert len(result.problems) == 1 and "chart 'nosuch' not found" in result.problems[0]
