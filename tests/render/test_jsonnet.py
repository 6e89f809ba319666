"""Jsonnet in directory apps: always evaluated, ext vars and TLAs (string and code), libs,
List output, errors with file and line, imports confined to the repository."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from gitops_tasks.errors import RenderError, ToolTimeout, UnsafePath
from gitops_tasks.model.application import DirectorySource, JsonnetOptions, JsonnetVar, Source
from gitops_tasks.render import render

from .helpers import APP, REPO, by_name, ctx, names

URL = "https://git.example.com/org/repo.git"


def jsonnet_source(path: str, **options: Any) -> Source:
    return Source(URL, path=path, directory=DirectorySource(jsonnet=JsonnetOptions(**options)))


FULL = JsonnetOptions(
    ext_vars=(JsonnetVar("env", "prod"), JsonnetVar("app", "$ARGOCD_APP_NAME")),
    tlas=(JsonnetVar("replicas", "1 + 2", code=True), JsonnetVar("tier", "backend")),
    libs=("lib/jsonnet",),
)


def test_ext_vars_tlas_and_libs() -> None:
    objects = render(REPO, Source(URL, path="apps/jsonnet",
                                  directory=DirectorySource(jsonnet=FULL)), ctx())
    assert names(objects) == [("ConfigMap", "jsonnet-prod"), ("Deployment", "jsonnet-deploy")]
    # A string TLA stays a string, a code TLA is evaluated; `$ARGOCD_APP_NAME` is substituted
    # from the build environment as Argo CD does.
    assert by_name(objects, "jsonnet-prod")["data"] == {"tier": "backend", "app": APP}
    assert by_name(objects, "jsonnet-deploy")["spec"]["replicas"] == 3


def test_jsonnet_is_evaluated_without_options_and_libsonnet_is_not_a_manifest() -> None:
    objects = render(REPO, Source(URL, path="apps/jsonnet-plain"), ctx())
    # klist.jsonnet gives a ConfigMapList (flattened) using a local import; single.jsonnet one
    # object; local.libsonnet is only imported.
    assert names(objects) == [("ConfigMap", "from-local-lib-1"),
                              ("ConfigMap", "from-local-lib-2"), ("Namespace", "jsonnet-ns")]


def test_missing_tla_is_an_error_naming_the_file() -> None:
    with pytest.raises(RenderError) as info:
        render(REPO, Source(URL, path="apps/jsonnet"), ctx())
    assert info.value.file == "apps/jsonnet/main.jsonnet"
    assert "replicas" in str(info.value)


def test_runtime_error_names_file_and_line() -> None:
    with pytest.raises(RenderError) as info:
        render(REPO, Source(URL, path="apps/jsonnet-bad"), ctx())
    assert (info.value.file, info.value.line) == ("apps/jsonnet-bad/bad.jsonnet", 3)
    assert "kind is not decided yet" in str(info.value)


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "x.jsonnet").write_text("{\n  a: 1,\n  b: ,\n}\n")
    with pytest.raises(RenderError) as info:
        render(tmp_path, Source(URL, path="app"), ctx())
    assert (info.value.file, info.value.line) == ("app/x.jsonnet", 3)


@pytest.mark.parametrize("statement", [
    "importstr '/etc/hostname'",
    "importstr '../../outside.txt'",
    "importstr 'escape.txt'",
])
def test_imports_cannot_read_outside_the_repository(tmp_path: Path, statement: str) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    repo = tmp_path / "repo"
    (repo / "app").mkdir(parents=True)
    (repo / "app" / "escape.txt").symlink_to(tmp_path / "outside.txt")
    (repo / "app" / "x.jsonnet").write_text(
        f"{{apiVersion: 'v1', kind: 'ConfigMap', metadata: {{name: {statement}}}}}\n")
    with pytest.raises(UnsafePath):
        render(repo, Source(URL, path="app"), ctx())


def test_lib_dir_outside_the_repository_is_refused() -> None:
    with pytest.raises(UnsafePath):
        render(REPO, jsonnet_source("apps/jsonnet-plain", libs=("../..",)), ctx())


def test_a_runaway_program_is_killed_at_the_render_timeout(tmp_path: Path) -> None:
    """Evaluated in the worker's own process, this never returned and held the worker that
    other apps share; now it runs in a child that is killed at the render timeout."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "loop.jsonnet").write_text(
        "local f(n) = if n == 0 then 0 else f(n - 1) tailstrict;\nf(1e12)\n")
    started = time.monotonic()
    with pytest.raises(ToolTimeout) as info:
        render(tmp_path, Source(URL, path="app"), ctx(timeout=2))
    assert time.monotonic() - started < 10
    assert "jsonnet" in str(info.value)


def test_output_past_the_cap_is_an_error_not_a_worker_out_of_memory(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "big.jsonnet").write_text(
        "{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'big'},"
        " data: {x: std.join('', std.makeArray(200000, function(i) 'abcdefghij'))}}\n")
    with pytest.raises(RenderError, match="output"):
        render(tmp_path, Source(URL, path="app"), ctx(max_output=1024 * 1024))
    assert render(tmp_path, Source(URL, path="app"), ctx())[0]["metadata"]["name"] == "big"


def test_every_jsonnet_file_of_a_directory_is_evaluated_in_order(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    for i in range(3):
        (tmp_path / "app" / f"{i}.jsonnet").write_text(
            f"{{apiVersion: 'v1', kind: 'ConfigMap', metadata: {{name: 'cm{i}'}}}}\n")
    (tmp_path / "app" / "1a.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: yaml}\n")
    objects = render(tmp_path, Source(URL, path="app"), ctx())
    assert [o["metadata"]["name"] for o in objects] == ["cm0", "cm1", "yaml", "cm2"]
