"""normalize_repo_url, redact, split_userinfo and mirror names: tables."""

from __future__ import annotations

import pytest

from gitops_tasks.source import normalize_repo_url, redact
from gitops_tasks.source.urls import mirror_name, split_userinfo, transport


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/org/repo", "github.com/org/repo"),
        ("https://github.com/org/repo.git", "github.com/org/repo"),
        ("https://github.com/org/repo/", "github.com/org/repo"),
        ("https://github.com/org/repo.git/", "github.com/org/repo"),
        ("HTTPS://GitHub.COM/org/repo", "github.com/org/repo"),
        ("https://user:tok@github.com/org/repo.git", "github.com/org/repo"),
        ("https://tok@github.com/org/repo", "github.com/org/repo"),
        ("http://github.com/org/repo", "github.com/org/repo"),
        ("https://github.com:443/org/repo", "github.com/org/repo"),
        ("ssh://git@github.com/org/repo.git", "github.com/org/repo"),
        ("ssh://git@github.com:22/org/repo", "github.com/org/repo"),
        ("git+ssh://git@github.com/org/repo", "github.com/org/repo"),
        ("git@github.com:org/repo.git", "github.com/org/repo"),
        ("git@GitHub.com:org/repo", "github.com/org/repo"),
        ("github.com:org/repo.git", "github.com/org/repo"),
        # Path case is kept: many servers are case-sensitive.
        ("https://gitlab.example.com/Group/Repo", "gitlab.example.com/Group/Repo"),
        ("https://git.example.com:8443/org/repo.git", "git.example.com:8443/org/repo"),
        ("ssh://git@git.example.com:2222/org/repo", "git.example.com:2222/org/repo"),
        ("git://127.0.0.1:9419/repo.git", "127.0.0.1:9419/repo"),
        ("git://example.com/repo", "example.com/repo"),
        ("https://[::1]:8080/org/repo", "[::1]:8080/org/repo"),
        ("  https://github.com/org/repo  ", "github.com/org/repo"),
        # Local repositories keep scheme and exact path (.git included).
        ("file:///srv/git/repo.git", "file:///srv/git/repo.git"),
        ("file:///srv/git/repo.git/", "file:///srv/git/repo.git"),
        ("/srv/git/repo.git", "file:///srv/git/repo.git"),
    ],
)
def test_normalize_repo_url(url: str, expected: str) -> None:
    assert normalize_repo_url(url) == expected


def test_forms_of_one_repo_share_identity_and_mirror() -> None:
    forms = [
        "https://github.com/Org/repo.git",
        "https://user:token@GITHUB.com/Org/repo/",
        "ssh://git@github.com/Org/repo",
        "git@github.com:Org/repo.git",
    ]
    assert len({normalize_repo_url(u) for u in forms}) == 1
    assert len({mirror_name(u) for u in forms}) == 1
    assert mirror_name(forms[0]) != mirror_name("https://github.com/Org/repo2")
    assert mirror_name("file:///srv/a/repo.git").startswith("srv_a_repo.git-")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:tok@host/x", "https://***@host/x"),
        ("https://tok@host/x", "https://***@host/x"),
        ("http://u:p@ss@host/x", "http://***@host/x"),
        ("fatal: unable to access 'https://bob:ghp_abc@github.com/o/r/': 403",
         "fatal: unable to access 'https://***@github.com/o/r/': 403"),
        ("two https://a:b@h1/x and http://c:d@h2/y",
         "two https://***@h1/x and http://***@h2/y"),
        ("ssh://git@github.com/org/repo", "ssh://git@github.com/org/repo"),
        ("ssh://git:pw@github.com/org/repo", "ssh://***@github.com/org/repo"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("https://github.com/org/repo?x=a@b", "https://github.com/org/repo?x=a@b"),
        ("no urls here", "no urls here"),
        ("Authorization: Basic YWxpY2U6czNjcmV0", "Authorization: Basic ***"),
        ("key -----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY----- x",
         "key *** x"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://alice:pw@host/r.git", ("https://host/r.git", "alice", "pw")),
        ("https://token@host/r.git", ("https://host/r.git", "token", "")),
        ("https://host/r.git", ("https://host/r.git", "", "")),
        ("ssh://git@host/r.git", ("ssh://git@host/r.git", "", "")),
        ("ssh://git:pw@host/r.git", ("ssh://git@host/r.git", "", "pw")),
        ("git@host:r.git", ("git@host:r.git", "", "")),
    ],
)
def test_split_userinfo(url: str, expected: tuple[str, str, str]) -> None:
    assert split_userinfo(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h/r", "http"), ("http://h/r", "http"), ("ssh://git@h/r", "ssh"),
        ("git@h:r", "ssh"), ("git://h/r", "git"), ("file:///r", "file"), ("/srv/r", "file"),
    ],
)
def test_transport(url: str, expected: str) -> None:
    assert transport(url) == expected
