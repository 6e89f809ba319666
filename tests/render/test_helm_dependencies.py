"""Helm dependencies built before rendering, as `helm dependency build` does: vendored charts,
file:// charts in the repository, Helm repositories and OCI registries served on loopback by
the test, Chart.lock, digests, credentials, and the errors for a dependency that cannot be had.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops_tasks.charts.store import ChartRepositories
from gitops_tasks.errors import RenderError, TransientError, UnsafePath
from gitops_tasks.model.application import HelmSource, Source
from gitops_tasks.render import RenderContext, render
from gitops_tasks.settings import RenderSettings
from gitops_tasks.source import RepoCredentials, match_helm_credentials

from .chartrepo import HelmRepo, OciRegistry, configmap_template, package, write_chart
from .helpers import APP, NAMESPACE, REVISION, names

URL = "https://git.example.com/org/repo.git"

if shutil.which("helm"):
    pytest.skip("a helm binary is on PATH; these tests cover the SDK engine",
                allow_module_level=True)


def context(charts: ChartRepositories | None, revision: str = REVISION) -> RenderContext:
    return RenderContext(app_name=APP, namespace=NAMESPACE, revision=revision, repo_url=URL,
                         settings=RenderSettings(tool_timeout=30), charts=charts)


def helm_creds(*creds: RepoCredentials) -> Any:
    return lambda url: match_helm_credentials(url, list(creds))


def app_chart(tree: Path, dependencies: list[dict[str, Any]], values: str = "") -> Source:
    write_chart(tree / "apps" / "web", "web", "0.1.0", dependencies=dependencies,
                values=values)
    return Source(URL, path="apps/web", helm=HelmSource())


def configmaps(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}


@pytest.fixture
def repo() -> Iterator[HelmRepo]:
    with HelmRepo().running() as server:
        yield server


@pytest.fixture
def store(tmp_path: Path) -> ChartRepositories:
    return ChartRepositories(tmp_path / "cache", timeout=5)


# ------------------------------------------------------------------- missing, vendored, file://

def test_a_dependency_that_is_nowhere_fails_instead_of_rendering_nothing(tmp_path: Path) -> None:
    source = app_chart(tmp_path, [{"name": "db", "version": "1.0.0"}])
    with pytest.raises(RenderError) as err:
        render(tmp_path, source, context(None))
    assert "chart 'web': dependency 'db' 1.0.0: not in charts/ and no repository" \
        in str(err.value)
    assert err.value.file == "apps/web/Chart.yaml"


def test_vendored_dependencies_are_used_as_they_are(tmp_path: Path) -> None:
    source = app_chart(tmp_path, [{"name": "db", "version": "1.0.0",
                                   "repository": "https://charts.invalid"}])
    write_chart(tmp_path / "apps" / "web" / "charts" / "db", "db", "1.0.0")
    # No chart store at all: a vendored dependency never needs one.
    objects = render(tmp_path, source, context(None))
    assert set(configmaps(objects)) == {"web-cm", "db-cm"}


def test_vendored_archive_counts_as_present(tmp_path: Path) -> None:
    source = app_chart(tmp_path, [{"name": "db", "version": "1.0.0",
                                   "repository": "https://charts.invalid"}])
    (tmp_path / "apps" / "web" / "charts").mkdir()
    (tmp_path / "apps" / "web" / "charts" / "db-1.0.0.tgz").write_bytes(package("db", "1.0.0"))
    assert set(configmaps(render(tmp_path, source, context(None)))) == {"web-cm", "db-cm"}


def test_file_dependency_inside_the_repository(tmp_path: Path) -> None:
    write_chart(tmp_path / "libs" / "common", "common", "2.3.0")
    source = app_chart(tmp_path, [{"name": "common", "version": "^2.0.0",
                                   "repository": "file://../../libs/common"}])
    objects = render(tmp_path, source, context(None))
    assert configmaps(objects)["common-cm"]["chart"] == "common-2.3.0"
    # The shared tree is never written to.
    assert not (tmp_path / "apps" / "web" / "charts").exists()


def test_file_dependency_leaving_the_repository_is_refused(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    write_chart(tmp_path / "outside", "outside", "1.0.0")
    source = app_chart(tree, [{"name": "outside", "version": "1.0.0",
                               "repository": "file://../../../outside"}])
    with pytest.raises(UnsafePath, match="leaves the repository"):
        render(tree, source, context(None))


def test_file_dependency_of_the_wrong_version(tmp_path: Path) -> None:
    write_chart(tmp_path / "libs" / "common", "common", "1.0.0")
    source = app_chart(tmp_path, [{"name": "common", "version": ">=2",
                                   "repository": "file://../../libs/common"}])
    with pytest.raises(RenderError, match=r"is version '1\.0\.0'"):
        render(tmp_path, source, context(None))


# ------------------------------------------------------------------------ Helm repositories

def publish_versions(repo: HelmRepo, name: str, *versions: str) -> None:
    for version in versions:
        repo.publish(package(name, version), name, version)


def test_repository_dependency_with_a_range_takes_the_highest_match(
        tmp_path: Path, repo: HelmRepo, store: ChartRepositories) -> None:
    publish_versions(repo, "db", "1.0.0", "1.2.0", "1.2.5", "1.3.0", "2.0.0", "1.2.9-rc.1")
    source = app_chart(tmp_path, [{"name": "db", "version": "1.2.*", "repository": repo.url}])
    objects = render(tmp_path, source, context(store))
    assert configmaps(objects)["db-cm"]["chart"] == "db-1.2.5"


def test_chart_lock_pins_the_version(tmp_path: Path, repo: HelmRepo,
                                     store: ChartRepositories) -> None:
    publish_versions(repo, "db", "1.2.0", "1.2.5")
    source = app_chart(tmp_path, [{"name": "db", "version": "1.2.*", "repository": repo.url}])
    (tmp_path / "apps" / "web" / "Chart.lock").write_text(yaml.safe_dump({
        "dependencies": [{"name": "db", "repository": repo.url, "version": "1.2.0"}],
        "digest": "sha256:0", "generated": "2026-01-01T00:00:00Z"}))
    objects = render(tmp_path, source, context(store))
    assert configmaps(objects)["db-cm"]["chart"] == "db-1.2.0"


def test_chart_lock_out_of_sync_with_chart_yaml(tmp_path: Path, repo: HelmRepo,
                                                store: ChartRepositories) -> None:
    publish_versions(repo, "db", "1.2.0", "2.0.0")
    source = app_chart(tmp_path, [{"name": "db", "version": "^2", "repository": repo.url}])
    (tmp_path / "apps" / "web" / "Chart.lock").write_text(yaml.safe_dump({
        "dependencies": [{"name": "db", "repository": repo.url, "version": "1.2.0"}]}))
    with pytest.raises(RenderError, match=r"Chart\.lock pins '1\.2\.0'") as err:
        render(tmp_path, source, context(store))
    assert err.value.file == "apps/web/Chart.lock"
    assert repo.requests == []


def test_a_warm_render_fetches_nothing_and_a_new_commit_no_archive(
        tmp_path: Path, repo: HelmRepo, store: ChartRepositories) -> None:
    publish_versions(repo, "db", "1.0.0")
    source = app_chart(tmp_path, [{"name": "db", "version": "~1.0", "repository": repo.url}])
    render(tmp_path, source, context(store))
    assert repo.requests == ["/charts/index.yaml", "/charts/packages/db-1.0.0.tgz"]
    render(tmp_path, source, context(store))
    assert len(repo.requests) == 2  # same commit: the resolved archives are remembered
    publish_versions(repo, "db", "1.0.1")
    objects = render(tmp_path, source, context(store, revision="f" * 40))
    # Another commit resolves the range again (Helm would): a new version, one download.
    assert repo.requests[2:] == ["/charts/index.yaml", "/charts/packages/db-1.0.1.tgz"]
    assert configmaps(objects)["db-cm"]["chart"] == "db-1.0.1"
    render(tmp_path, source, context(store, revision="e" * 40))
    assert repo.requests[4:] == ["/charts/index.yaml"]  # the archive is in the store


def test_condition_tags_alias_and_import_values_are_helms(
        tmp_path: Path, repo: HelmRepo, store: ChartRepositories) -> None:
    exports = "exports:\n  conn:\n    dbport: 5432\n"
    repo.publish(package("db", "1.0.0", values=exports), "db", "1.0.0")
    publish_versions(repo, "cache", "1.0.0")
    publish_versions(repo, "metrics", "1.0.0")
    source = app_chart(tmp_path, [
        {"name": "db", "version": "1.0.0", "repository": repo.url, "alias": "primary",
         "import-values": ["conn"]},
        {"name": "cache", "version": "1.0.0", "repository": repo.url,
         "condition": "cache.enabled"},
        {"name": "metrics", "version": "1.0.0", "repository": repo.url, "tags": ["extras"]},
    ], values="cache:\n  enabled: false\ntags:\n  extras: false\n")
    (tmp_path / "apps" / "web" / "templates" / "port.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: port\n"
        "data:\n  port: \"{{ .Values.dbport }}\"\n")
    objects = render(tmp_path, source, context(store))
    maps = configmaps(objects)
    assert set(maps) == {"web-cm", "db-cm", "port"}
    assert maps["port"]["port"] == "5432"
    assert maps["db-cm"]["chart"] == "primary-1.0.0"  # the alias is the subchart's name


def test_digest_mismatch_is_an_error(tmp_path: Path, repo: HelmRepo,
                                     store: ChartRepositories) -> None:
    repo.publish(package("db", "1.0.0"), "db", "1.0.0", digest="0" * 64)
    source = app_chart(tmp_path, [{"name": "db", "version": "1.0.0", "repository": repo.url}])
    with pytest.raises(RenderError, match="digest mismatch") as err:
        render(tmp_path, source, context(store))
    assert f"dependency 'db' 1.0.0 from {repo.url}" in str(err.value)
    assert not list((tmp_path / "cache" / "charts").glob("*.tgz"))


def test_index_without_digest_still_works(tmp_path: Path, repo: HelmRepo,
                                          store: ChartRepositories) -> None:
    repo.publish(package("db", "1.0.0"), "db", "1.0.0", with_digest=False)
    source = app_chart(tmp_path, [{"name": "db", "version": "1.0.0", "repository": repo.url}])
    assert "db-cm" in configmaps(render(tmp_path, source, context(store)))


@pytest.mark.parametrize("version, chart, message", [
    ("^3", "db", "no version of chart 'db' in http://127.0.0.1:{port}/charts matches '^3'"),
    ("1.0.0", "nosuch", "chart 'nosuch' not found in http://127.0.0.1:{port}/charts"),
])
def test_no_such_chart_or_version(tmp_path: Path, repo: HelmRepo, store: ChartRepositories,
                                  version: str, chart: str, message: str) -> None:
    publish_versions(repo, "db", "1.0.0")
    source = app_chart(tmp_path, [{"name": chart, "version": version,
                                   "repository": repo.url}])
    with pytest.raises(RenderError) as err:
        render(tmp_path, source, context(store))
    assert message.format(port=repo.port) in str(err.value)
    assert f"dependency {chart!r}" in str(err.value)


def test_http_error_names_the_dependency(tmp_path: Path, repo: HelmRepo,
                                         store: ChartRepositories) -> None:
    publish_versions(repo, "db", "1.0.0")
    repo.files.clear()  # the index points at an archive that is gone
    source = app_chart(tmp_path, [{"name": "db", "version": "1.0.0", "repository": repo.url}])
    with pytest.raises(RenderError, match=r"dependency 'db' 1.0.0 from .*HTTP 404"):
        render(tmp_path, source, context(store))


def test_unreachable_repository(tmp_path: Path, store: ChartRepositories) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    source = app_chart(tmp_path, [{"name": "db", "version": "1.0.0",
                                   "repository": f"http://127.0.0.1:{port}/charts"}])
    with pytest.raises(RenderError, match=r"dependency 'db'.*is unreachable") as err:
        render(tmp_path, source, context(store))
    # Worth retrying: the refresh backs off and tries again instead of waiting for Git.
    assert isinstance(err.value, TransientError)


def test_archive_over_the_size_cap_is_refused(tmp_path: Path, repo: HelmRepo) -> None:
    big = "x" * 200_000
    repo.publish(package("db", "1.0.0", templates={"cm.yaml": configmap_template("db-cm"),
                                                   "big.txt": big}), "db", "1.0.0")
    repo.files["/charts/packages/db-1.0.0.tgz"] += b"\0" * 300_000
    store = ChartRepositories(tmp_path / "cache", timeout=5, max_bytes=100_000)
    source = app_chart(tmp_path, [{"name": "db", "version": "1.0.0", "repository": repo.url}])
    with pytest.raises(RenderError, match="larger than 100000 bytes"):
        render(tmp_path, source, context(store))


def test_credentials_from_a_helm_repository_secret(tmp_path: Path) -> None:
    with HelmRepo(auth=("reader", "s3cret")).running() as repo:
        publish_versions(repo, "db", "1.0.0")
        source = app_chart(tmp_path, [{"name": "db", "version": "1.0.0",
                                       "repository": repo.url}])
        anonymous = ChartRepositories(tmp_path / "cache", timeout=5)
        with pytest.raises(RenderError, match=r"dependency 'db'.*access refused \(HTTP 401\)"):
            render(tmp_path, source, context(anonymous))
        wrong = ChartRepositories(tmp_path / "cache", helm_creds(RepoCredentials(
            url=repo.url, username="reader", password="nope", repo_type="helm")), timeout=5)
        with pytest.raises(RenderError, match="access refused") as err:
            render(tmp_path, source, context(wrong))
        assert "nope" not in str(err.value)
        # A Git credential for the same URL is not a Helm repository's.
        git_only = ChartRepositories(tmp_path / "cache", helm_creds(RepoCredentials(
            url=repo.url, username="reader", password="s3cret")), timeout=5)
        with pytest.raises(RenderError, match="access refused"):
            render(tmp_path, source, context(git_only))
        good = ChartRepositories(tmp_path / "cache", helm_creds(RepoCredentials(
            url=repo.url, username="reader", password="s3cret", repo_type="helm")), timeout=5)
        assert "db-cm" in configmaps(render(tmp_path, source, context(good)))


def test_credentials_go_to_the_repository_host_only(tmp_path: Path) -> None:
    with HelmRepo(auth=("reader", "s3cret")).running() as repo, \
            HelmRepo(prefix="mirror").running() as elsewhere:
        archive = package("db", "1.0.0")
        elsewhere.publish(archive, "db", "1.0.0")
        # The index names an archive on another host (a CDN, GitHub releases): Helm fetches
        # it there without the repository's credentials (passCredentials: false).
        repo.publish(archive, "db", "1.0.0",
                     url=f"http://localhost:{elsewhere.port}/mirror/packages/db-1.0.0.tgz")
        store = ChartRepositories(tmp_path / "cache", helm_creds(RepoCredentials(
            url=repo.url, username="reader", password="s3cret", repo_type="helm")), timeout=5)
        source = app_chart(tmp_path, [{"name": "db", "version": "1.0.0",
                                       "repository": repo.url}])
        assert "db-cm" in configmaps(render(tmp_path, source, context(store)))
        assert elsewhere.requests == ["/mirror/packages/db-1.0.0.tgz"]
        assert elsewhere.authorizations == [None]
        assert repo.authorizations[0] is not None


def test_template_errors_name_repository_paths_not_the_scratch_copy(
        tmp_path: Path, repo: HelmRepo, store: ChartRepositories) -> None:
    publish_versions(repo, "db", "1.0.0")
    source = app_chart(tmp_path, [{"name": "db", "version": "1.0.0", "repository": repo.url}])
    (tmp_path / "apps" / "web" / "templates" / "bad.yaml").write_text(
        "kind: ConfigMap\n{{ .Values.nope.deeper }}\n")
    with pytest.raises(RenderError) as err:
        render(tmp_path, source, context(store))
    assert err.value.file == "apps/web/templates/bad.yaml"
    assert "gitops-render" not in str(err.value)


def test_links_to_files_elsewhere_in_the_repository_survive_the_scratch_copy(
        tmp_path: Path, repo: HelmRepo, store: ChartRepositories) -> None:
    publish_versions(repo, "db", "1.0.0")
    source = app_chart(tmp_path, [{"name": "db", "version": "1.0.0", "repository": repo.url}])
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "_helpers.tpl").write_text('{{- define "owner" -}}team-a{{- end -}}')
    templates = tmp_path / "apps" / "web" / "templates"
    (templates / "_helpers.tpl").symlink_to("../../../shared/_helpers.tpl")
    (templates / "owner.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owner\n"
        "data:\n  owner: {{ include \"owner\" . }}\n")
    assert configmaps(render(tmp_path, source, context(store)))["owner"] == {"owner": "team-a"}


def test_repository_by_name_is_refused_with_a_hint(tmp_path: Path,
                                                  store: ChartRepositories) -> None:
    source = app_chart(tmp_path, [{"name": "db", "version": "1.0.0", "repository": "@stable"}])
    with pytest.raises(RenderError, match="use the repository URL"):
        render(tmp_path, source, context(store))


# ----------------------------------------------------------------------------------- OCI

@pytest.mark.parametrize("bearer", [False, True], ids=["basic", "bearer-token"])
def test_oci_dependency_with_credentials(tmp_path: Path, bearer: bool) -> None:
    with OciRegistry(auth=("robot", "pw"), bearer=bearer).running() as registry:
        for version in ("0.9.0", "1.0.0", "1.4.2", "2.0.0"):
            registry.push("team/charts/db", package("db", version), version)
        repo_url = f"oci://{registry.host}/team/charts"
        source = app_chart(tmp_path, [{"name": "db", "version": ">=1.0 <2",
                                       "repository": repo_url}])
        creds = RepoCredentials(url=f"{registry.host}/team", username="robot", password="pw",
                                repo_type="helm", kind="repo-creds", oci_force_http=True)
        store = ChartRepositories(tmp_path / "cache", helm_creds(creds), timeout=5)
        objects = render(tmp_path, source, context(store))
        assert configmaps(objects)["db-cm"]["chart"] == "db-1.4.2"
        assert any(r.startswith("/v2/team/charts/db/blobs/sha256:") for r in registry.requests)

        refused = ChartRepositories(tmp_path / "cache2", helm_creds(RepoCredentials(
            url=f"{registry.host}/team", username="robot", password="bad", repo_type="helm",
            kind="repo-creds", oci_force_http=True)), timeout=5)
        with pytest.raises(RenderError, match=r"dependency 'db'.*access refused") as err:
            render(tmp_path, source, context(refused))
        assert repo_url in str(err.value)


def test_oci_exact_version_and_missing_tag(tmp_path: Path) -> None:
    with OciRegistry().running() as registry:
        registry.push("charts/db", package("db", "1.0.0"), "1.0.0")
        creds = RepoCredentials(url=f"oci://{registry.host}/charts", repo_type="helm",
                                oci_force_http=True)
        store = ChartRepositories(tmp_path / "cache", helm_creds(creds), timeout=5)
        source = app_chart(tmp_path, [{"name": "db", "version": "1.0.0",
                                       "repository": f"oci://{registry.host}/charts"}])
        assert "db-cm" in configmaps(render(tmp_path, source, context(store)))
        assert not any("tags/list" in r for r in registry.requests)
        source = app_chart(tmp_path, [{"name": "db", "version": "1.1.0",
                                       "repository": f"oci://{registry.host}/charts"}])
        with pytest.raises(RenderError, match=r"dependency 'db' 1.1.0 .*not found"):
            render(tmp_path, source, context(store, revision="a" * 40))


def test_names_of_rendered_objects_are_stable(tmp_path: Path, repo: HelmRepo,
                                              store: ChartRepositories) -> None:
    publish_versions(repo, "db", "1.0.0")
    source = app_chart(tmp_path, [{"name": "db", "version": "1.0.0", "repository": repo.url}])
    assert sorted(names(render(tmp_path, source, context(store)))) == [
        ("ConfigMap", "db-cm"), ("ConfigMap", "web-cm")]


def test_the_engine_refuses_a_chart_with_a_dependency_missing_as_helm_template_does(
        tmp_path: Path) -> None:
    # What helm_deps normally prevents, checked by Helm's loader itself: a render never
    # leaves a declared dependency out without a word.
    import json
    import subprocess
    import sys

    from gitops_tasks.render import _helm_engine

    chart = write_chart(tmp_path / "web", "web", "0.1.0",
                        dependencies=[{"name": "db", "version": "1.0.0"}])
    request = {"chart": str(chart), "release": "r", "namespace": "n", "include_crds": True,
               "values": [], "set": [], "set_string": []}
    done = subprocess.run([sys.executable, "-I", _helm_engine.__file__], check=True,
                          input=json.dumps(request).encode(), capture_output=True, timeout=60)
    answer = json.loads(done.stdout)
    assert answer["error"]["message"] == \
        "found in Chart.yaml, but missing in charts/ directory: db"
