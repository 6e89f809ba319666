"""Units under the renderers: YAML streams and validation, tracking, build variables, tools."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from gitops_tasks.errors import RenderError, ToolTimeout
from gitops_tasks.model import keys
from gitops_tasks.render import manifests, tools
from gitops_tasks.render.context import envsubst
from gitops_tasks.render.tracking import group_of, stamp


def parse(text: str, skip: bool = False) -> list[dict[str, Any]]:
    return manifests.objects_from_text(text, file="f.yaml", app="app", skip_non_objects=skip)


def test_nested_lists_are_flattened_and_empty_items_dropped() -> None:
    text = """
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ConfigMapList
    items:
      - {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}
  - null
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}
---
apiVersion: v1
kind: PodList
items: null
"""
    assert [o["metadata"]["name"] for o in parse(text)] == ["a", "b"]


def test_a_kind_ending_in_list_without_items_is_an_object() -> None:
    text = "apiVersion: example.com/v1\nkind: AllowList\nmetadata: {name: x}\nspec: {}\n"
    assert parse(text)[0]["kind"] == "AllowList"


def test_generate_name_is_accepted_for_hooks() -> None:
    obj = parse("apiVersion: batch/v1\nkind: Job\nmetadata: {generateName: migrate-}\n")[0]
    assert obj["metadata"]["generateName"] == "migrate-"


@pytest.mark.parametrize(("text", "message", "line"), [
    ("kind: ConfigMap\nmetadata: {name: a}\n", "no apiVersion", 1),
    ("apiVersion: v1\nkind: ConfigMap\n", "no metadata", 1),
    ("---\n\napiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: x}\n", "metadata.name", 3),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: 3}\n", "namespace", 1),
    ("- a\n- b\n", "a mapping", 1),
    ("key: [\n", "invalid YAML", 2),
    ("a: 1\n b: 2\n", "invalid YAML", 2),
])
def test_validation_errors_name_file_and_line(text: str, message: str, line: int) -> None:
    with pytest.raises(RenderError) as info:
        parse(text)
    assert message in str(info.value)
    assert (info.value.file, info.value.line, info.value.app) == ("f.yaml", line, "app")


def test_non_objects_are_skipped_only_when_asked() -> None:
    text = "replicas: 3\n---\n- a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
    assert [o["metadata"]["name"] for o in parse(text, skip=True)] == ["a"]
    with pytest.raises(RenderError):
        parse(text)


def test_stamp_sets_keys_and_accepts_a_scope_aware_namespace() -> None:
    obj: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "Deployment",
                           "metadata": {"name": "web", "labels": None,
                                        "annotations": {"keep": "me"}}}
    stamp(obj, "shop")
    assert obj["metadata"]["annotations"] == {
        "keep": "me", keys.TRACKING_ANNOTATION: "shop:apps/Deployment:/web"}
    assert obj["metadata"]["labels"] == {keys.APP_LABEL: "shop"}
    stamp(obj, "shop", namespace="prod")
    assert obj["metadata"]["annotations"][keys.TRACKING_ANNOTATION] == \
        "shop:apps/Deployment:prod/web"
    assert keys.parse_tracking_id(obj["metadata"]["annotations"][keys.TRACKING_ANNOTATION]) == \
        ("shop", "apps", "Deployment", "prod", "web")


def test_stamp_refuses_labels_that_are_not_a_mapping() -> None:
    with pytest.raises(RenderError, match="labels"):
        stamp({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "a", "labels": ["x"]}}, "shop")


@pytest.mark.parametrize(("api_version", "group"), [
    ("v1", ""), ("apps/v1", "apps"), ("rbac.authorization.k8s.io/v1", "rbac.authorization.k8s.io"),
])
def test_group_of(api_version: str, group: str) -> None:
    assert group_of(api_version) == group


@pytest.mark.parametrize(("text", "expected"), [
    ("$ARGOCD_APP_NAME", "shop"),
    ("${ARGOCD_APP_NAME}-x", "shop-x"),
    ("$$ARGOCD_APP_NAME", "$ARGOCD_APP_NAME"),
    ("a-$UNKNOWN-b", "a--b"),
    ("no vars", "no vars"),
])
def test_envsubst_as_argo_cd(text: str, expected: str) -> None:
    assert envsubst(text, {"ARGOCD_APP_NAME": "shop"}) == expected


def test_tools_run_returns_output_and_status(tmp_path: Path) -> None:
    result = tools.run(["sh", "-c", "echo out; echo err >&2; exit 4"], tool="t", app="a",
                       cwd=tmp_path, env=tools.clean_env(tmp_path), timeout=5,
                       max_output=1000)
    assert (result.returncode, result.stdout, result.stderr_tail()) == (4, b"out\n", "err")


def test_tools_run_passes_stdin_and_a_clean_env(tmp_path: Path) -> None:
    result = tools.run(["sh", "-c", "cat; env | sort"], tool="t", app="a", cwd=tmp_path,
                       env=tools.clean_env(tmp_path, {"EXTRA": "1"}), timeout=5,
                       max_output=100000, stdin=b"input\n")
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "input"
    names = {line.split("=", 1)[0] for line in lines[1:]}
    assert {"PATH", "HOME", "TMPDIR", "EXTRA"} <= names
    assert names <= {"PATH", "HOME", "TMPDIR", "EXTRA", "LANG", "LC_ALL", "PWD", "SHLVL", "_"}


def test_tools_run_timeout_with_output_still_flowing(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ToolTimeout, match=r"t did not finish within 0\.5s"):
        tools.run(["sh", "-c", "while :; do echo tick; sleep 0.01; done"], tool="t", app="a",
                  cwd=tmp_path, env=tools.clean_env(tmp_path), timeout=0.5,
                  max_output=10_000_000)
    assert time.monotonic() - started < 1.5


def test_tools_run_keeps_the_tail_of_a_huge_stderr(tmp_path: Path) -> None:
    result = tools.run(["sh", "-c", "yes noise | head -c 3000000 >&2; echo THE-ERROR >&2"],
                       tool="t", app="a", cwd=tmp_path, env=tools.clean_env(tmp_path),
                       timeout=10, max_output=1000)
    assert result.stderr_tail().endswith("THE-ERROR")
    assert len(result.stderr) <= 1024 * 1024 + 65536


def test_tools_run_feeds_large_stdin(tmp_path: Path) -> None:
    result = tools.run(["sh", "-c", "wc -c"], tool="t", app="a", cwd=tmp_path,
                       env=tools.clean_env(tmp_path), timeout=5, max_output=1000,
                       stdin=b"x" * 3_000_000)
    assert result.stdout.strip() == b"3000000"


def test_tools_run_timeout_holds_when_the_tool_never_reads_stdin(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ToolTimeout):
        tools.run(["sleep", "30"], tool="t", app="a", cwd=tmp_path,
                  env=tools.clean_env(tmp_path), timeout=0.5, max_output=1000,
                  stdin=b"x" * 3_000_000)
    assert time.monotonic() - started < 1.5
