"""Several worker PROCESSES resolving and exporting through one cache directory at once: one
mirror, one tree, everyone gets the same complete answer."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from gitops_tasks.settings import GitSettings
from gitops_tasks.source import GitMirrors
from tests.source.gitservers import GitDaemon, Origin

WORKERS = 4


def resolve_and_export(job: tuple[str, str, str]) -> tuple[str, str, str, int]:
    """Runs in a spawned process: what a worker does for a refresh."""
    cache_dir, url, revision = job
    mirrors = GitMirrors(GitSettings(cache_dir=Path(cache_dir), timeout=20))
    sha = mirrors.resolve(url, revision)
    tree = mirrors.export(url, sha)
    return sha, str(tree), (tree / "app" / "deploy.yaml").read_text(), mirrors.stats.fetches


@pytest.mark.parametrize("served_by", ["file", "git-daemon"])
def test_concurrent_processes_share_one_mirror_and_one_tree(
    origin: Origin, tmp_path: Path, request: pytest.FixtureRequest, served_by: str,
) -> None:
    for i in range(20):  # some history, so the clone takes a moment and the race is real
        origin.commit({f"app/f{i}.yaml": f"i: {i}\n" * 50}, f"commit {i}", push=False)
    sha = origin.commit({"app/deploy.yaml": "kind: Deployment\n"}, "last")
    daemon: GitDaemon | None = request.getfixturevalue("daemon") if served_by != "file" \
        else None
    url = daemon.url(origin.name) if daemon else origin.file_url
    cache = tmp_path / "shared-cache"

    context = multiprocessing.get_context("spawn")
    with context.Pool(WORKERS) as pool:
        results = pool.map(resolve_and_export, [(str(cache), url, "main")] * WORKERS * 2)

    assert {r[0] for r in results} == {sha}
    assert len({r[1] for r in results}) == 1
    assert {r[2] for r in results} == {"kind: Deployment\n"}
    # The lock makes the others wait for the first fetch and then find the commit there.
    assert sum(r[3] for r in results) == 1
    mirrors_dir = cache / "mirrors"
    assert len([p for p in mirrors_dir.iterdir() if p.is_dir()]) == 1
    trees = [p for p in (cache / "trees").iterdir() if p.is_dir()]
    assert len(trees) == 1
    assert sorted(p.name for p in trees[0].iterdir()) == [".source", sha]
