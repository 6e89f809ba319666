"""A symlink out of the repository stops only the apps whose render would read it.

In a monorepo one team's bad link (to /etc/passwd, to a file on the worker) used to make every
Kustomize and plugin app of the repository fail. A link that leaves the tree is still never
followed: it is refused where the app's tool would reach it, and left out of a plugin's copy
where it would not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitops_tasks.errors import UnsafePath
from gitops_tasks.model.application import KustomizeSource, PluginSource, Source
from gitops_tasks.render import render
from gitops_tasks.render.kustomize import find_tool

from .helpers import copy_repo, ctx, names

URL = "https://git.example.com/org/repo.git"
LIST_FILES = "find ../.. -type l | sort | tr '\\n' ' '"
PLUGIN = ("sh", "-c", "printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: links}\\n"
                      "data: {links: \"%s\"}\\n' \"$(" + LIST_FILES + ")\"")

needs_kustomize = pytest.mark.skipif(find_tool() is None, reason="neither kustomize nor kubectl")


@pytest.fixture
def monorepo(tmp_path: Path) -> Path:
    """The fixture repository with another team's link to a file outside it."""
    outside = tmp_path / "outside.yaml"
    outside.write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: stolen}\n")
    repo = copy_repo(tmp_path / "repo")
    (repo / "teams" / "other").mkdir(parents=True)
    os.symlink(outside, repo / "teams" / "other" / "leak.yaml")
    return repo


@needs_kustomize
@pytest.mark.parametrize("options", [None, KustomizeSource(name_prefix="p-")])
def test_kustomize_apps_elsewhere_in_the_repo_render(
        monorepo: Path, options: KustomizeSource | None) -> None:
    objects = render(monorepo, Source(URL, path="apps/kustomize/overlay", kustomize=options),
                     ctx())
    assert len(objects) == 3


def test_other_renderers_elsewhere_in_the_repo_render(monorepo: Path) -> None:
    assert render(monorepo, Source(URL, path="apps/plain"), ctx())
    assert render(monorepo, Source(URL, path="charts/demo"), ctx())
    assert render(monorepo, Source(URL, path="apps/jsonnet-plain"), ctx())


@needs_kustomize
def test_kustomize_refuses_a_link_out_in_a_base_it_reads(monorepo: Path) -> None:
    base = monorepo / "apps" / "kustomize" / "base"
    os.symlink("../../../teams/other/leak.yaml", base / "extra.yaml")
    with pytest.raises(UnsafePath, match=r"apps/kustomize/base/extra\.yaml"):
        render(monorepo, Source(URL, path="apps/kustomize/overlay"), ctx())


@needs_kustomize
def test_kustomize_follows_an_in_tree_directory_link_to_a_link_out(monorepo: Path) -> None:
    # The overlay reads a directory through an in-tree link; the link out sits behind it.
    overlay = monorepo / "apps" / "kustomize" / "overlay"
    os.symlink("../../../teams/other", overlay / "vendored")
    with pytest.raises(UnsafePath, match=r"teams/other/leak\.yaml"):
        render(monorepo, Source(URL, path="apps/kustomize/overlay"), ctx())


def test_a_plugin_does_not_see_another_teams_link_out(monorepo: Path) -> None:
    (monorepo / "teams" / "other" / "fine.yaml").write_text("a: 1\n")
    os.symlink("fine.yaml", monorepo / "teams" / "other" / "alias.yaml")
    objects = render(monorepo, Source(URL, path="apps/plugin", plugin=PluginSource(name="ls")),
                     ctx(plugins={"ls": PLUGIN}))
    assert names(objects) == [("ConfigMap", "links")]
    links = objects[0]["data"]["links"]
    assert "alias.yaml" in links  # in-tree links are kept in the copy
    assert "leak.yaml" not in links


def test_a_plugin_is_refused_a_link_out_under_its_own_path(monorepo: Path) -> None:
    os.symlink("/etc/passwd", monorepo / "apps" / "plugin" / "passwd")
    with pytest.raises(UnsafePath, match=r"apps/plugin/passwd"):
        render(monorepo, Source(URL, path="apps/plugin", plugin=PluginSource(name="ls")),
               ctx(plugins={"ls": PLUGIN}))


def test_helm_follows_an_in_tree_link_from_the_chart(monorepo: Path) -> None:
    os.symlink("../../teams/other", monorepo / "charts" / "demo" / "files")
    with pytest.raises(UnsafePath, match=r"teams/other/leak\.yaml"):
        render(monorepo, Source(URL, path="charts/demo"), ctx())
