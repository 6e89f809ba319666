"""The push receiver end to end: a real `gitops-tasks webhook` process, a worker, kubesim, Redis
and a repository served by `git daemon`, whose URL the providers' payloads name. No beat runs:
every refresh here was caused by a webhook (apps a webhook did not touch have no status)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3

from tests.source.gitservers import GitDaemon, Origin
from tests.webhooks import payloads as p

from .stack import Stack, configmap, wait_for

SECRETS = {
    "GITOPS_TASKS_WEBHOOK_GITHUB_SECRET": "gh-s3cret",
    "GITOPS_TASKS_WEBHOOK_GITLAB_SECRET": "gl-token",
    "GITOPS_TASKS_WEBHOOK_BITBUCKET_UUID": "{4f0c2b8e-hook}",
    "GITOPS_TASKS_WEBHOOK_BITBUCKET_SERVER_SECRET": "bbs-s3cret",
    "GITOPS_TASKS_WEBHOOK_GITEA_SECRET": "gitea-s3cret",
    "GITOPS_TASKS_WEBHOOK_GOGS_SECRET": "gogs-s3cret",
    "GITOPS_TASKS_WEBHOOK_AZURE_DEVOPS_USERNAME": "hook",
    "GITOPS_TASKS_WEBHOOK_AZURE_DEVOPS_PASSWORD": "az-pass",
}
_HTTP = urllib3.PoolManager(retries=False, timeout=10)


class Hosted:
    """The repository `acme/deploy` on a git daemon: what a hosted provider serves."""

    def __init__(self, tmp: Path) -> None:
        served = tmp / "hosted"
        served.mkdir()
        self.origin = Origin(served, tmp / "hosted-work", "acme/deploy")
        self.daemon = GitDaemon(served)
        self.url = self.daemon.url("acme/deploy")
        self.host = f"127.0.0.1:{self.daemon.port}"


@pytest.fixture
def hosted(tmp_path: Path) -> Iterator[Hosted]:
    repo = Hosted(tmp_path)
    yield repo
    repo.daemon.stop()


def post(base: str, d: p.Delivery) -> tuple[int, dict[str, Any]]:
    resp = _HTTP.request("POST", base + "/api/webhook", body=d.body, headers=d.headers)
    body = json.loads(resp.data) if resp.data else {}
    return resp.status, body


def app(stack: Stack, hosted: Hosted, name: str, path: str) -> dict[str, Any]:
    obj = stack.app_manifest(name, path, automated={"prune": True})
    obj["spec"]["source"]["repoURL"] = hosted.url
    return obj


def delivery(provider: str, hosted: Hosted, before: str, after: str,
             files: list[str] | None, **extra: Any) -> p.Delivery:
    org, repo, ref = "acme", "deploy", "refs/heads/main"
    host = hosted.host
    if provider == "github":
        return p.github(org=org, repo=repo, ref=ref, before=before, after=after, files=files,
                        host=host, secret=extra.get("secret", "gh-s3cret"),
                        commits=extra.get("commits", 1))
    if provider == "gitlab":
        return p.gitlab(group=org, project=repo, ref=ref, before=before, after=after,
                        files=files, host=host, secret=extra.get("secret", "gl-token"))
    if provider == "bitbucket":
        # Bitbucket Cloud lives on bitbucket.org: the app names that URL too (see below).
        return p.bitbucket(workspace=org, repo=repo, branch="main", before=before,
                           after=after, hook_uuid=extra.get("secret", "{4f0c2b8e-hook}"))
    if provider == "bitbucket-server":
        return p.bitbucket_server(project="ACME", repo=repo, ref=ref, before=before,
                                  after=after, host=host, clone_urls=[hosted.url],
                                  secret=extra.get("secret", "bbs-s3cret"))
    if provider in ("gitea", "gogs"):
        return p.gitea(org=org, repo=repo, ref=ref, before=before, after=after, files=files,
                       host=host, gogs=provider == "gogs",
                       secret=extra.get("secret", f"{provider}-s3cret"))
    return p.azure_devops(org=org, project="ops", repo=repo, ref=ref, before=before,
                          after=after, username="hook", remote_url=hosted.url,
                          password=extra.get("secret", "az-pass"))


def revision(stack: Stack, name: str) -> str:
    return str((stack.status(name).get("sync") or {}).get("revision", ""))


def test_every_provider_push_is_applied_and_forgeries_are_refused(
        stack: Stack, hosted: Hosted) -> None:
    first = hosted.origin.commit({"apps/web/cm.yaml": configmap("web", {"v": "0"})})
    stack.worker()
    _, base = stack.webhook(**SECRETS)
    stack.apply_app(app(stack, hosted, "web", "apps/web"))
    before = first
    for i, provider in enumerate(["github", "gitlab", "bitbucket-server", "gitea", "gogs",
                                  "azure-devops"]):
        after = hosted.origin.commit({"apps/web/cm.yaml": configmap("web", {"v": str(i + 1)})})
        forged = delivery(provider, hosted, before, after, ["apps/web/cm.yaml"],
                          secret="wrong")
        assert post(base, forged)[0] == 401, provider
        unsigned = delivery(provider, hosted, before, after, ["apps/web/cm.yaml"])
        for header in ("X-Hub-Signature-256", "X-Hub-Signature", "X-Gitlab-Token",
                       "X-Gitea-Signature", "X-Gogs-Signature", "Authorization"):
            unsigned.headers.pop(header, None)
        assert post(base, unsigned)[0] == 401, provider
        status, body = post(base, delivery(provider, hosted, before, after,
                                           ["apps/web/cm.yaml"]))
        assert status == 202, (provider, body)
        assert body["apps"] == [f"{stack.control}/web"], (provider, body)
        wait_for(lambda: stack.synced_healthy("web", after), 30,  # noqa: B023
                 what=f"{provider} push applied")
        live = stack.live("/api/v1/namespaces/{ns}/configmaps", "web")
        assert live and live["data"] == {"v": str(i + 1)}, provider
        before = after
    # Pings: 200, and signed like any delivery.
    ping = p.github(org="acme", repo="deploy", ref="", before=before, after=before,
                    files=None, host=hosted.host, secret="gh-s3cret", event="ping")
    assert post(base, ping)[0] == 200
    ping = p.bitbucket_server(project="ACME", repo="deploy", ref="", before=before,
                              after=before, host=hosted.host, secret="bbs-s3cret",
                              event="diagnostics:ping")
    assert post(base, ping)[0] == 200
    bad_ping = p.github(org="acme", repo="deploy", ref="", before=before, after=before,
                        files=None, host=hosted.host, secret="nope", event="ping")
    assert post(base, bad_ping)[0] == 401


def test_bitbucket_cloud_push_is_applied(stack: Stack, hosted: Hosted) -> None:
    """Bitbucket Cloud's payload names bitbucket.org only. The app follows
    https://bitbucket.org/acme/deploy.git, and the worker's git (through its global config's
    `url.insteadOf`, the way a mirror is set up) fetches that from the daemon."""
    gitconfig = stack.tmp / "gitconfig"
    gitconfig.write_text(f'[url "{hosted.url.rsplit("/acme/", 1)[0]}/"]\n'
                         "\tinsteadOf = https://bitbucket.org/\n")
    first = hosted.origin.commit({"apps/web/cm.yaml": configmap("web", {"v": "0"})})
    stack.worker(GIT_CONFIG_GLOBAL=str(gitconfig))
    receiver, base = stack.webhook(**SECRETS, GIT_CONFIG_GLOBAL=str(gitconfig))
    obj = app(stack, hosted, "web", "apps/web")
    obj["spec"]["source"]["repoURL"] = "https://bitbucket.org/acme/deploy.git"
    stack.apply_app(obj)
    second = hosted.origin.commit({"apps/web/cm.yaml": configmap("web", {"v": "1"})})
    forged = delivery("bitbucket", hosted, first, second, None, secret="{other}")
    assert post(base, forged)[0] == 401
    status, body = post(base, delivery("bitbucket", hosted, first, second, None))
    assert status == 202 and body["apps"] == [f"{stack.control}/web"], body
    wait_for(lambda: stack.synced_healthy("web", second), 30, what="bitbucket push applied")
    live = stack.live("/api/v1/namespaces/{ns}/configmaps", "web")
    assert live and live["data"] == {"v": "1"}
    # The changed files came from Git (Bitbucket lists none), not from the fallback.
    assert "could not list the pushed changes" not in receiver.log()
    third = hosted.origin.commit({"apps/other/cm.yaml": configmap("other", {"v": "1"})})
    status, body = post(base, delivery("bitbucket", hosted, second, third, None))
    assert status == 202 and body["apps"] == [], body


def test_a_monorepo_push_refreshes_only_the_apps_whose_paths_changed(
        stack: Stack, hosted: Hosted) -> None:
    files = {f"apps/{n}/cm.yaml": configmap(n, {"v": "0"}) for n in ("a", "b", "c")}
    first = hosted.origin.commit(files)
    stack.worker()
    _, base = stack.webhook(**SECRETS)
    for n in ("a", "b", "c"):
        stack.apply_app(app(stack, hosted, n, f"apps/{n}"))
    second = hosted.origin.commit({"apps/b/cm.yaml": configmap("b", {"v": "1"})})
    status, body = post(base, delivery("github", hosted, first, second, ["apps/b/cm.yaml"]))
    assert status == 202 and body["apps"] == [f"{stack.control}/b"], body
    wait_for(lambda: stack.synced_healthy("b", second), 30, what="b synced")
    # A push whose payload lists 20 commits (GitHub's cap: maybe more were pushed): the
    # receiver asks Git what changed between before and after, and still picks only c.
    third = hosted.origin.commit({"apps/c/cm.yaml": configmap("c", {"v": "1"})})
    truncated = delivery("github", hosted, second, third, ["apps/a/cm.yaml"], commits=20)
    status, body = post(base, truncated)
    assert status == 202 and body["apps"] == [f"{stack.control}/c"], body
    wait_for(lambda: stack.synced_healthy("c", third), 30, what="c synced")
    # Bitbucket Server lists no files at all: Git again.
    fourth = hosted.origin.commit({"apps/a/cm.yaml": configmap("a", {"v": "1"})})
    status, body = post(base, delivery("bitbucket-server", hosted, third, fourth, None))
    assert status == 202 and body["apps"] == [f"{stack.control}/a"], body
    wait_for(lambda: stack.synced_healthy("a", fourth), 30, what="a synced")
    # b was refreshed by its push only: it never saw the later commits.
    assert revision(stack, "b") == second
    assert revision(stack, "c") == third


def test_bad_requests_never_get_a_server_error(stack: Stack, hosted: Hosted) -> None:
    _, base = stack.webhook(**SECRETS, GITOPS_TASKS_WEBHOOK_MAX_PAYLOAD_BYTES="4096")
    sig = delivery("github", hosted, "a" * 40, "b" * 40, ["x"])
    # Too large: refused from Content-Length, and when streamed without one.
    big = p.github(org="acme", repo="deploy", ref="refs/heads/main", before="a" * 40,
                   after="b" * 40, files=["x" * 5000], host=hosted.host, secret="gh-s3cret")
    assert post(base, big)[0] == 413
    resp = _HTTP.request("POST", base + "/api/webhook", headers=big.headers,
                         body=iter([big.body[i:i + 1000] for i in range(0, len(big.body), 1000)]),
                         chunked=True)
    assert resp.status == 413
    # Not JSON, though correctly signed.
    import hashlib
    import hmac

    junk = b"{not json"
    headers = dict(sig.headers, **{"X-Hub-Signature-256": "sha256=" + hmac.new(
        b"gh-s3cret", junk, hashlib.sha256).hexdigest()})
    assert _HTTP.request("POST", base + "/api/webhook", body=junk, headers=headers).status \
        == 400
    # No provider's headers at all.
    assert _HTTP.request("POST", base + "/api/webhook", body=b"{}").status == 400
    # An event we do not act on.
    other = dict(sig.headers, **{"X-GitHub-Event": "issues"})
    assert _HTTP.request("POST", base + "/api/webhook", body=sig.body, headers=other).status \
        == 202
    # The same delivery twice: acknowledged, processed once.
    first = post(base, sig)
    again = post(base, sig)
    assert first[0] == again[0] == 202
    assert again[1].get("duplicate") is True
    # Remembered for the delivery TTL once processed (a minute only while it is processed).
    import redis

    client = redis.Redis.from_url(stack.redis_url)
    [key] = client.keys("gitops:webhook-delivery:github:*")
    assert client.ttl(key) > 3600
    assert _HTTP.request("GET", base + "/healthz").status == 200
    assert _HTTP.request("GET", base + "/readyz").status == 200
    metrics = _HTTP.request("GET", base + "/metrics").data.decode()
    assert 'gitops_tasks_webhook_requests_total{provider="github",result="too_large"} 2.0' \
        in metrics
    assert 'result="duplicate"} 1.0' in metrics


def test_the_receiver_refuses_to_start_without_any_secret(stack: Stack) -> None:
    from .stack import CLI, Proc

    proc = Proc("webhook", [CLI, "webhook", "--host", "127.0.0.1", "--port", "0"],
                stack.env, stack.tmp / "webhook.log")
    stack.procs.append(proc)
    wait_for(lambda: not proc.alive, 30, what="receiver exits")
    assert proc.popen.returncode == 2
    assert "--insecure" in proc.log()


def test_a_storm_of_webhooks_with_a_worker_killed_applies_the_last_commit_once_at_a_time(
        stack: Stack, hosted: Hosted) -> None:
    """200 pushes for one app within about a second, each a real commit, sent by 4 threads
    while two workers serve the app; one worker is SIGKILLed (its whole process group) half
    way. The last commit is live; redis-server's own command stream shows at most one refresh
    and one sync of the app queued at any moment; kubesim's request log shows no two applies
    to the app's object overlapping in time."""
    import itertools
    import threading
    import time

    from .broker import BrokerRecorder, check_queue
    from .stack import applies

    first = hosted.origin.commit({"apps/web/cm.yaml": configmap("web", {"v": "0"})})
    # Every commit exists before the storm (pushed as one), so each delivery names a real one.
    commits = [first]
    for i in range(1, 201):
        commits.append(hosted.origin.commit({"apps/web/cm.yaml": configmap("web", {"v": str(i)})},
                                            f"c{i}", push=False))
    hosted.origin.git("push", "--quiet", "origin", "main")
    stack.sim.add_fault(path=f"/namespaces/{stack.dest}/configmaps/", method="PATCH",
                        latency=0.03)
    try:
        w1 = stack.worker("w1")
        stack.worker("w2")
        stack.beat()  # the resume sweep re-queues what the killed worker held
        _, base = stack.webhook(**SECRETS)
        recorder = BrokerRecorder(stack.redis_url, stack.control, "web").start()
        since = time.time()
        stack.apply_app(app(stack, hosted, "web", "apps/web"))
        pairs = list(itertools.pairwise(commits))
        statuses: list[int] = []
        lock = threading.Lock()

        def sender(part: list[tuple[str, str]]) -> None:
            pool = urllib3.PoolManager(retries=False, timeout=10)
            for before, after in part:
                d = delivery("github", hosted, before, after, ["apps/web/cm.yaml"])
                resp = pool.request("POST", base + "/api/webhook", body=d.body,
                                    headers=d.headers)
                with lock:
                    statuses.append(resp.status)

        started = time.monotonic()
        halves = [pairs[:100], pairs[100:]]
        for half in halves:
            threads = [threading.Thread(target=sender, args=(half[i::4],)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            if half is halves[0]:
                w1.kill()
        elapsed = time.monotonic() - started
        assert statuses == [202] * 200 or sorted(set(statuses)) == [202], statuses
        wait_for(lambda: stack.synced_healthy("web", commits[-1]), 60,
                 what="the last commit live")
        live = stack.live("/api/v1/namespaces/{ns}/configmaps", "web")
        assert live and live["data"] == {"v": "200"}
        recorder.finish(30)
    finally:
        stack.sim.clear_faults()
    report = check_queue(recorder)
    assert report.sends["refresh"] >= 2, report
    assert report.max_queued["refresh"] <= 1 and report.max_queued["sync"] <= 1, report
    logged = [x for x in applies(stack.writes(since=since))
              if f"/namespaces/{stack.dest}/configmaps/web" in x["path"]]
    assert logged
    for earlier, later in itertools.pairwise(logged):
        assert earlier["end"] <= later["start"], f"overlapping applies: {earlier} {later}"
    # Coalesced: far fewer applies than pushes.
    assert len(logged) < 100, len(logged)
    assert elapsed < 10, elapsed


def test_a_push_to_a_kustomize_base_outside_the_path_refreshes_the_overlay(
        stack: Stack, hosted: Hosted) -> None:
    """The path filter includes what the app's last render read: a base outside its path."""
    first = hosted.origin.commit({
        "apps/web/kustomization.yaml": "resources: [../../base/web]\n",
        "base/web/kustomization.yaml": "resources: [cm.yaml]\n",
        "base/web/cm.yaml": configmap("web", {"v": "0"}),
        "apps/api/cm.yaml": configmap("api", {"v": "0"}),
    })
    stack.worker()
    _, base = stack.webhook(**SECRETS)
    stack.apply_app(app(stack, hosted, "web", "apps/web"))
    stack.apply_app(app(stack, hosted, "api", "apps/api"))
    # The first push reaches both (no render recorded yet: each app's own path decides).
    second = hosted.origin.commit({"apps/web/x.txt": "1", "apps/api/x.txt": "1"})
    status, body = post(base, delivery("github", hosted, first, second,
                                       ["apps/web/x.txt", "apps/api/x.txt"]))
    assert status == 202 and len(body["apps"]) == 2, body
    wait_for(lambda: stack.synced_healthy("web", second) and stack.synced_healthy("api", second),
             30, what="both synced")
    third = hosted.origin.commit({"base/web/cm.yaml": configmap("web", {"v": "1"})})
    status, body = post(base, delivery("github", hosted, second, third, ["base/web/cm.yaml"]))
    assert status == 202 and body["apps"] == [f"{stack.control}/web"], body
    wait_for(lambda: stack.synced_healthy("web", third), 30, what="web synced the base change")
    live = stack.live("/api/v1/namespaces/{ns}/configmaps", "web")
    assert live and live["data"] == {"v": "1"}
    assert revision(stack, "api") == second


def test_secrets_from_the_webhook_secret_are_read_and_rotated(stack: Stack,
                                                               hosted: Hosted) -> None:
    """No variable: the receiver starts on the Secret gitops-tasks-webhook alone, and a
    rotated value takes over within the refresh interval, without a restart."""
    import base64
    import time

    def secret(value: str) -> None:
        stack.apply_app({"apiVersion": "v1", "kind": "Secret",
                         "metadata": {"name": "gitops-tasks-webhook",
                                      "namespace": stack.control},
                         "data": {"github.secret": base64.b64encode(value.encode()).decode()}})

    secret("from-the-secret")
    _, base = stack.webhook(GITOPS_TASKS_WEBHOOK_SECRET_REFRESH="0.5")
    push = delivery("github", hosted, "a" * 40, "b" * 40, ["x"], secret="from-the-secret")
    assert post(base, push)[0] == 202
    secret("rotated")
    time.sleep(1.0)
    stale = delivery("github", hosted, "a" * 40, "b" * 40, ["x"], secret="from-the-secret")
    assert post(base, stale)[0] == 401
    fresh = delivery("github", hosted, "a" * 40, "b" * 40, ["x"], secret="rotated")
    assert post(base, fresh)[0] == 202
    # Other providers have no secret there: refused, not accepted unsigned.
    gitlab = delivery("gitlab", hosted, "a" * 40, "b" * 40, ["x"], secret="")
    assert post(base, gitlab)[0] == 401


def test_redis_down_answers_503_and_the_redelivery_is_processed(
        sim: Any, hosted: Hosted, tmp_path: Path) -> None:
    """With its Redis killed the receiver says 503 (never 500, never a lost push: the
    provider redelivers); once Redis is back, empty, the same delivery is processed and the
    app synced."""
    from tests.redisserver import RedisServer

    server = RedisServer(tmp_path / "redis").start()
    stack = Stack(sim, server.url, tmp_path / "stack")
    try:
        first = hosted.origin.commit({"apps/web/cm.yaml": configmap("web", {"v": "0"})})
        receiver, base = stack.webhook(**SECRETS)
        stack.apply_app(app(stack, hosted, "web", "apps/web"))
        second = hosted.origin.commit({"apps/web/cm.yaml": configmap("web", {"v": "1"})})
        push = delivery("github", hosted, first, second, ["apps/web/cm.yaml"])
        server.kill()
        status, body = post(base, push)
        assert status == 503, body
        assert receiver.alive
        server.start()  # same port, empty
        stack.worker()
        status, body = post(base, push)  # the provider's redelivery: same id
        assert status == 202 and body["apps"] == [f"{stack.control}/web"], body
        wait_for(lambda: stack.synced_healthy("web", second), 30, what="synced after Redis")
        assert post(base, push)[1].get("duplicate") is True
    finally:
        stack.close()
        server.stop()


def test_insecure_accepts_unsigned_pushes_of_providers_without_a_secret(
        stack: Stack, hosted: Hosted) -> None:
    _, base = stack.webhook("webhook", "--insecure",
                            GITOPS_TASKS_WEBHOOK_GITLAB_SECRET="gl-token")
    unsigned = delivery("github", hosted, "a" * 40, "b" * 40, ["x"])
    unsigned.headers.pop("X-Hub-Signature-256")
    assert post(base, unsigned)[0] == 202
    # A provider that has a secret still needs it.
    forged = delivery("gitlab", hosted, "a" * 40, "b" * 40, ["x"], secret="wrong")
    assert post(base, forged)[0] == 401
