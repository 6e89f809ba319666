"""Bounded retention of exported trees: least recently used first, never a tree in use.

Real git, real processes, real filesystem: "time passing" is an mtime set in the past, which is
exactly what a tree unused for that long looks like.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gitops_tasks.settings import GitSettings, load
from gitops_tasks.source import GitMirrors
from tests.source.gitservers import Origin


def git_settings(tmp_path: Path, max_trees: int, min_idle: float) -> GitSettings:
    return GitSettings(cache_dir=tmp_path / "cache", timeout=10.0,
                       max_trees_per_repo=max_trees, tree_min_idle_seconds=min_idle)


def commits(origin: Origin, count: int, start: int = 0) -> list[str]:
    return [origin.commit({"app/deploy.yaml": f"n: {i}\n"}, f"commit {i}")
            for i in range(start, start + count)]


def repo_dir(mirrors: GitMirrors, origin: Origin) -> Path:
    return mirrors.settings.cache_dir / "trees" / mirrors.mirror_path(origin.file_url).name


def listing(mirrors: GitMirrors, origin: Origin) -> list[str]:
    """Everything in the repository's trees directory: no trash or temp debris allowed."""
    return sorted(p.name for p in repo_dir(mirrors, origin).iterdir())


def trees(*shas: str) -> list[str]:
    return sorted([".source", *shas])


def age(tree: Path, seconds: float) -> None:
    """Make `tree` look unused for `seconds`."""
    then = time.time_ns() - int(seconds * 1e9)
    os.utime(tree, ns=(then, then))


def test_settings_from_the_environment() -> None:
    assert (GitSettings().max_trees_per_repo, GitSettings().tree_min_idle_seconds) == (20, 600.0)
    git = load({"GITOPS_TASKS_GIT_MAX_TREES": "3", "GITOPS_TASKS_GIT_TREE_MIN_IDLE": "1.5"}).git
    assert (git.max_trees_per_repo, git.tree_min_idle_seconds) == (3, 1.5)
    assert load({}).git.max_trees_per_repo == 20


def test_keeps_the_most_recently_used_trees(origin: Origin, tmp_path: Path) -> None:
    mirrors = GitMirrors(git_settings(tmp_path, max_trees=2, min_idle=0))
    url = origin.file_url
    c1, c2, c3, c4 = commits(origin, 4)
    first = mirrors.export(url, c1)
    mirrors.export(url, c2)
    assert listing(mirrors, origin) == trees(c1, c2)

    # A hit costs no git, and stamps the tree as used.
    before, counts = first.stat().st_mtime_ns, (mirrors.stats.exports, mirrors.stats.fetches)
    assert mirrors.export(url, c1) == first
    assert first.stat().st_mtime_ns > before
    assert (mirrors.stats.exports, mirrors.stats.fetches) == counts

    mirrors.export(url, c3)  # c2 is now the least recently used
    assert listing(mirrors, origin) == trees(c1, c3)
    mirrors.export(url, c1)
    tree4 = mirrors.export(url, c4)
    assert listing(mirrors, origin) == trees(c1, c4)
    assert mirrors.stats.evicted_trees == 2
    assert (first / "app" / "deploy.yaml").read_text() == "n: 0\n"
    assert (tree4 / "app" / "deploy.yaml").read_text() == "n: 3\n"


@pytest.mark.parametrize("max_trees", [0, 1])
def test_the_tree_just_exported_is_never_evicted(origin: Origin, tmp_path: Path,
                                                 max_trees: int) -> None:
    mirrors = GitMirrors(git_settings(tmp_path, max_trees=max_trees, min_idle=0))
    shas = commits(origin, 3)
    for i, sha in enumerate(shas):
        tree = mirrors.export(origin.file_url, sha)
        assert (tree / "app" / "deploy.yaml").read_text() == f"n: {i}\n"
        assert listing(mirrors, origin) == trees(sha)
    assert mirrors.export(origin.file_url, shas[-1]) == tree  # a hit evicts nothing either
    assert mirrors.stats.evicted_trees == 2


def test_an_evicted_commit_is_extracted_again(origin: Origin, tmp_path: Path) -> None:
    mirrors = GitMirrors(git_settings(tmp_path, max_trees=1, min_idle=0))
    c1, c2 = commits(origin, 2)
    mirrors.export(origin.file_url, c1)
    mirrors.export(origin.file_url, c2)
    assert listing(mirrors, origin) == trees(c2)
    exports, fetches = mirrors.stats.exports, mirrors.stats.fetches

    again = mirrors.export(origin.file_url, c1[:10])  # a short SHA takes the same way
    assert again.name == c1 and (again / "app" / "deploy.yaml").read_text() == "n: 0\n"
    assert listing(mirrors, origin) == trees(c1)
    # The commit is still in the mirror: extracted again, not fetched again.
    assert (mirrors.stats.exports, mirrors.stats.fetches) == (exports + 1, fetches)


def test_trees_used_within_the_idle_threshold_are_kept(origin: Origin, tmp_path: Path) -> None:
    mirrors = GitMirrors(git_settings(tmp_path, max_trees=1, min_idle=3600))
    shas = commits(origin, 4)
    for sha in shas:
        mirrors.export(origin.file_url, sha)
    assert listing(mirrors, origin) == trees(*shas)  # over the limit, but all in recent use
    assert mirrors.stats.evicted_trees == 0

    # Two hours later for the first two only: those (and only those) may go now.
    for sha in shas[:2]:
        age(repo_dir(mirrors, origin) / sha, 7200)
    (c5,) = commits(origin, 1, start=4)
    mirrors.export(origin.file_url, c5)
    assert listing(mirrors, origin) == trees(*shas[2:], c5)
    assert mirrors.stats.evicted_trees == 2


def export_in_a_process(job: tuple[str, str, str, int, float]) -> tuple[str, str, int]:
    """Runs in a spawned process (another worker of the host): export, then read a while."""
    cache_dir, url, sha, max_trees, min_idle = job
    mirrors = GitMirrors(GitSettings(cache_dir=Path(cache_dir), timeout=20,
                                     max_trees_per_repo=max_trees,
                                     tree_min_idle_seconds=min_idle))
    tree = mirrors.export(url, sha)
    texts = set()
    for _ in range(5):  # a render reading files while other processes evict
        texts.add((tree / "app" / "deploy.yaml").read_text())
        time.sleep(0.05)
    assert len(texts) == 1
    return str(tree), texts.pop(), mirrors.stats.evicted_trees


def test_another_process_evicts_by_the_shared_record_of_use(origin: Origin,
                                                          tmp_path: Path) -> None:
    mirrors = GitMirrors(git_settings(tmp_path, max_trees=2, min_idle=3600))
    c1, c2, c3, c4 = commits(origin, 4)
    for sha in (c1, c2, c3, c1):  # c1 used last
        mirrors.export(origin.file_url, sha)

    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        tree, text, evicted = pool.apply(export_in_a_process, [(
            str(mirrors.settings.cache_dir), origin.file_url, c4, 2, 0.0)])
    assert (Path(tree).name, text, evicted) == (c4, "n: 3\n", 2)
    assert listing(mirrors, origin) == trees(c1, c4)
    # This process goes on using the cache: what the other evicted comes back on demand.
    assert (mirrors.export(origin.file_url, c2) / "app" / "deploy.yaml").read_text() == "n: 1\n"


def test_concurrent_exporters_evict_old_trees_and_never_a_tree_in_use(
    origin: Origin, tmp_path: Path,
) -> None:
    old = commits(origin, 6)
    populate = GitMirrors(git_settings(tmp_path, max_trees=20, min_idle=60))
    for tree in [populate.export(origin.file_url, sha) for sha in old]:
        age(tree, 3600)
    mirrors = GitMirrors(git_settings(tmp_path, max_trees=2, min_idle=60))
    new = commits(origin, 6, start=6)

    context = multiprocessing.get_context("spawn")
    with context.Pool(len(new)) as pool:
        results = pool.map(export_in_a_process, [
            (str(mirrors.settings.cache_dir), origin.file_url, sha, 2, 60.0) for sha in new])

    # Every process read its own tree, complete, throughout; none of the new ones went.
    assert [(Path(r[0]).name, r[1]) for r in results] == [
        (sha, f"n: {i}\n") for i, sha in enumerate(new, start=6)]
    left = set(listing(mirrors, origin))
    assert set(trees(*new)) <= left and left <= set(trees(*new, *old))  # no debris
    assert sum(r[2] for r in results) == len(old) - (len(left) - len(new) - 1)
    # The next new tree finishes the job (another evictor may have been busy before).
    (last,) = commits(origin, 1, start=12)
    mirrors.export(origin.file_url, last)
    assert listing(mirrors, origin) == trees(*new, last)


@contextmanager
def undeletable_trash(tree: Path) -> Iterator[None]:
    """Make a file of `tree` impossible to delete, as a real disk or permission problem would;
    on leaving, make whatever `.trash-*` it ended up in deletable again."""
    target = tree / "app" / "deploy.yaml"
    if os.geteuid() == 0:  # root deletes anything, except an immutable file
        result = subprocess.run(["chattr", "+i", str(target)], capture_output=True)
        if result.returncode != 0:
            pytest.skip(f"cannot make a file immutable here: {result.stderr!r}")
    else:
        target.parent.chmod(0o555)
    try:
        yield
    finally:
        for trash in [tree, *tree.parent.glob(".trash-*")]:
            app = trash / "app"
            if not app.exists():
                continue
            if os.geteuid() == 0:
                subprocess.run(["chattr", "-i", str(app / "deploy.yaml")], check=False)
            else:
                app.chmod(0o755)


def test_a_failed_delete_is_logged_and_never_fails_the_export(origin: Origin,
                                                              tmp_path: Path) -> None:
    mirrors = GitMirrors(git_settings(tmp_path, max_trees=1, min_idle=0))
    c1, c2, c3 = commits(origin, 3)
    stuck = mirrors.export(origin.file_url, c1)
    with undeletable_trash(stuck):
        with capture_logs() as logs:
            tree = mirrors.export(origin.file_url, c2)
        assert (tree / "app" / "deploy.yaml").read_text() == "n: 1\n"
        warnings = [e for e in logs if e["log_level"] == "warning"]
        assert [e["event"] for e in warnings] == [
            "could not delete evicted tree; will retry at the next eviction"]
        # c1 is gone as a tree (renamed aside first), so it is extracted again on demand.
        names = listing(mirrors, origin)
        debris = [n for n in names if n.startswith(".trash-")]
        assert len(debris) == 1 and [n for n in names if n not in debris] == trees(c2)
        assert (mirrors.export(origin.file_url, c1) / "app" / "deploy.yaml").read_text() \
            == "n: 0\n"
    # Deletable again: the next eviction removes the debris too.
    mirrors.export(origin.file_url, c3)
    assert listing(mirrors, origin) == trees(c3)
