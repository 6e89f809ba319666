"""Kustomize apps with the real kustomize (kubectl's): a base and an overlay using ../base,
and the source's kustomize options applied as Argo CD applies them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from gitops_tasks.errors import RenderError, UnsafePath
from gitops_tasks.model.application import KustomizeSource, Source
from gitops_tasks.render import render
from gitops_tasks.render.kustomize import find_tool, parse_image

from .helpers import APP, REPO, by_name, copy_repo, ctx, names

URL = "https://git.example.com/org/repo.git"

pytestmark = pytest.mark.skipif(find_tool() is None, reason="neither kustomize nor kubectl")


def images(deployment: dict[str, Any]) -> list[str]:
    return [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]


def test_overlay_with_relative_base_is_detected_and_built() -> None:
    objects = render(REPO, Source(URL, path="apps/kustomize/overlay"), ctx())
    assert sorted(names(objects)) == [("ConfigMap", "overlay-config"), ("Deployment", "web"),
                                      ("Service", "web")]
    assert by_name([o for o in objects if o["kind"] == "Deployment"],
                   "web")["spec"]["replicas"] == 3


def test_options_prefix_suffix_images_labels_annotations_namespace() -> None:
    options = KustomizeSource(
        name_prefix="prod-", name_suffix="-v2",
        images=("nginx=mirror.example.com/nginx:1.27",
                "registry.example.com:5000/tools/sidecar@sha256:" + "a" * 64),
        common_labels=(("team", "payments"),),
        common_annotations=(("owner", "team-a: on-call"),),
        namespace="payments",
    )
    objects = render(REPO, Source(URL, path="apps/kustomize/overlay", kustomize=options), ctx())
    assert sorted(names(objects)) == [("ConfigMap", "prod-overlay-config-v2"),
                                      ("Deployment", "prod-web-v2"), ("Service", "prod-web-v2")]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert images(deployment) == [
        "mirror.example.com/nginx:1.27",
        "registry.example.com:5000/tools/sidecar@sha256:" + "a" * 64,
    ]
    for obj in objects:
        meta = obj["metadata"]
        assert meta["namespace"] == "payments"
        assert meta["labels"]["team"] == "payments"
        assert meta["annotations"]["owner"] == "team-a: on-call"
    # commonLabels reach selectors too (kustomize's commonLabels semantics, as in Argo CD).
    assert deployment["spec"]["selector"]["matchLabels"] == {"app": "web", "team": "payments"}


def test_image_tag_only_keeps_the_name() -> None:
    options = KustomizeSource(images=("nginx:1.26",))
    objects = render(REPO, Source(URL, path="apps/kustomize/base", kustomize=options), ctx())
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert images(deployment)[0] == "nginx:1.26"


@pytest.mark.parametrize(("spec", "entry"), [
    ("nginx:1.2", {"name": "nginx", "newTag": "1.2"}),
    ("nginx@sha256:abc", {"name": "nginx", "digest": "sha256:abc"}),
    ("nginx=my/nginx", {"name": "nginx", "newName": "my/nginx"}),
    ("nginx=my/nginx:2", {"name": "nginx", "newName": "my/nginx", "newTag": "2"}),
    ("localhost:5000/app:3", {"name": "localhost:5000/app", "newTag": "3"}),
    ("localhost:5000/app", {"name": "localhost:5000/app"}),
])
def test_parse_image(spec: str, entry: dict[str, str]) -> None:
    assert parse_image(spec, app=APP) == entry


@pytest.mark.parametrize("filename", ["kustomization.yml", "Kustomization"])
def test_other_kustomization_file_names_are_detected(tmp_path: Path, filename: str) -> None:
    repo = copy_repo(tmp_path / "repo")
    base = repo / "apps" / "kustomize" / "base"
    (base / "kustomization.yaml").rename(base / filename)
    objects = render(repo, Source(URL, path="apps/kustomize/base",
                                  kustomize=KustomizeSource(name_prefix="x-")), ctx())
    assert sorted(names(objects)) == [("Deployment", "x-web"), ("Service", "x-web")]


def test_kustomize_error_names_the_kustomization(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "app").mkdir(parents=True)
    (repo / "app" / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    with pytest.raises(RenderError) as info:
        render(repo, Source(URL, path="app"), ctx())
    assert info.value.file == "app/kustomization.yaml"
    assert "missing.yaml" in str(info.value)
    assert str(tmp_path) not in str(info.value)


def test_symlink_out_of_the_tree_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.yaml").write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n")
    repo = copy_repo(tmp_path / "repo")
    os.symlink(tmp_path / "secret.yaml", repo / "apps" / "kustomize" / "base" / "secret.yaml")
    with pytest.raises(UnsafePath, match=r"secret\.yaml"):
        render(repo, Source(URL, path="apps/kustomize/overlay"), ctx())


def test_symlinked_kustomization_is_edited_in_the_copy_only(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    shared = repo / "apps" / "kustomize" / "base" / "kustomization.yaml"
    linked = repo / "apps" / "kustomize" / "linked"
    linked.mkdir()
    for name in ("deployment.yaml", "service.yaml"):
        shutil.copyfile(shared.parent / name, linked / name)
    os.symlink("../base/kustomization.yaml", linked / "kustomization.yaml")
    before = shared.read_text()
    objects = render(repo, Source(URL, path="apps/kustomize/linked",
                                  kustomize=KustomizeSource(name_prefix="l-")), ctx())
    assert sorted(names(objects)) == [("Deployment", "l-web"), ("Service", "l-web")]
    assert shared.read_text() == before


def test_kustomize_values_that_yaml_1_1_reads_as_booleans_stay_strings() -> None:
    source = Source(URL, path="apps/kustomize/base", kustomize=KustomizeSource(
        namespace="n", common_labels=(("enabled", "on"),)))
    objects = render(REPO, source, ctx())
    assert {o["metadata"]["namespace"] for o in objects} == {"n"}
    assert {o["metadata"]["labels"]["enabled"] for o in objects} == {"on"}
    assert sorted(names(objects)) == [("Deployment", "web"), ("Service", "web")]
