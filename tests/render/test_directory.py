"""Directory apps: YAML/JSON/List files, recurse, include/exclude, skipping non-objects, errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from gitops_tasks.errors import RenderError, UnsafePath
from gitops_tasks.model.application import DirectorySource, Source
from gitops_tasks.render import render
from gitops_tasks.render.directory import compile_glob

from .helpers import REPO, by_name, copy_repo, ctx, names


def src(path: str, **directory: Any) -> Source:
    return Source("https://git.example.com/org/repo.git", path=path,
                  directory=DirectorySource(**directory) if directory else None)


def test_plain_directory_yaml_json_and_lists_in_file_then_document_order() -> None:
    objects = render(REPO, src("apps/plain"), ctx())
    # a-multi.yaml (2 docs; empty and comment-only docs dropped), b.json, c-list.yaml
    # (a List, flattened); package.json, values.yaml, README.txt and subdirs are skipped.
    assert names(objects) == [
        ("ConfigMap", "multi-one"), ("Deployment", "multi-two"), ("Service", "json-svc"),
        ("ConfigMap", "list-one"), ("ClusterRole", "list-two"),
    ]


def test_yaml_timestamps_stay_strings_as_kubernetes_reads_them() -> None:
    objects = render(REPO, src("apps/plain"), ctx())
    assert by_name(objects, "multi-one")["data"]["created"] == "2024-01-01"


def test_recurse_descends_into_subdirectories_but_not_hidden_ones() -> None:
    objects = render(REPO, src("apps/plain", recurse=True), ctx())
    assert names(objects)[-2:] == [("ConfigMap", "nested-d"), ("Secret", "deeper-e")]
    assert "hidden-never-rendered" not in [n for _, n in names(objects)]


@pytest.mark.parametrize(("include", "exclude", "expected"), [
    ("{config.yaml,env.yaml}", "", ["glob-config", "glob-env"]),
    ("prod/*", "", ["glob-prod-sub-y", "glob-prod-x"]),
    ("", "prod/*", ["glob-config", "glob-dev-z", "glob-env", "glob-other"]),
    ("*.yaml", "{other.yaml,dev/*}", ["glob-config", "glob-env", "glob-prod-sub-y",
                                       "glob-prod-x"]),
    ("prod/*", "*/sub/*", ["glob-prod-x"]),
    ("?nv.yaml", "", ["glob-env"]),
    ("[ce]*.yaml", "", ["glob-config", "glob-env"]),
])
def test_include_and_exclude_globs(include: str, exclude: str, expected: list[str]) -> None:
    objects = render(REPO, src("apps/globs", recurse=True, include=include, exclude=exclude),
                     ctx())
    assert [n for _, n in names(objects)] == expected


def test_include_without_recurse_sees_only_the_top_directory() -> None:
    objects = render(REPO, src("apps/globs", include="prod/*"), ctx())
    assert objects == []


@pytest.mark.parametrize(("pattern", "path", "matches"), [
    ("*.yaml", "a/b/c.yaml", True),  # no separators: `*` crosses `/`, as Argo CD compiles it
    ("**/*.yaml", "a/c.yaml", True),
    ("{a,b/{c,d}}.yaml", "b/d.yaml", True),
    ("{a,b}.yaml", "c.yaml", False),
    ("[!x]*.json", "x.json", False),
    ("[a-c]?.json", "b1.json", True),
    (r"lit\*.yaml", "lit*.yaml", True),
    (r"lit\*.yaml", "litx.yaml", False),
    ("a.yaml", "a-yaml", False),
])
def test_glob_semantics(pattern: str, path: str, matches: bool) -> None:
    assert bool(compile_glob(pattern).fullmatch(path)) is matches


def test_malformed_yaml_names_file_and_line() -> None:
    with pytest.raises(RenderError) as info:
        render(REPO, src("apps/bad-yaml"), ctx())
    err = info.value
    assert (err.app, err.file, err.line) == ("guestbook", "apps/bad-yaml/broken.yaml", 7)
    assert "guestbook: apps/bad-yaml/broken.yaml:7: invalid YAML" in str(err)


def test_object_without_kind_names_file_and_line() -> None:
    with pytest.raises(RenderError) as info:
        render(REPO, src("apps/bad-kind"), ctx())
    assert (info.value.file, info.value.line) == ("apps/bad-kind/no-kind.yaml", 6)
    assert "no kind" in str(info.value) and "kindless" in str(info.value)


def test_object_without_name_names_file() -> None:
    with pytest.raises(RenderError) as info:
        render(REPO, src("apps/bad-name"), ctx())
    assert info.value.file == "apps/bad-name/no-name.yaml"
    assert "metadata.name" in str(info.value)


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "x.json").write_text('{\n  "apiVersion": "v1",\n  "kind": }\n')
    with pytest.raises(RenderError) as info:
        render(tmp_path, src("app"), ctx())
    assert (info.value.file, info.value.line) == ("app/x.json", 3)


def test_symlink_inside_the_tree_is_followed(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    os.symlink("../globs/env.yaml", repo / "apps" / "plain" / "linked.yaml")
    objects = render(repo, src("apps/plain"), ctx())
    assert ("ConfigMap", "glob-env") in names(objects)


def test_symlinked_file_out_of_the_tree_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: stolen}\n")
    repo = copy_repo(tmp_path / "repo")
    os.symlink(outside, repo / "apps" / "plain" / "stolen.yaml")
    with pytest.raises(UnsafePath, match=r"stolen\.yaml"):
        render(repo, src("apps/plain"), ctx())


def test_symlinked_directory_out_of_the_tree_is_refused_when_recursing(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    repo = copy_repo(tmp_path / "repo")
    os.symlink(tmp_path / "outside", repo / "apps" / "plain" / "escape")
    with pytest.raises(UnsafePath, match="escape"):
        render(repo, src("apps/plain", recurse=True), ctx())


@pytest.mark.parametrize("path", ["../elsewhere", "apps/../../elsewhere"])
def test_app_path_escaping_the_tree_is_refused(path: str) -> None:
    with pytest.raises(UnsafePath) as info:
        render(REPO, src(path), ctx())
    assert info.value.app == "guestbook"


def test_app_path_through_a_symlink_out_of_the_tree_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    repo = copy_repo(tmp_path / "repo")
    os.symlink(tmp_path / "outside", repo / "apps" / "exit")
    with pytest.raises(UnsafePath):
        render(repo, src("apps/exit"), ctx())


def test_missing_app_path_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="does not exist"):
        render(REPO, src("apps/nope"), ctx())
