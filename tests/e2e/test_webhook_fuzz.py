"""A fuzz run against a real receiver process: 10,000 random and mutated deliveries of every
provider (hypothesis). None gets a 5xx, the receiver never dies, and every request whose
signature does not verify (checked here independently of the product's code) is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import string
from pathlib import Path
from typing import Any

import pytest
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.webhooks import payloads as p

from .stack import Proc, Stack
from .test_webhooks import SECRETS

EXAMPLES = 10_000
HEADER_TEXT = st.text(alphabet=string.ascii_letters + string.digits + " -_=+/.:{}", max_size=80)
SHA = st.one_of(st.text(alphabet="0123456789abcdef", min_size=40, max_size=40),
                st.just(p.ZERO), st.text(max_size=45))
FILES = st.one_of(st.none(), st.lists(st.text(max_size=30), max_size=4))
REF = st.one_of(st.sampled_from(["refs/heads/main", "refs/tags/v1", "refs/heads/dev", ""]),
                st.text(max_size=30))

_SIGNED = {"github": ("x-hub-signature-256", "sha256=", "gh-s3cret"),
           "bitbucket-server": ("x-hub-signature", "sha256=", "bbs-s3cret"),
           "gitea": ("x-gitea-signature", "", "gitea-s3cret"),
           "gogs": ("x-gogs-signature", "", "gogs-s3cret")}


def base_delivery(provider: str, ref: str, before: str, after: str,
                  files: list[str] | None) -> p.Delivery:
    if provider == "github":
        return p.github(org="o", repo="r", ref=ref, before=before, after=after, files=files,
                        secret="gh-s3cret")
    if provider == "gitlab":
        return p.gitlab(group="o", project="r", ref=ref, before=before, after=after,
                        files=files, secret="gl-token")
    if provider == "bitbucket":
        return p.bitbucket(workspace="o", repo="r", branch=ref, before=before, after=after,
                           hook_uuid="{4f0c2b8e-hook}")
    if provider == "bitbucket-server":
        return p.bitbucket_server(project="O", repo="r", ref=ref, before=before, after=after,
                                  secret="bbs-s3cret")
    if provider in ("gitea", "gogs"):
        return p.gitea(org="o", repo="r", ref=ref, before=before, after=after, files=files,
                       secret=f"{provider}-s3cret", gogs=provider == "gogs")
    return p.azure_devops(org="o", project="p", repo="r", ref=ref, before=before, after=after,
                          username="hook", password="az-pass")


def authentic(headers: dict[str, str], body: bytes) -> bool:
    """Whether the request verifies for the provider its headers name, as the providers
    define it: the test's own reading, not the receiver's code."""
    h = {k.lower(): v for k, v in headers.items()}
    if "x-gitea-event" in h:
        provider = "gitea"
    elif "x-gogs-event" in h:
        provider = "gogs"
    elif "x-github-event" in h:
        provider = "github"
    elif "x-gitlab-event" in h:
        return h.get("x-gitlab-token", "").strip() == "gl-token"
    elif "x-vss-activityid" in h:
        expected = "Basic " + base64.b64encode(b"hook:az-pass").decode()
        return h.get("authorization", "").strip() == expected
    elif "x-hook-uuid" in h:
        return h["x-hook-uuid"].strip() == "{4f0c2b8e-hook}"
    elif "x-event-key" in h:
        provider = "bitbucket-server"
    else:
        return False
    header, prefix, secret = _SIGNED[provider]
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return h.get(header, "").strip().lower() == prefix + digest


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[dict[str, str], bytes]:
    provider = draw(st.sampled_from(["github", "gitlab", "bitbucket", "bitbucket-server",
                                     "gitea", "gogs", "azure-devops"]))
    d = base_delivery(provider, draw(REF), draw(SHA), draw(SHA), draw(FILES))
    headers, body = dict(d.headers), d.body
    for _ in range(draw(st.integers(0, 3))):
        mutation = draw(st.sampled_from(["flip", "truncate", "replace", "drop", "header",
                                         "add", "resign", "json"]))
        if mutation == "flip" and body:
            i = draw(st.integers(0, len(body) - 1))
            body = body[:i] + bytes([body[i] ^ draw(st.integers(1, 255))]) + body[i + 1:]
        elif mutation == "truncate":
            body = body[:draw(st.integers(0, len(body)))]
        elif mutation == "replace":
            body = draw(st.binary(max_size=300))
        elif mutation == "drop" and headers:
            headers.pop(draw(st.sampled_from(sorted(headers))))
        elif mutation == "header" and headers:
            headers[draw(st.sampled_from(sorted(headers)))] = draw(HEADER_TEXT)
        elif mutation == "add":
            headers[draw(st.sampled_from(["X-GitHub-Event", "X-Gitea-Event", "X-Gitlab-Event",
                                          "X-Event-Key", "X-Hook-UUID", "X-Vss-ActivityId",
                                          "Content-Length", "X-Hub-Signature-256",
                                          "Authorization"]))] = draw(HEADER_TEXT)
        elif mutation == "resign":
            # A body changed and signed again with the right secret: genuine, and still
            # must not crash the receiver whatever it holds.
            body = draw(st.binary(max_size=200)) if draw(st.booleans()) else body
            for provider_, (header, prefix, secret) in _SIGNED.items():
                if provider_ == provider:
                    headers[header] = prefix + hmac.new(secret.encode(), body,
                                                        hashlib.sha256).hexdigest()
        elif mutation == "json":
            body = draw(st.sampled_from([b"[]", b"null", b"3", b'"x"', b"{}",
                                         b'{"ref": 1, "after": []}', b'{"push": null}',
                                         b'{"resource": {"refUpdates": [1, null]}}',
                                         b'{"changes": [{"ref": null}]}']))
    return headers, body


@pytest.fixture
def receiver(stack: Stack) -> str:
    _, base = stack.webhook(**SECRETS, GITOPS_TASKS_WEBHOOK_MAX_PAYLOAD_BYTES="65536",
                            GITOPS_TASKS_LOG_LEVEL="WARNING")
    return base


@pytest.mark.slow
def test_ten_thousand_random_and_mutated_deliveries(stack: Stack, receiver: str,
                                                    tmp_path: Path) -> None:
    pool = urllib3.PoolManager(retries=False, timeout=10)
    seen: dict[str, int] = {}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(deliveries())
    def run(delivery: tuple[dict[str, str], bytes]) -> None:
        headers, body = delivery
        headers.pop("Content-Length", None)  # urllib3 sets the true one
        resp = pool.request("POST", receiver + "/api/webhook", body=body, headers=headers)
        seen[str(resp.status)] = seen.get(str(resp.status), 0) + 1
        assert resp.status < 500, (resp.status, resp.data[:300], headers)
        if not authentic(headers, body):
            assert resp.status in (400, 401, 413), (resp.status, resp.data[:300], headers)

    run()
    total = sum(seen.values())
    assert total >= EXAMPLES, seen
    # The run reached past the signature check too, not only refusals.
    assert seen.get("202", 0) + seen.get("200", 0) > 100, seen
    assert seen.get("401", 0) > 1000, seen
    webhook: Any = next(p for p in stack.procs if p.name == "webhook")
    assert isinstance(webhook, Proc) and webhook.alive, webhook.log()[-3000:]
    assert pool.request("GET", receiver + "/healthz").status == 200
