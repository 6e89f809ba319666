"""GitMirrors.resolve and changed_files against real repositories, over file:// and git://."""

from __future__ import annotations

import pytest

from gitops_tasks.errors import InvalidApplication, PermanentError, RevisionNotFound
from gitops_tasks.settings import GitSettings
from gitops_tasks.source import GitMirrors
from tests.source.gitservers import GitDaemon, Origin, git


@pytest.fixture(params=["file", "git-daemon"])
def url(request: pytest.FixtureRequest, origin: Origin) -> str:
    if request.param == "file":
        return origin.file_url
    daemon: GitDaemon = request.getfixturevalue("daemon")
    return daemon.url(origin.name)


def test_resolves_branch_tags_shas_and_head(origin: Origin, url: str,
                                            mirrors: GitMirrors) -> None:
    first = origin.git("rev-parse", "HEAD")
    feature = origin.commit({"app/feature.yaml": "x: 1\n"}, "feature work", branch="feature")
    origin.tag("v1.0", first, annotated=True)
    origin.tag("light", feature)
    main = origin.commit({"app/deploy.yaml": "kind: Secret\n"}, "second", branch="main")
    assert origin.git("cat-file", "-t", "v1.0") == "tag"  # a real annotated tag object

    assert mirrors.resolve(url, "main") == main
    assert mirrors.resolve(url, "refs/heads/main") == main
    assert mirrors.resolve(url, "feature") == feature
    assert mirrors.resolve(url, "v1.0") == first  # peeled to the commit, not the tag object
    assert mirrors.resolve(url, "refs/tags/v1.0") == first
    assert mirrors.resolve(url, "light") == feature
    assert mirrors.resolve(url, "HEAD") == main
    assert mirrors.resolve(url, "") == main
    assert mirrors.resolve(url, first) == first
    assert mirrors.resolve(url, first[:8]) == first
    assert mirrors.resolve(url, first.upper()) == first
    mirror_dirs = [p for p in (mirrors.settings.cache_dir / "mirrors").iterdir() if p.is_dir()]
    assert mirror_dirs == [mirrors.mirror_path(url)]


def test_unchanged_remote_costs_one_ls_remote_and_no_fetch(origin: Origin, url: str,
                                                          settings: GitSettings) -> None:
    mirrors = GitMirrors(settings)
    sha = mirrors.resolve(url, "main")
    assert (mirrors.stats.ls_remotes, mirrors.stats.fetches) == (1, 1)
    fetch_head = mirrors.mirror_path(url) / "FETCH_HEAD"
    before = fetch_head.stat().st_mtime_ns

    assert mirrors.resolve(url, "main") == sha
    assert (mirrors.stats.ls_remotes, mirrors.stats.fetches) == (2, 1)
    # Another worker process on the host shares the mirror: one round trip, no fetch either.
    other = GitMirrors(settings)
    assert other.resolve(url, "main") == sha
    assert (other.stats.ls_remotes, other.stats.fetches) == (1, 0)
    assert fetch_head.stat().st_mtime_ns == before

    # A commit SHA already in the mirror needs no remote at all.
    assert other.resolve(url, sha) == sha
    assert (other.stats.ls_remotes, other.stats.fetches) == (1, 0)


def test_new_commit_is_fetched_and_resolved(origin: Origin, url: str,
                                            mirrors: GitMirrors) -> None:
    old = mirrors.resolve(url, "main")
    new = origin.commit({"app/deploy.yaml": "kind: Service\n"}, "update")
    assert mirrors.resolve(url, "main") == new != old
    assert mirrors.stats.fetches == 2


def test_resolve_ttl_trusts_a_recent_answer(origin: Origin, url: str,
                                            settings: GitSettings) -> None:
    mirrors = GitMirrors(GitSettings(cache_dir=settings.cache_dir, resolve_ttl=60))
    old = mirrors.resolve(url, "main")
    origin.commit({"x": "y"}, "update")
    assert mirrors.resolve(url, "main") == old
    assert mirrors.stats.ls_remotes == 1


def test_force_push_moves_the_branch(origin: Origin, url: str, mirrors: GitMirrors) -> None:
    origin.commit({"a": "1"}, "one", branch="feature")
    before = origin.commit({"a": "2"}, "two", branch="feature")
    assert mirrors.resolve(url, "feature") == before
    after = origin.force_push("feature", {"a": "rewritten"})
    # Really rewritten: the old tip is not in the new branch's history.
    assert before not in git("rev-list", after, cwd=origin.work).split()
    resolved = mirrors.resolve(url, "feature")
    assert resolved == after != before
    # The old commit stays addressable by SHA in the mirror (history of what was deployed).
    assert mirrors.resolve(url, before) == before


def test_deleted_branch_is_revision_not_found_and_pruned(origin: Origin, url: str,
                                                         mirrors: GitMirrors) -> None:
    origin.commit({"f": "1"}, "feature", branch="feature")
    mirrors.resolve(url, "feature")
    origin.delete_branch("feature")
    with pytest.raises(RevisionNotFound) as info:
        mirrors.resolve(url, "feature", app="guestbook")
    message = str(info.value)
    assert message.startswith("guestbook: ")
    assert "'feature'" in message and url in message and "deleted" in message
    assert isinstance(info.value, PermanentError)
    # The next fetch prunes it from the mirror too.
    origin.commit({"g": "1"}, "more", branch="main")
    mirrors.resolve(url, "main")
    refs = git("for-each-ref", "--format=%(refname)", cwd=mirrors.mirror_path(url))
    assert "refs/heads/feature" not in refs.split()


@pytest.mark.parametrize("revision", ["no-such-branch", "v9.9.9", "abcdef1",
                                      "0123456789abcdef0123456789abcdef01234567"])
def test_unknown_revision(origin: Origin, url: str, mirrors: GitMirrors, revision: str) -> None:
    with pytest.raises(RevisionNotFound) as info:
        mirrors.resolve(url, revision, app="guestbook")
    assert revision in str(info.value) and "check that" in str(info.value)


@pytest.mark.parametrize("revision", ["--upload-pack=touch /tmp/pwned", "a..b", "main~1",
                                      "has space", "refs/heads/"])
def test_invalid_revision_names_are_refused(origin: Origin, mirrors: GitMirrors,
                                            revision: str) -> None:
    with pytest.raises(RevisionNotFound, match="not a valid"):
        mirrors.resolve(origin.file_url, revision)
    assert mirrors.stats.ls_remotes == 0


@pytest.mark.parametrize("repo_url", ["--upload-pack=touch /tmp/pwned", "ext::sh -c touch% /tmp/x",
                                      "fd::17", "ftp://example.com/repo.git", ""])
def test_urls_that_could_run_commands_are_refused(mirrors: GitMirrors, repo_url: str) -> None:
    with pytest.raises(InvalidApplication, match=r"spec\.source\.repoURL"):
        mirrors.resolve(repo_url, "main")
    assert mirrors.stats.ls_remotes == 0


def test_branch_named_like_a_short_sha(origin: Origin, url: str, mirrors: GitMirrors) -> None:
    sha = origin.commit({"b": "1"}, "on a hex-named branch", branch="cafe1234")
    assert mirrors.resolve(url, "cafe1234") == sha


def test_commit_on_no_branch_is_fetched_by_sha(origin: Origin, url: str,
                                               mirrors: GitMirrors) -> None:
    mirrors.resolve(url, "main")
    orphan = origin.commit({"pr": "1"}, "pull request", branch="pr", push=False)
    origin.git("push", "--quiet", "origin", "pr:refs/pull/1/head")
    assert mirrors.resolve(url, orphan) == orphan
    assert mirrors.resolve(url, "refs/pull/1/head") == orphan


def test_changed_files(origin: Origin, url: str, mirrors: GitMirrors) -> None:
    old = mirrors.resolve(url, "main")
    origin.write({"app/new.yaml": "n: 1\n", "other/x.yaml": "x: 1\n"})
    (origin.work / "README.md").unlink()
    new = origin.commit({"app/deploy.yaml": "kind: Changed\n"}, "several changes")
    assert mirrors.changed_files(url, old, new) == [
        "README.md", "app/deploy.yaml", "app/new.yaml", "other/x.yaml",
    ]
    assert mirrors.changed_files(url, new, new) == []
