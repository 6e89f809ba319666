"""GitMirrors.export (shared, atomic, size-limited trees) and resolve_app_path (safety)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitops_tasks.errors import AppPathNotFound, PermanentError, SourceTooLarge, UnsafePath
from gitops_tasks.settings import GitSettings
from gitops_tasks.source import GitMirrors, resolve_app_path
from tests.source.gitservers import Origin


def export(mirrors: GitMirrors, origin: Origin, revision: str = "main") -> Path:
    return mirrors.export(origin.file_url, mirrors.resolve(origin.file_url, revision))


def test_export_holds_the_commit_tree_exactly(origin: Origin, mirrors: GitMirrors) -> None:
    origin.write({
        "app/run.sh": "#!/bin/sh\n",
        # Must not change what we render: export-ignore and export-subst are for release tarballs.
        ".gitattributes": "README.md export-ignore\napp/deploy.yaml export-subst\n",
        "bin.dat": bytes(range(256)),
    })
    (origin.work / "app" / "run.sh").chmod(0o755)
    (origin.work / "app" / "deploy.yaml").write_text("kind: ConfigMap # $Format:%H$\n")
    sha = origin.commit({}, "more files")
    tree = mirrors.export(origin.file_url, sha)

    assert tree == mirrors.settings.cache_dir / "trees" / mirrors.mirror_path(
        origin.file_url).name / sha
    assert (tree / "README.md").read_text() == "hello\n"
    assert (tree / "app" / "deploy.yaml").read_text() == "kind: ConfigMap # $Format:%H$\n"
    assert (tree / "bin.dat").read_bytes() == bytes(range(256))
    assert os.access(tree / "app" / "run.sh", os.X_OK)
    assert not os.access(tree / "README.md", os.X_OK)
    assert not (tree / ".git").exists()
    assert sorted(p.name for p in tree.parent.iterdir()) == [".source", sha]  # no temp debris


def test_export_is_shared_and_done_once(origin: Origin, settings: GitSettings) -> None:
    first, second = GitMirrors(settings), GitMirrors(settings)
    sha = first.resolve(origin.file_url, "main")
    tree = first.export(origin.file_url, sha)
    inode = tree.stat().st_ino
    assert second.export(origin.file_url, sha) == tree == first.export(origin.file_url, sha)
    assert tree.stat().st_ino == inode
    assert (first.stats.exports, second.stats.exports) == (1, 0)
    # A new commit gets its own tree; the old one is untouched for readers still using it.
    new = origin.commit({"app/deploy.yaml": "kind: Secret\n"}, "change")
    new_tree = first.export(origin.file_url, first.resolve(origin.file_url, "main"))
    assert new_tree.name == new and new_tree != tree
    assert (tree / "app" / "deploy.yaml").read_text() == "kind: ConfigMap\n"
    assert (new_tree / "app" / "deploy.yaml").read_text() == "kind: Secret\n"


def test_export_fetches_a_commit_missing_from_the_mirror(origin: Origin,
                                                        mirrors: GitMirrors) -> None:
    # As when another host resolved the revision and this one renders it.
    sha = origin.git("rev-parse", "main")
    assert (mirrors.export(origin.file_url, sha) / "README.md").exists()
    assert mirrors.stats.fetches == 1 and mirrors.stats.ls_remotes == 0


def test_file_over_the_limit_is_refused_by_name(origin: Origin, tmp_path: Path) -> None:
    origin.commit({"app/big.yaml": "x" * 2048}, "big file")
    mirrors = GitMirrors(GitSettings(cache_dir=tmp_path / "cache", max_file_bytes=1024))
    with pytest.raises(SourceTooLarge) as info:
        export(mirrors, origin)
    assert "'app/big.yaml'" in str(info.value) and "2048 bytes" in str(info.value)
    assert isinstance(info.value, PermanentError)
    trees = mirrors.settings.cache_dir / "trees"
    assert not any(p.name != ".source" for p in trees.rglob("*") if p.parent != trees)


def test_tree_over_the_repo_limit_is_refused(origin: Origin, tmp_path: Path) -> None:
    origin.commit({f"f{i}.yaml": "x" * 600 for i in range(4)}, "many files")
    mirrors = GitMirrors(GitSettings(cache_dir=tmp_path / "cache", max_file_bytes=1000,
                                     max_repo_bytes=2000))
    with pytest.raises(SourceTooLarge, match="MAX_REPO_BYTES"):
        export(mirrors, origin)


# -- resolve_app_path -----------------------------------------------------------------------


@pytest.fixture
def tree(origin: Origin, mirrors: GitMirrors) -> Path:
    origin.write({"apps/a/x.yaml": "a: 1\n", "apps/b/y.yaml": "b: 1\n",
                  "shared/base.yaml": "s: 1\n"})
    origin.symlink("apps/a/base.yaml", "../../shared/base.yaml")  # inside the tree: fine
    origin.symlink("apps/a/shared", "../../shared")
    origin.symlink("apps/link-to-b", "b")
    origin.symlink("evil/passwd", "/etc/passwd")
    origin.symlink("evil-dir/etc", "../../../../../../../../etc")
    origin.symlink("apps/c/up", "../../evil")  # in-tree dir whose contents escape
    origin.commit({}, "layout with symlinks")
    return export(mirrors, origin)


def test_whole_repository_as_app_path(origin: Origin, mirrors: GitMirrors) -> None:
    tree = export(mirrors, origin)
    assert resolve_app_path(tree, "") == tree
    assert resolve_app_path(tree, ".") == tree


def test_app_path_inside_the_tree(tree: Path) -> None:
    assert resolve_app_path(tree, "apps/a") == tree / "apps" / "a"
    assert resolve_app_path(tree, "./apps/a/") == tree / "apps" / "a"
    assert resolve_app_path(tree, "apps/x/../a") == tree / "apps" / "a"
    assert resolve_app_path(tree, "apps/link-to-b") == tree / "apps" / "b"
    link = tree / "apps" / "a" / "base.yaml"
    assert link.is_symlink() and link.read_text() == "s: 1\n"  # kept as a symlink


@pytest.mark.parametrize(
    ("path", "offender"),
    [
        ("/etc", "absolute"),
        ("../outside", "'..'"),
        ("apps/../../outside", "'..'"),
        ("evil/passwd", "symlink 'evil/passwd'"),
        ("evil", "symlink 'evil/passwd'"),
        ("evil-dir/etc", "symlink 'evil-dir/etc'"),
        ("evil-dir", "symlink 'evil-dir/etc'"),
        ("apps/c", "symlink 'evil/passwd'"),
        ("apps", "symlink 'evil/passwd'"),
    ],
)
def test_unsafe_app_paths(tree: Path, path: str, offender: str) -> None:
    with pytest.raises(UnsafePath) as info:
        resolve_app_path(tree, path, app="guestbook")
    assert offender in str(info.value)
    assert str(info.value).startswith("guestbook: ")


def test_missing_app_path_names_path_repo_and_commit(origin: Origin, tree: Path) -> None:
    with pytest.raises(AppPathNotFound) as info:
        resolve_app_path(tree, "apps/nope", app="guestbook")
    message = str(info.value)
    assert "'apps/nope'" in message and f"{origin.file_url}@{tree.name}" in message
    assert isinstance(info.value, PermanentError)
