"""Which Applications a push touches, without a server."""

from __future__ import annotations

from typing import Any

import pytest

from gitops_tasks.webhooks import Push, affected, ref_matches, target_of, touches


def app(name: str, repo: str, *, path: str = ".", revision: str = "main",
        annotations: dict[str, str] | None = None, chart: str = "") -> dict[str, Any]:
    source: dict[str, Any] = {"repoURL": repo, "targetRevision": revision, "path": path}
    if chart:
        source["chart"] = chart
    return {"metadata": {"name": name, "namespace": "gitops-tasks",
                         "annotations": annotations or {}},
            "spec": {"source": source, "destination": {"namespace": "x"}}}


def push(*urls: str, ref: str = "refs/heads/main", changed: frozenset[str] | None = None,
         default: str = "main") -> Push:
    return Push("github", urls, ref, "a" * 40, "b" * 40, default, changed)


@pytest.mark.parametrize("app_url", [
    "https://github.com/Acme/Deploy.git",
    "https://github.com/acme/deploy",
    "https://user:token@GitHub.com/acme/deploy.git/",
    "git@github.com:acme/deploy.git",
    "ssh://git@github.com/acme/deploy",
    "ssh://git@github.com:22/acme/deploy.git",
    "https://github.com:443/acme/deploy",
])
def test_repository_urls_match_in_every_form(app_url: str) -> None:
    target = target_of(app("a", app_url))
    assert target is not None
    assert affected(push("https://github.com/acme/deploy"), [target]) == [target]


@pytest.mark.parametrize("other", [
    "https://github.com/acme/deploy-prod", "https://gitlab.com/acme/deploy",
    "https://github.com:8443/acme/deploy", "https://github.com/acme/other/deploy",
])
def test_other_repositories_do_not_match(other: str) -> None:
    target = target_of(app("a", other))
    assert target is not None
    assert affected(push("https://github.com/acme/deploy"), [target]) == []


@pytest.mark.parametrize(("revision", "ref", "default", "expected"), [
    ("main", "refs/heads/main", "main", True),
    ("main", "refs/heads/dev", "main", False),
    ("HEAD", "refs/heads/main", "main", True),
    ("HEAD", "refs/heads/dev", "main", False),
    ("", "refs/heads/trunk", "trunk", True),
    ("HEAD", "refs/heads/any", "", True),  # default branch unknown: it might be this one
    ("HEAD", "refs/tags/v1", "main", False),
    ("v1.2.0", "refs/tags/v1.2.0", "main", True),
    ("refs/heads/main", "refs/heads/main", "main", True),
    ("refs/tags/v1", "refs/heads/v1", "main", False),
    ("b" * 40, "refs/heads/main", "main", False),  # a commit never moves
])
def test_refs(revision: str, ref: str, default: str, expected: bool) -> None:
    assert ref_matches(revision, ref, default) is expected


def test_paths_and_annotations() -> None:
    changed = frozenset({"apps/web/deploy.yaml"})
    web = target_of(app("web", "https://h/r", path="apps/web"))
    api = target_of(app("api", "https://h/r", path="./apps/api/"))
    root = target_of(app("root", "https://h/r", path="."))
    webby = target_of(app("webby", "https://h/r", path="apps/we"))  # a prefix, not a parent
    assert web and api and root and webby
    assert touches(web.paths, changed)
    assert not touches(api.paths, changed)
    assert touches(root.paths, changed)
    assert not touches(webby.paths, changed)
    assert touches(api.paths, None)  # unknown changes: refresh
    # Argo CD's annotation and ours: ';'-separated, relative to the path or absolute.
    shared = target_of(app("api", "https://h/r", path="apps/api",
                           annotations={"argocd.argoproj.io/manifest-generate-paths":
                                        ".; ../web"}))
    assert shared and shared.paths == ("apps/api", "apps/web")
    assert touches(shared.paths, changed)
    ours = target_of(app("api", "https://h/r", path="apps/api",
                         annotations={"gitops-tasks.io/refresh-paths": "/lib;/apps/api"}))
    assert ours and ours.paths == ("lib", "apps/api")
    assert touches(ours.paths, frozenset({"lib/base.yaml"}))
    escaping = target_of(app("x", "https://h/r", path="a",
                             annotations={"gitops-tasks.io/refresh-paths": "../../.."}))
    assert escaping and escaping.paths == ("",)


def test_apps_without_a_git_source_are_not_targets() -> None:
    assert target_of(app("chart", "https://charts.example.com", chart="nginx")) is None
    assert target_of({"metadata": {"name": "x"}, "spec": {}}) is None
    assert target_of({"metadata": {"name": "x"}, "spec": "nonsense"}) is None
