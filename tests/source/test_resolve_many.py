"""`GitMirrors.resolve_many`: every revision of one repository with a single ls-remote (the
sweep's per-repo cost), against real git repositories; ls-remotes counted with `stats`."""

from __future__ import annotations

from gitops_tasks.errors import GitOpsError, InvalidApplication, RepoUnreachable, RevisionNotFound
from gitops_tasks.source import GitMirrors
from tests.source.gitservers import Origin, free_port


def _refs(origin: Origin) -> dict[str, str]:
    """main, a branch dev, a lightweight tag v1 and an annotated tag v2 (on different
    commits), by name -> commit."""
    first = origin.git("rev-parse", "HEAD")
    origin.tag("v1", "main")
    dev = origin.commit({"dev.txt": "dev\n"}, "on dev", branch="dev")
    main = origin.commit({"main.txt": "main\n"}, "on main", branch="main")
    origin.tag("v2", "dev", annotated=True)
    return {"main": main, "dev": dev, "v1": first, "v2": dev}


def test_branches_and_tags_of_one_repo_cost_one_ls_remote(origin: Origin,
                                                         mirrors: GitMirrors) -> None:
    expected = _refs(origin)
    got = mirrors.resolve_many(origin.file_url, ["main", "dev", "v1", "v2", "HEAD", ""])
    assert got == {**expected, "HEAD": expected["main"], "": expected["main"]}
    # The annotated tag resolves to the commit it points to, not to the tag object.
    assert got["v2"] != origin.git("rev-parse", "v2")
    assert mirrors.stats.ls_remotes == 1
    assert mirrors.stats.fetches == 0  # nothing is fetched: the refresh that renders does


def test_duplicates_and_refs_paths_are_one_entry_each(origin: Origin,
                                                      mirrors: GitMirrors) -> None:
    expected = _refs(origin)
    got = mirrors.resolve_many(origin.file_url, ["dev", "dev", "refs/heads/main"])
    assert got == {"dev": expected["dev"], "refs/heads/main": expected["main"]}
    assert mirrors.stats.ls_remotes == 1


def test_full_shas_need_no_remote(origin: Origin, mirrors: GitMirrors) -> None:
    sha = origin.git("rev-parse", "HEAD")
    assert mirrors.resolve_many(origin.file_url, [sha, sha.upper()]) == {
        sha: sha, sha.upper(): sha}
    assert mirrors.stats.ls_remotes == 0
    # Mixed with a branch: still one ls-remote, for the branch only.
    assert mirrors.resolve_many(origin.file_url, [sha, "main"]) == {sha: sha, "main": sha}
    assert mirrors.stats.ls_remotes == 1


def test_full_sha_of_an_unreachable_repo_needs_no_remote(mirrors: GitMirrors) -> None:
    sha = "a" * 40
    url = f"git://127.0.0.1:{free_port()}/nowhere.git"
    assert mirrors.resolve_many(url, [sha]) == {sha: sha}
    assert mirrors.stats.ls_remotes == 0


def test_unknown_branch_is_an_error_value_the_others_resolve(origin: Origin,
                                                            mirrors: GitMirrors) -> None:
    expected = _refs(origin)
    got = mirrors.resolve_many(origin.file_url, ["main", "no-such-branch", "v1"])
    assert got["main"] == expected["main"] and got["v1"] == expected["v1"]
    error = got["no-such-branch"]
    assert isinstance(error, RevisionNotFound)
    assert "no-such-branch" in error.message


def test_invalid_revision_names_are_refused_without_git(origin: Origin,
                                                       mirrors: GitMirrors) -> None:
    got = mirrors.resolve_many(origin.file_url, ["bad..name", "-upload-pack=x", "a b"])
    assert set(got) == {"bad..name", "-upload-pack=x", "a b"}
    assert all(isinstance(v, RevisionNotFound) for v in got.values())
    assert mirrors.stats.ls_remotes == 0


def test_unreachable_repo_gives_errors_for_all(mirrors: GitMirrors) -> None:
    url = f"git://127.0.0.1:{free_port()}/nowhere.git"
    got = mirrors.resolve_many(url, ["main", "dev", "v1"])
    assert set(got) == {"main", "dev", "v1"}
    assert all(isinstance(v, RepoUnreachable) for v in got.values()), got
    # One failed round trip for all of them, not one per revision.
    assert mirrors.stats.ls_remotes == 1


def test_missing_repository_gives_errors_for_all(origin: Origin, mirrors: GitMirrors) -> None:
    url = origin.file_url.replace(origin.name, origin.name + "-missing")
    got = mirrors.resolve_many(url, ["main", "dev"])
    assert set(got) == {"main", "dev"}
    assert all(isinstance(v, GitOpsError) for v in got.values()), got


def test_a_url_git_must_not_run_gives_invalid_application_for_all(mirrors: GitMirrors) -> None:
    got = mirrors.resolve_many("ext::sh -c touch% /tmp/pwned", ["main", "a" * 40])
    assert set(got) == {"main", "a" * 40}
    assert all(isinstance(v, InvalidApplication) for v in got.values())
    assert mirrors.stats.ls_remotes == 0


def test_unknown_branch_costs_no_second_ls_remote(origin: Origin, mirrors: GitMirrors) -> None:
    """The docstring's promise, which the sweep relies on: one ls-remote for all branch and
    tag names of a repo. A name the ls-remote did not list is retried through `resolve()`,
    which runs the same ls-remote again, so every sweep pays one more round trip per unknown
    branch."""
    _refs(origin)
    got = mirrors.resolve_many(origin.file_url, ["main", "no-such-branch", "also-missing"])
    assert isinstance(got["no-such-branch"], RevisionNotFound)
    assert isinstance(got["also-missing"], RevisionNotFound)
    assert mirrors.stats.ls_remotes == 1, mirrors.stats

