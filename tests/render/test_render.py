"""`render()` as a whole: renderer detection, tracking keys on every object, determinism, and
the shared tree left exactly as it was by every renderer (even when it is read-only)."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops_tasks.errors import RenderError
from gitops_tasks.model import keys
from gitops_tasks.model.application import (
    DirectorySource,
    HelmParameter,
    HelmSource,
    JsonnetOptions,
    JsonnetVar,
    KustomizeSource,
    PluginSource,
    Source,
)
from gitops_tasks.render import detect, render

from .helpers import APP, REPO, by_name, copy_repo, ctx, tree_fingerprint

URL = "https://git.example.com/org/repo.git"
PLUGINS = {"gen": ("sh", "-c", "echo scratch > input.txt; sh generate.sh")}

SOURCES = {
    "directory": Source(URL, path="apps/plain", directory=DirectorySource(recurse=True)),
    "jsonnet": Source(URL, path="apps/jsonnet", directory=DirectorySource(jsonnet=JsonnetOptions(
        ext_vars=(JsonnetVar("env", "e"), JsonnetVar("app", "a")),
        tlas=(JsonnetVar("replicas", "2", code=True),), libs=("lib/jsonnet",)))),
    "kustomize": Source(URL, path="apps/kustomize/overlay", kustomize=KustomizeSource(
        name_prefix="p-", images=("nginx:2",), common_labels=(("a", "b"),), namespace="n")),
    "helm": Source(URL, path="charts/demo", helm=HelmSource(
        value_files=("values-prod.yaml",), values="replicas: 2\n",
        parameters=(HelmParameter("image.tag", "3"),))),
    "plugin": Source(URL, path="apps/plugin", plugin=PluginSource("gen")),
}


@pytest.mark.parametrize(("path", "expected"), [
    ("apps/plain", "directory"),
    ("apps/jsonnet-plain", "directory"),
    ("apps/kustomize/overlay", "kustomize"),
    ("charts/demo", "helm"),
])
def test_detection_by_files(path: str, expected: str) -> None:
    assert detect(REPO / path, Source(URL, path=path)) == expected


def test_explicit_source_type_wins_over_files() -> None:
    # A chart rendered as a plain directory: its Chart.yaml (apiVersion, no kind) is then read
    # as a broken manifest.
    source = Source(URL, path="charts/demo", directory=DirectorySource())
    assert detect(REPO / "charts/demo", source) == "directory"
    with pytest.raises(RenderError) as info:
        render(REPO, source, ctx())
    assert info.value.file == "charts/demo/Chart.yaml"
    assert detect(REPO / "apps/plain", SOURCES["plugin"]) == "plugin"
    assert detect(REPO / "apps/plain", Source(URL, helm=HelmSource())) == "helm"
    assert detect(REPO / "apps/plain", Source(URL, kustomize=KustomizeSource())) == "kustomize"


def test_kustomization_wins_over_chart_yaml(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    shutil.copyfile(repo / "charts/demo/Chart.yaml", repo / "apps/kustomize/base/Chart.yaml")
    assert detect(repo / "apps/kustomize/base", Source(URL)) == "kustomize"


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_every_object_has_the_tracking_annotation_and_label(kind: str) -> None:
    objects = render(REPO, SOURCES[kind], ctx(plugins=PLUGINS))
    assert objects
    for obj in objects:
        meta = obj["metadata"]
        group = obj["apiVersion"].rpartition("/")[0]
        tracking = keys.tracking_id(APP, group, obj["kind"], meta.get("namespace", ""),
                                    meta["name"])
        assert meta["annotations"][keys.TRACKING_ANNOTATION] == tracking
        assert meta["labels"][keys.APP_LABEL] == keys.app_label_value(APP)


def test_tracking_keeps_existing_labels_and_uses_git_namespace() -> None:
    objects = render(REPO, SOURCES["directory"], ctx())
    svc = by_name(objects, "json-svc")
    assert svc["metadata"]["labels"] == {"existing": "kept", keys.APP_LABEL: APP}
    # No namespace in Git: "" (the sync layer, which knows scopes, fills it in).
    assert svc["metadata"]["annotations"][keys.TRACKING_ANNOTATION] == \
        f"{APP}:/Service:/json-svc"
    cm = by_name(objects, "multi-one")
    assert cm["metadata"]["annotations"][keys.TRACKING_ANNOTATION] == \
        f"{APP}:/ConfigMap:team-a/multi-one"
    role = by_name(objects, "list-two")
    assert role["metadata"]["annotations"][keys.TRACKING_ANNOTATION] == \
        f"{APP}:rbac.authorization.k8s.io/ClusterRole:/list-two"


def test_long_app_names_get_a_valid_label() -> None:
    app = "a-very-long-application-name-" * 4
    objects = render(REPO, Source(URL, path="apps/globs"), ctx(app=app))
    label = objects[0]["metadata"]["labels"][keys.APP_LABEL]
    assert len(label) <= 63 and label == keys.app_label_value(app)


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_output_is_deterministic(kind: str) -> None:
    first = render(REPO, SOURCES[kind], ctx(plugins=PLUGINS))
    assert render(REPO, SOURCES[kind], ctx(plugins=PLUGINS)) == first


@pytest.fixture
def read_only_repo(tmp_path: Path) -> Iterator[Path]:
    """A copy of the fixture repo with every file and directory read-only, like an export."""
    repo = copy_repo(tmp_path / "repo")
    for dirpath, dirnames, filenames in os.walk(repo, topdown=False):
        for name in [*filenames, *dirnames]:
            path = Path(dirpath) / name
            if not path.is_symlink():
                path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    repo.chmod(0o555)
    yield repo
    for dirpath, dirnames, _ in os.walk(repo):
        Path(dirpath).chmod(0o755)
        for name in dirnames:
            (Path(dirpath) / name).chmod(0o755)


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_no_renderer_modifies_the_tree(read_only_repo: Path, kind: str) -> None:
    before = tree_fingerprint(read_only_repo)
    render(read_only_repo, SOURCES[kind], ctx(plugins=PLUGINS))
    assert tree_fingerprint(read_only_repo) == before


def test_fixture_repository_is_untouched_by_all_renderers() -> None:
    before = tree_fingerprint(REPO)
    for source in SOURCES.values():
        render(REPO, source, ctx(plugins=PLUGINS))
    assert tree_fingerprint(REPO) == before

