"""Provider detection, signatures and payload parsing, without a server."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from gitops_tasks.settings import WebhookSecrets
from gitops_tasks.webhooks import (
    Ignored,
    Ping,
    Push,
    WebhookError,
    authenticate,
    delivery_id,
    detect,
    parse,
)
from gitops_tasks.webhooks.providers import load, lower

from . import payloads as p

A, B = "a" * 40, "b" * 40
SECRETS = WebhookSecrets(github="gh-s3cret", gitlab="gl-token", bitbucket_uuid="{hook-uuid}",
                         bitbucket_server="bbs-s3cret", gitea="gitea-s3cret",
                         gogs="gogs-s3cret", azure_devops_username="hook",
                         azure_devops_password="az-pass")


def deliveries(secrets: WebhookSecrets = SECRETS) -> dict[str, p.Delivery]:
    return {
        "github": p.github(org="acme", repo="deploy", ref="refs/heads/main", before=A, after=B,
                           files=["apps/web/deploy.yaml"], secret=secrets.github),
        "gitlab": p.gitlab(group="acme", project="deploy", ref="refs/heads/main", before=A,
                           after=B, files=["apps/web/deploy.yaml"], secret=secrets.gitlab),
        "bitbucket": p.bitbucket(workspace="acme", repo="deploy", branch="main", before=A,
                                 after=B, hook_uuid=secrets.bitbucket_uuid),
        "bitbucket-server": p.bitbucket_server(project="ACME", repo="deploy",
                                               ref="refs/heads/main", before=A, after=B,
                                               secret=secrets.bitbucket_server),
        "gitea": p.gitea(org="acme", repo="deploy", ref="refs/heads/main", before=A, after=B,
                         files=["apps/web/deploy.yaml"], secret=secrets.gitea),
        "gogs": p.gitea(org="acme", repo="deploy", ref="refs/heads/main", before=A, after=B,
                        files=["apps/web/deploy.yaml"], secret=secrets.gogs, gogs=True),
        "azure-devops": p.azure_devops(org="acme", project="ops", repo="deploy",
                                       ref="refs/heads/main", before=A, after=B,
                                       username=secrets.azure_devops_username,
                                       password=secrets.azure_devops_password),
    }


def events(d: p.Delivery) -> list[Any]:
    headers = lower(d.headers)
    provider = detect(headers)
    assert provider is not None
    authenticate(provider, headers, d.body, SECRETS)
    return parse(provider, headers, load(provider, d.body))


@pytest.mark.parametrize("provider", list(deliveries()))
def test_each_provider_is_detected_verified_and_parsed(provider: str) -> None:
    d = deliveries()[provider]
    assert detect(lower(d.headers)) == provider
    [push] = events(d)
    assert isinstance(push, Push)
    assert push.provider == provider
    assert push.ref == "refs/heads/main"
    assert (push.before, push.after) == (A, B)
    assert push.repo_urls
    if provider in ("github", "gitlab", "gitea", "gogs"):
        assert push.changed == frozenset({"apps/web/deploy.yaml"})
    else:
        assert push.changed is None  # these providers list no files: Git will say
    headers = lower(d.headers)
    assert delivery_id(provider, headers, json.loads(d.body))


@pytest.mark.parametrize("provider", list(deliveries()))
def test_a_wrong_secret_and_a_missing_one_are_refused(provider: str) -> None:
    wrong = WebhookSecrets(github="x", gitlab="x", bitbucket_uuid="x", bitbucket_server="x",
                           gitea="x", gogs="x", azure_devops_username="hook",
                           azure_devops_password="x")
    d = deliveries(wrong)[provider]
    headers = lower(d.headers)
    with pytest.raises(WebhookError) as bad:
        authenticate(provider, headers, d.body, SECRETS)
    assert bad.value.status == 401 and "wrong" in bad.value.message
    unsigned = {k: v for k, v in headers.items()
                if k not in ("x-hub-signature-256", "x-hub-signature", "x-gitlab-token",
                             "x-gitea-signature", "x-gogs-signature", "authorization")}
    if provider == "bitbucket":
        unsigned["x-hook-uuid"] = ""
    with pytest.raises(WebhookError) as missing:
        authenticate(provider, unsigned, d.body, SECRETS)
    assert missing.value.status == 401 and "without" in missing.value.message


def test_a_body_changed_after_signing_is_refused() -> None:
    d = deliveries()["github"]
    with pytest.raises(WebhookError):
        authenticate("github", lower(d.headers), d.body.replace(b"main", b"evil"), SECRETS)


def test_gitea_is_never_taken_for_github() -> None:
    """Gitea sends GitHub's headers too, signed with the Gitea secret: checked as Gitea."""
    d = deliveries()["gitea"]
    headers = lower(d.headers)
    assert "x-github-event" in headers and detect(headers) == "gitea"
    only_gitea = WebhookSecrets(gitea=SECRETS.gitea)
    authenticate("gitea", headers, d.body, only_gitea)
    with pytest.raises(WebhookError):
        authenticate("github", headers, d.body, WebhookSecrets(github=SECRETS.gitea + "x"))


def test_no_secret_refuses_unless_insecure() -> None:
    d = deliveries()["github"]
    with pytest.raises(WebhookError) as exc:
        authenticate("github", lower(d.headers), d.body, WebhookSecrets())
    assert exc.value.status == 401 and "no secret is configured" in exc.value.message
    authenticate("github", lower(d.headers), d.body, WebhookSecrets(), insecure=True)


def test_azure_basic_auth_needs_both_user_and_password() -> None:
    d = p.azure_devops(org="o", project="p", repo="r", ref="refs/heads/main", before=A,
                       after=B, username="other", password="az-pass")
    with pytest.raises(WebhookError):
        authenticate("azure-devops", lower(d.headers), d.body, SECRETS)
    headers = lower(d.headers)
    headers["authorization"] = "Basic !!!not-base64"
    with pytest.raises(WebhookError):
        authenticate("azure-devops", headers, d.body, SECRETS)
    headers["authorization"] = "Bearer " + base64.b64encode(b"hook:az-pass").decode()
    with pytest.raises(WebhookError):
        authenticate("azure-devops", headers, d.body, SECRETS)


def test_pings() -> None:
    gh = p.github(org="a", repo="b", ref="", before=A, after=B, files=None,
                  secret=SECRETS.github, event="ping")
    assert events(gh) == [Ping("github")]
    bbs = p.bitbucket_server(project="A", repo="b", ref="", before=A, after=B,
                             secret=SECRETS.bitbucket_server, event="diagnostics:ping")
    assert events(bbs) == [Ping("bitbucket-server")]


def test_other_events_are_ignored() -> None:
    d = deliveries()["github"]
    d.headers["X-GitHub-Event"] = "issues"
    assert events(d) == [Ignored("github", "issues")]
    az = json.loads(deliveries()["azure-devops"].body)
    az["eventType"] = "git.pullrequest.created"
    assert parse("azure-devops", {}, az) == [Ignored("azure-devops", "git.pullrequest.created")]


def test_file_lists_are_not_trusted_when_they_may_be_incomplete() -> None:
    def changed(d: p.Delivery) -> frozenset[str] | None:
        [push] = events(d)
        assert isinstance(push, Push)
        return push.changed

    common: dict[str, Any] = {"org": "a", "repo": "b", "ref": "refs/heads/main",
                              "secret": SECRETS.github}
    # GitHub lists at most 20 commits: 20 listed may be more pushed.
    assert changed(p.github(before=A, after=B, files=["x"], commits=20, **common)) is None
    assert changed(p.github(before=A, after=B, files=["x"], commits=19, **common)) == {"x"}
    # A force push: the dropped commits' files changed too, and no list names them.
    assert changed(p.github(before=A, after=B, files=["x"], forced=True, **common)) is None
    # No commits listed (a rewind, a branch moved to an existing commit).
    assert changed(p.github(before=A, after=B, files=None, **common)) is None
    # A new branch: nothing to compare with.
    assert changed(p.github(before=p.ZERO, after=B, files=["x"], **common)) is None
    # GitLab says how many commits were pushed.
    gl = {"group": "a", "project": "b", "ref": "refs/heads/main", "secret": SECRETS.gitlab}
    assert changed(p.gitlab(before=A, after=B, files=["x"], total=40, **gl)) is None
    assert changed(p.gitlab(before=A, after=B, files=["x"], **gl)) == {"x"}


def test_malformed_bodies_are_bad_requests() -> None:
    with pytest.raises(WebhookError) as exc:
        load("github", b"{not json")
    assert exc.value.status == 400
    for body in ([], "text", 3, None):
        with pytest.raises(WebhookError):
            parse("github", {"x-github-event": "push"}, body)
    with pytest.raises(WebhookError):
        parse("github", {"x-github-event": "push"}, {"ref": 3, "after": None})
    with pytest.raises(WebhookError):
        parse("bitbucket", {"x-event-key": "repo:push"}, {"push": {"changes": "no"}})


def test_tags_and_deletions() -> None:
    d = p.gitlab(group="a", project="b", ref="refs/tags/v1.2.0", before=p.ZERO, after=B,
                 files=[], secret=SECRETS.gitlab)
    [push] = events(d)
    assert isinstance(push, Push) and push.ref == "refs/tags/v1.2.0" and push.created
    d = p.bitbucket(workspace="a", repo="b", branch="gone", before=A, after=p.ZERO,
                    hook_uuid=SECRETS.bitbucket_uuid)
    [push] = events(d)
    assert isinstance(push, Push) and push.deleted and push.ref == "refs/heads/gone"
