"""Helm apps with the real Helm engine: values in Helm's order, release name and namespace,
CRDs, value-file safety, missing value files, template errors with file and line."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from gitops_tasks.errors import RenderError, UnsafePath
from gitops_tasks.model.application import HelmParameter, HelmSource, Source
from gitops_tasks.render import render
from gitops_tasks.render._helm_engine import merge_maps, merge_set

from .helpers import APP, NAMESPACE, REPO, by_name, copy_repo, ctx, names

URL = "https://git.example.com/org/repo.git"

if shutil.which("helm"):
    # These tests pin the SDK engine's output order; the binary orders by kind.
    pytest.skip("a helm binary is on PATH; these tests cover the SDK engine",
                allow_module_level=True)


def helm(**options: Any) -> Source:
    return Source(URL, path="charts/demo", helm=HelmSource(**options))


def config(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == "ConfigMap")


def test_chart_detected_with_defaults_crds_first_notes_and_partials_dropped() -> None:
    objects = render(REPO, Source(URL, path="charts/demo"), ctx())
    assert names(objects) == [
        ("CustomResourceDefinition", "widgets.example.com"),
        (("ConfigMap", f"{APP}-demo-config")),
        ("Deployment", f"{APP}-demo"),
    ]
    cm = config(objects)
    assert cm["metadata"]["namespace"] == NAMESPACE
    assert cm["data"] == {"release": APP, "namespace": NAMESPACE, "color": "blue",
                          "size": "small", "ports": "[80,443]"}


def test_skip_crds() -> None:
    objects = render(REPO, helm(skip_crds=True), ctx())
    assert "CustomResourceDefinition" not in [kind for kind, _ in names(objects)]


def test_values_in_helm_order_release_name_and_parameters() -> None:
    objects = render(REPO, helm(
        value_files=("values-prod.yaml", "/apps/helm-values/shared.yaml"),
        values="config:\n  color: green\nextra: {a: 1}\nports: [80, 443, 8080]\n",
        parameters=(
            HelmParameter("image.tag", "2.0"),
            HelmParameter("replicas", "5"),
            HelmParameter("ports[1]", "8443"),
            HelmParameter("config.size", "123", force_string=True),
        ),
        release_name="shop",
    ), ctx())
    cm = config(objects)
    assert cm["metadata"]["name"] == "shop-demo-config"
    # values.yaml < values-prod.yaml (color red) < shared.yaml (size large) < inline values
    # (color green) < parameters (size "123" as a string); ports[1] changes one element of
    # the user-supplied list (as `--set` does: it parses into the user values, not the
    # chart's defaults).
    assert cm["data"] == {"release": "shop", "namespace": NAMESPACE, "color": "green",
                          "size": "123", "ports": "[80,8443,8080]", "extra": '{"a":1}'}
    deployment = by_name(objects, "shop-demo")
    assert deployment["spec"]["replicas"] == 5
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2.0"


def test_parameter_commas_are_escaped_unless_a_list() -> None:
    objects = render(REPO, helm(parameters=(
        HelmParameter("config.color", "red,green"),
        HelmParameter("ports", "{1,2}"),
    )), ctx())
    assert config(objects)["data"]["color"] == "red,green"
    assert config(objects)["data"]["ports"] == "[1,2]"


def test_build_variables_are_substituted_in_parameters() -> None:
    objects = render(REPO, helm(parameters=(HelmParameter("config.color",
                                                          "$ARGOCD_APP_NAME-blue"),)), ctx())
    assert config(objects)["data"]["color"] == f"{APP}-blue"


def test_empty_destination_namespace_is_helms_default() -> None:
    objects = render(REPO, Source(URL, path="charts/demo"), ctx(namespace=""))
    assert config(objects)["data"]["namespace"] == "default"


def test_missing_value_file_is_an_error_naming_it() -> None:
    with pytest.raises(RenderError) as info:
        render(REPO, helm(value_files=("values-missing.yaml",)), ctx())
    assert info.value.file == "charts/demo/values-missing.yaml"
    assert "values-missing.yaml" in str(info.value) and info.value.app == APP


def test_ignore_missing_value_files() -> None:
    objects = render(REPO, helm(value_files=("values-missing.yaml", "values-prod.yaml"),
                                ignore_missing_value_files=True), ctx())
    assert config(objects)["data"]["color"] == "red"


@pytest.mark.parametrize("value_file", ["../../../etc/passwd", "../../..", "/../outside.yaml"])
def test_value_file_escaping_the_tree_is_refused(value_file: str) -> None:
    with pytest.raises(UnsafePath):
        render(REPO, helm(value_files=(value_file,)), ctx())


def test_value_file_symlinked_out_of_the_tree_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret-values.yaml").write_text("config: {color: stolen}\n")
    repo = copy_repo(tmp_path / "repo")
    os.symlink(tmp_path / "secret-values.yaml", repo / "charts" / "demo" / "values-link.yaml")
    with pytest.raises(UnsafePath):
        render(repo, Source(URL, path="charts/demo",
                            helm=HelmSource(value_files=("values-link.yaml",))), ctx())


def test_chart_file_symlinked_out_of_the_tree_is_refused(tmp_path: Path) -> None:
    # .Files.Get could otherwise read it into a ConfigMap.
    (tmp_path / "passwd").write_text("root:x:0:0\n")
    repo = copy_repo(tmp_path / "repo")
    os.symlink(tmp_path / "passwd", repo / "charts" / "demo" / "passwd")
    with pytest.raises(UnsafePath, match="passwd"):
        render(repo, Source(URL, path="charts/demo"), ctx())


def test_remote_value_file_is_refused() -> None:
    with pytest.raises(RenderError, match="remote value file"):
        render(REPO, helm(value_files=("https://example.com/values.yaml",)), ctx())


def test_template_error_names_file_and_line() -> None:
    with pytest.raises(RenderError) as info:
        render(REPO, Source(URL, path="charts/broken"), ctx())
    err = info.value
    assert (err.file, err.line) == ("charts/broken/templates/bad.yaml", 6)
    assert "nil pointer" in str(err) and err.app == APP


def test_invalid_value_file_yaml_names_it(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    (repo / "charts" / "demo" / "values-bad.yaml").write_text("config: [\n")
    with pytest.raises(RenderError) as info:
        render(repo, Source(URL, path="charts/demo",
                            helm=HelmSource(value_files=("values-bad.yaml",))), ctx())
    assert info.value.file == "charts/demo/values-bad.yaml"


def test_release_name_too_long_for_helm_is_an_error() -> None:
    with pytest.raises(RenderError, match="release name"):
        render(REPO, Source(URL, path="charts/demo"), ctx(app="a" * 60))


def test_merge_maps_is_helms_merge() -> None:
    assert merge_maps({"a": {"b": 1, "c": 2}, "l": [1, 2]},
                      {"a": {"c": 3}, "l": [9]}) == {"a": {"b": 1, "c": 3}, "l": [9]}


def test_merge_set_updates_one_list_element() -> None:
    assert merge_set({"l": [{"x": 1, "y": 2}, 5]}, {"l": [{"y": 3}]}) == \
        {"l": [{"x": 1, "y": 3}, 5]}
    assert merge_set({"l": [1]}, {"l": [None, None, 3]}) == {"l": [1, None, 3]}
