"""credentials_from_secrets and match_credentials: Argo CD's repository secret semantics."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from gitops_tasks.model import keys
from gitops_tasks.source import (
    RepoCredentials,
    credentials_from_secrets,
    match_credentials,
    match_helm_credentials,
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(name: str, kind: str, *, label: str = keys.SECRET_TYPE_LABEL,
           data: dict[str, str] | None = None,
           string_data: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": "gitops-tasks", "labels": {label: kind}},
    }
    if data is not None:
        body["data"] = {k: b64(v) for k, v in data.items()}
    if string_data is not None:
        body["stringData"] = string_data
    return body


def test_credentials_from_secrets_reads_both_labels_and_encodings() -> None:
    secrets = [
        secret("repo", "repository", data={"url": "https://github.com/org/app",
                                            "username": "bob", "password": "tok1"}),
        secret("creds", "repo-creds", label=keys.ARGO_SECRET_TYPE_LABEL,
               string_data={"url": "git@github.com:org", "sshPrivateKey": "KEY",
                            "insecure": "true"}),
        secret("mixed", "repository", data={"url": "https://a/b", "password": "old"},
               string_data={"password": "new"}),
        secret("helm", "repository", string_data={"url": "https://charts", "type": "helm"}),
        secret("other", "cluster", string_data={"url": "https://k8s"}),
        secret("nourl", "repository", string_data={"username": "x"}),
        secret("broken", "repository", data={"url": "x"}) | {"data": {"url": "!!notb64"}},
        {"metadata": {"name": "unlabelled"}, "stringData": {"url": "https://x"}},
    ]
    found = credentials_from_secrets(secrets)
    assert [(c.secret, c.kind, c.repo_type) for c in found] == [
        ("gitops-tasks/repo", "repository", "git"),
        ("gitops-tasks/creds", "repo-creds", "git"),
        ("gitops-tasks/mixed", "repository", "git"),
        ("gitops-tasks/helm", "repository", "helm"),
    ]
    repo, creds, mixed, _ = found
    assert (repo.url, repo.username, repo.password) == ("https://github.com/org/app", "bob", "tok1")
    assert creds.ssh_private_key == "KEY" and creds.insecure_ignore_host_key
    assert not repo.insecure_ignore_host_key
    assert mixed.password == "new"  # stringData wins, as the API server merges it


def test_repr_hides_secrets() -> None:
    cred = RepoCredentials(url="https://x:urltok@h/r", username="bob", password="hunter2",
                           ssh_private_key="-----BEGIN KEY-----")
    for text in (repr(cred), str(cred), f"{cred}", repr([cred])):
        assert "hunter2" not in text and "BEGIN KEY" not in text and "urltok" not in text
    assert "bob" in repr(cred)


CREDS = [
    RepoCredentials("https://github.com/org/app", "exact", "p", kind="repository"),
    RepoCredentials("https://github.com/org", "org", "p", kind="repo-creds"),
    RepoCredentials("https://github.com/org/team", "team", "p", kind="repo-creds"),
    RepoCredentials("https://github.com", "host", "p", kind="repo-creds"),
    RepoCredentials("git@github.com:org", ssh_private_key="K", kind="repo-creds",
                    username="sshorg"),
    RepoCredentials("https://gitlab.com/public/repo", kind="repository", username=""),
    RepoCredentials("https://gitlab.com/public", "glpublic", "p", kind="repo-creds"),
]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # An exact repository entry wins over any template, whatever its URL form.
        ("https://github.com/org/app", "exact"),
        ("https://github.com/org/app.git", "exact"),
        ("https://GitHub.com/org/app/", "exact"),
        # Otherwise the longest prefix template.
        ("https://github.com/org/team/svc", "team"),
        ("https://github.com/org/other", "org"),
        ("https://github.com/elsewhere/x", "host"),
        # Prefixes match on path segments: org2 is not under org.
        ("https://github.com/org2/x", "host"),
        # Transport matters: the ssh key for ssh URLs, the passwords for https.
        ("ssh://git@github.com/org/app", "sshorg"),
        ("git@github.com:org/app.git", "sshorg"),
        ("git@github.com:other/app.git", None),
        # A URL-only repository entry inherits from a template, as in Argo CD.
        ("https://gitlab.com/public/repo", "glpublic"),
        ("https://bitbucket.org/x/y", None),
    ],
)
def test_match_credentials(url: str, expected: str | None) -> None:
    match = match_credentials(url, CREDS)
    assert (match.username if match else None) == expected


def test_match_credentials_tracks_kind() -> None:
    exact = match_credentials("https://github.com/org/app", CREDS)
    template = match_credentials("https://github.com/org/x", CREDS)
    assert exact is not None and exact.kind == "repository"
    assert template is not None and template.kind == "repo-creds"
    public = match_credentials("https://gitlab.com/public/repo", CREDS[5:6])
    assert public is not None and public.kind == "repository" and not public.has_secret


def test_helm_credentials_match_helm_repositories_only() -> None:
    found = credentials_from_secrets([
        secret("git", "repository", string_data={"url": "https://charts.example.com/stable",
                                                 "username": "git", "password": "g"}),
        secret("helm", "repository", string_data={"url": "https://charts.example.com/stable",
                                                  "type": "helm", "username": "h",
                                                  "password": "p"}),
        secret("oci", "repo-creds", string_data={"url": "registry.example.com/team",
                                                 "type": "helm", "enableOCI": "true",
                                                 "username": "o", "password": "q",
                                                 "insecureOCIForceHttp": "true"}),
    ])
    helm = match_helm_credentials("https://charts.example.com/stable/", found)
    assert helm is not None and helm.username == "h"
    oci = match_helm_credentials("oci://registry.example.com/team/charts/app", found)
    assert oci is not None and (oci.username, oci.oci_force_http) == ("o", True)
    assert match_helm_credentials("oci://registry.example.com/other/app", found) is None
    # A Git lookup never hands out a Helm repository's password, nor the other way round.
    git = match_credentials("https://charts.example.com/stable", found)
    assert git is not None and git.username == "git"
