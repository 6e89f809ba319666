"""Operations end to end: concurrent sync requests under two workers, waves and hooks, cascade
deletion (app of apps included), invalid specs and malformed manifests.

Every claim is read from kubesim's request log (method, path, query, user agent, start, end)
or from Redis itself (the server's own command stream and snapshots of the broker's keys),
never from the product's log lines or bookkeeping.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import threading
import time
import uuid
from typing import Any

import yaml

from tests.kubesim.http import call

from .broker import BrokerRecorder, check_queue
from .stack import (
    API,
    CM,
    DEPLOY,
    JOBS,
    Stack,
    applies,
    conditions,
    configmap,
    deployment,
    job,
    object_name,
    remove_from_git,
    wait_for,
)

READY_DELAY = 0.3  # kubesim's --ready-delay in tests/e2e/stack.py


# ------------------------------------------------------------------------ 1. concurrent syncs


def _patch_app(stack: Stack, name: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = call(stack.sim.url, "PATCH", f"{API}/namespaces/{stack.control}/applications/"
                 f"{name}", body, content_type="application/merge-patch+json")
    assert reply.status == 200, reply.body
    return dict(reply.body)


def test_fifty_sync_requests_two_workers_one_apply_at_a_time(stack: Stack) -> None:
    """50 sync requests (from 5 threads, mixed with `gitops-tasks.io/refresh=normal`
    annotations and 3 commits) for one app served by two workers.

    - Applies: no two applies (PATCH without dryRun) to the app's objects overlap in time
      (kubesim holds each one 30 ms, so unserialised writers would overlap), and the applies
      come in whole waves (cm-a, cm-b, cm-c) by one worker: two workers' steps never interleave.
    - Queue: "queued" means a message of the app's `gitops.refresh` or `gitops.sync` that has
      been sent (LPUSH onto the `refresh`/`sync` list) and whose task has not started (its
      `running()` prologue has not released the queue marker yet): waiting in the list, or
      reserved by a worker in `unacked` (prefetched, or held until its countdown). A task that
      started is running or finishing, no longer queued, even though acks_late keeps its
      message in `unacked` until it returns. At every moment of redis-server's own command order
      at most one refresh and one sync are queued; snapshots of the lists, `unacked` and the
      markers every 20 ms agree, and the marker names the queued one. The race is real: some
      acquire attempts of the app lock (SET NX) came while the other worker held it.
    - Nothing is lost: the last request written (highest resourceVersion) is the operation that
      ran last; it Succeeded at the newest commit, and the app is Synced there.
    """
    objects = ("cm-a", "cm-b", "cm-c")
    first = stack.origin.commit({f"burst/{n}.yaml": configmap(n, {"v": "0"}) for n in objects})
    stack.sim.add_fault(path=f"/namespaces/{stack.dest}/configmaps/", method="PATCH",
                        latency=0.03)
    recorder: BrokerRecorder | None = None
    try:
        stack.worker("w1")
        stack.worker("w2")
        stack.beat()
        stack.apply_app(stack.app_manifest("burst", "burst"))
        wait_for(lambda: (stack.status("burst").get("sync") or {}).get("revision") == first, 20,
                 what="the first refresh")
        recorder = BrokerRecorder(stack.redis_url, stack.control, "burst").start()
        since = time.time()
        written: list[tuple[int, str]] = []  # (resourceVersion, operation id)
        commits: list[str] = []
        committed = threading.Event()
        lock = threading.Lock()
        errors: list[BaseException] = []

        def requester(seed: int) -> None:
            rng = random.Random(seed)
            try:
                for i in range(10):
                    if i == 9:
                        committed.wait(30)  # the last requests follow the last commit
                    op_id = uuid.uuid4().hex[:12]
                    obj = _patch_app(stack, "burst", {"operation": {
                        "id": op_id, "sync": {"revision": "", "prune": False},
                        "initiatedBy": {"username": f"thread-{seed}"}}})
                    with lock:
                        written.append((int(obj["metadata"]["resourceVersion"]), op_id))
                    if i % 2:
                        _patch_app(stack, "burst", {"metadata": {"annotations": {
                            "gitops-tasks.io/refresh": "normal"}}})
                    time.sleep(rng.uniform(0.05, 0.4))
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=requester, args=(s,)) for s in range(5)]
        for t in threads:
            t.start()
        for n in range(3):
            time.sleep(0.7)
            commits.append(stack.origin.commit(
                {"burst/cm-a.yaml": configmap("cm-a", {"v": str(n + 1)})}, f"commit {n + 1}"))
        committed.set()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert len(written) == 50
        last_op = max(written)[1]

        def done() -> bool:
            obj = stack.app("burst") or {}
            state = (obj.get("status") or {}).get("operationState") or {}
            return ("operation" not in obj and state.get("operation", {}).get("id") == last_op
                    and state.get("phase") == "Succeeded"
                    and stack.synced_healthy("burst", commits[-1]))
        wait_for(done, 60, what="the last request served, Synced at the newest commit")
        # Quiet: nothing queued or running for the app any more.
        recorder.finish(20)
    finally:
        stack.sim.clear_faults()
        if recorder is not None and not recorder.stopped:
            with contextlib.suppress(Exception):
                recorder.stop()
    assert recorder is not None

    status = stack.status("burst")
    assert status["operationState"]["syncResult"]["revision"] == commits[-1]
    assert status["history"][-1]["revision"] == commits[-1]
    assert (stack.live(CM, "cm-a") or {}).get("data") == {"v": "3"}

    # The request log: applies to the app's objects, serial, in whole waves per worker.
    logged = [r for r in applies(stack.writes(since=since))
              if f"/namespaces/{stack.dest}/configmaps/" in r["path"]]
    assert logged, "no applies at all"
    assert {object_name(r) for r in logged} == set(objects)
    for earlier, later in itertools.pairwise(logged):
        assert earlier["end"] <= later["start"], \
            f"overlapping applies: {earlier['user_agent']} {earlier['path']} " \
            f"[{earlier['start']:.3f}, {earlier['end']:.3f}] and {later['user_agent']} " \
            f"{later['path']} [{later['start']:.3f}, {later['end']:.3f}]"
    runs: list[tuple[str, list[str]]] = []
    for rec in logged:
        if runs and runs[-1][0] == rec["user_agent"]:
            runs[-1][1].append(object_name(rec))
        else:
            runs.append((rec["user_agent"], [object_name(rec)]))
    for agent, names in runs:
        assert len(names) % len(objects) == 0 and \
            names == list(objects) * (len(names) // len(objects)), \
            f"{agent} applied a partial or interleaved wave: {names}"
    agents = {agent for agent, _ in runs}
    assert len(agents) == 2, f"both workers should have run sync steps: {agents}"
    assert all("worker w1@" in a or "worker w2@" in a for a in agents), agents

    report = check_queue(recorder)
    assert report.snapshots > 100 and report.busy_snapshots > 20, report
    assert report.sends["sync"] >= 5 and report.sends["refresh"] >= 5, report
    # The workers did race for the app: some sync steps found the lock taken.
    assert report.lock_refusals >= 1, report


# ------------------------------------------------------------------------ 2. waves and hooks


def _wave(n: int) -> dict[str, str]:
    return {"gitops-tasks.io/sync-wave": str(n)}


def _cm(name: str, annotations: dict[str, str]) -> str:
    doc = yaml.safe_load(configmap(name))
    doc["metadata"]["annotations"] = annotations
    return yaml.safe_dump(doc)


def _poll_available(stack: Stack, name: str, stop: threading.Event,
                    out: list[tuple[float, float, bool]]) -> None:
    while not stop.is_set():
        start = time.time()
        obj = stack.live(DEPLOY, name) or {}
        status = obj.get("status") or {}
        available = bool(obj) and (status.get("observedGeneration", 0)
                                   >= obj["metadata"].get("generation", 1)) and \
            status.get("availableReplicas", 0) >= 1 and \
            status.get("updatedReplicas", 0) >= obj["spec"].get("replicas", 1)
        out.append((start, time.time(), available))
        stop.wait(0.01)


def _first(records: list[dict[str, Any]], method: str, path_part: str) -> dict[str, Any]:
    found = [r for r in records if r["method"] == method and path_part in r["path"]]
    assert found, f"no {method} {path_part} in the log"
    return min(found, key=lambda r: r["start"])


def test_waves_wait_for_health_posthook_after_healthy_and_a_degraded_wave_fails(
        stack: Stack) -> None:
    """Two apps of one repo, each with its own destination namespace (a Job is created by a
    POST to the namespace's `jobs`, so the namespace tells whose Job it is), synced by the
    automated policy.

    good: wave 0 Deployment `web`, wave 1 ConfigMap `after`, PostSync Job `smoke`. The wave-1
    apply starts at least kubesim's ready delay after the Deployment's only apply ended (the
    Deployment is available only then), and no poll of the Deployment that began after the
    wave-1 apply started saw it unavailable; the PostSync Job is created (POST) only after
    both, when everything is Healthy, and it is the only Job created.

    bad: wave 0 Deployment `web` with a `kubesim-fail` image (ProgressDeadlineExceeded one
    ready delay after it is written), wave 1 ConfigMap `never`, PostSync Job `post`, SyncFail
    Job `cleanup`. The operation fails naming the Deployment; `never` is never written (nothing
    at all but the Deployment and one Job is); one Job is POSTed, after the Deployment
    degraded, and it is `cleanup`; `post` never exists.
    """
    bad_ns = f"{stack.dest}-bad"
    stack.kubectl("create", "namespace", bad_ns)
    stack.origin.commit({
        "good/deploy.yaml": deployment("web", annotations=_wave(0)),
        "good/cm.yaml": _cm("after", _wave(1)),
        "good/smoke.yaml": job("smoke", "PostSync"),
        "bad/deploy.yaml": deployment("web", image="nginx:kubesim-fail", annotations=_wave(0)),
        "bad/cm.yaml": _cm("never", _wave(1)),
        "bad/post.yaml": job("post", "PostSync"),
        "bad/cleanup.yaml": job("cleanup", "SyncFail"),
    })
    stack.worker("w1", concurrency=2)
    stack.beat()
    polls: list[tuple[float, float, bool]] = []
    stop = threading.Event()
    poller = threading.Thread(target=_poll_available, args=(stack, "web", stop, polls),
                              daemon=True)
    poller.start()
    since = time.time()
    try:
        stack.apply_app(stack.app_manifest("good", "good", automated={"prune": False}))
        stack.apply_app(stack.app_manifest("bad", "bad", automated={"prune": False},
                                           namespace=bad_ns))
        wait_for(lambda: (stack.status("good").get("operationState") or {}).get("phase")
                 == "Succeeded", 30, what="good's operation Succeeded")
        wait_for(lambda: (stack.status("bad").get("operationState") or {}).get("phase")
                 == "Failed", 30, what="bad's operation Failed")
        wait_for(lambda: stack.synced_healthy("good"), 20, what="good Synced and Healthy")
        time.sleep(1.0)  # time for anything that should not happen
    finally:
        stop.set()
        poller.join(5)

    # good: the wave gate and the PostSync hook.
    good = stack.writes(since=since)
    web = [r for r in good if "/deployments/web" in r["path"]]
    assert len(web) == 1 and web[0]["method"] == "PATCH", \
        f"the Deployment was written {len(web)} times: its ready clock restarted"
    after = _first(good, "PATCH", "/configmaps/after")
    gap = after["start"] - web[0]["end"]
    assert gap >= READY_DELAY, f"wave 1 started {gap:.3f}s after wave 0's apply ended"
    assert not [p for p in polls if p[0] >= after["start"] and not p[2]], \
        "wave 1 was applied while the Deployment was unavailable"
    assert any(p[2] for p in polls), "the poller never saw the Deployment available"
    posts = [r for r in good if r["method"] == "POST" and r["path"].endswith("/jobs")]
    assert len(posts) == 1 and posts[0]["status"] == 201, posts
    assert posts[0]["start"] >= after["end"], "PostSync before the last wave was applied"
    assert posts[0]["start"] >= web[0]["end"] + READY_DELAY, "PostSync before Healthy"
    assert not [p for p in polls if p[0] >= posts[0]["start"] and not p[2]], \
        "the PostSync Job was created while the Deployment was unavailable"
    assert stack.live(JOBS, "smoke") is not None, "PostSync Job missing"

    # bad: fails at the degraded wave; later waves and PostSync never written; SyncFail runs.
    bad = stack.writes(since=since, namespace=bad_ns)
    bad_web = [r for r in bad if "/deployments/web" in r["path"]]
    assert len(bad_web) == 1 and bad_web[0]["method"] == "PATCH", bad_web
    assert not [r for r in bad if "never" in r["path"]], "a later wave was applied"
    bad_posts = [r for r in bad if r["method"] == "POST" and r["path"].endswith("/jobs")]
    assert len(bad) == 2 and len(bad_posts) == 1, \
        f"only the Deployment and the SyncFail Job: {[(r['method'], r['path']) for r in bad]}"
    assert bad_posts[0]["start"] >= bad_web[0]["end"] + READY_DELAY, \
        "the SyncFail Job was created before the Deployment degraded"
    state = stack.status("bad")["operationState"]
    assert state["phase"] == "Failed"
    assert "Deployment" in state["message"] and "web" in state["message"], state["message"]
    assert "progress deadline" in state["message"], state["message"]
    cleanup = stack.get(JOBS.format(ns=bad_ns) + "/cleanup")
    assert cleanup is not None, "the SyncFail Job"
    assert cleanup["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "SyncFail"
    assert stack.get(JOBS.format(ns=bad_ns) + "/post") is None, "PostSync ran for a failed sync"
    assert stack.get(CM.format(ns=bad_ns) + "/never") is None


# ------------------------------------------------------------------------ 3. cascade deletion


def _gone_at(stack: Stack, name: str, timeout: float) -> float:
    wait_for(lambda: stack.app(name) is None, timeout, interval=0.05, what=f"{name} gone")
    return time.time()


def test_cascade_deletion_with_and_without_the_finalizer(stack: Stack) -> None:
    """`kubectl delete application` of an app with `resources-finalizer.gitops-tasks.io`: its
    resources get DELETE requests (by a worker), are gone, and only then the Application goes.
    The same for an app without the finalizer: the Application goes, its resources stay and no
    DELETE is ever sent for them."""
    stack.origin.commit({
        "gone/cm.yaml": configmap("gone-cm"),
        "gone/deploy.yaml": deployment("gone-web"),
        "keep/cm.yaml": configmap("keep-cm"),
    })
    stack.worker("w1", concurrency=2)
    stack.beat()
    stack.apply_app(stack.app_manifest("gone", "gone", automated={"prune": True},
                                       finalizer=True))
    stack.apply_app(stack.app_manifest("keep", "keep", automated={"prune": True}))
    wait_for(lambda: stack.synced_healthy("gone") and stack.synced_healthy("keep"), 30,
             what="both apps Synced and Healthy")
    since = time.time()
    for name in ("gone", "keep"):
        stack.kubectl("delete", "application", name, "-n", stack.control, "--wait=false")
    gone_at = _gone_at(stack, "gone", 20)
    wait_for(lambda: stack.app("keep") is None, 10, what="keep deleted")
    time.sleep(2.5)  # a sweep and a resume pass: still nothing may touch keep-cm
    deletes = [r for r in stack.writes(since=since) if r["method"] == "DELETE"]
    by_object = {object_name(r): r for r in deletes}
    assert {"gone-cm", "gone-web"} <= set(by_object), deletes
    assert all("worker w1@" in by_object[n]["user_agent"] for n in ("gone-cm", "gone-web"))
    assert stack.live(CM, "gone-cm") is None and stack.live(DEPLOY, "gone-web") is None
    assert gone_at > max(by_object[n]["end"] for n in ("gone-cm", "gone-web"))
    assert "keep-cm" not in by_object
    assert stack.live(CM, "keep-cm") is not None, "resources of an app without the finalizer"


def test_app_of_apps_prunes_a_child_and_the_child_cascades(stack: Stack) -> None:
    """A parent app (automated prune) whose path holds a child Application manifest (with the
    resources finalizer, in the control namespace). Removing the child's file from Git: the
    parent deletes the child Application (DELETE in the control namespace), the child's
    resources are deleted (DELETE in the destination namespace), the child disappears and the
    parent is Synced at the new commit."""
    child = stack.app_manifest("child", "child", automated={"prune": True}, finalizer=True)
    stack.origin.commit({
        "apps/child.yaml": yaml.safe_dump(child),
        "apps/keep.yaml": configmap("parent-cm"),
        "child/cm.yaml": configmap("child-cm"),
        "child/deploy.yaml": deployment("child-web"),
    })
    stack.worker("w1", concurrency=2)
    stack.beat()
    stack.apply_app(stack.app_manifest("parent", "apps", namespace=stack.control,
                                       automated={"prune": True}))
    wait_for(lambda: stack.synced_healthy("child"), 40, what="the child Synced and Healthy")
    wait_for(lambda: stack.synced_healthy("parent"), 20, what="the parent Synced and Healthy")
    assert stack.live(CM, "child-cm") is not None
    since = time.time()
    removed = remove_from_git(stack, "apps/child.yaml", message="drop the child")
    _gone_at(stack, "child", 30)
    gone_at = time.time()
    control = stack.writes(since=since, namespace=stack.control)
    app_deletes = [r for r in control if r["method"] == "DELETE"
                   and r["path"].endswith("/applications/child")]
    assert app_deletes, "the parent never deleted the child Application"
    dest = [r for r in stack.writes(since=since) if r["method"] == "DELETE"]
    assert {"child-cm", "child-web"} <= {object_name(r) for r in dest}, dest
    assert min(r["start"] for r in dest) >= min(r["start"] for r in app_deletes)
    assert gone_at > max(r["end"] for r in dest)
    assert stack.live(CM, "child-cm") is None and stack.live(DEPLOY, "child-web") is None
    assert stack.get(CM.format(ns=stack.control) + "/parent-cm") is not None
    wait_for(lambda: stack.synced_healthy("parent", removed), 20,
             what="the parent Synced at the new commit")


# ------------------------------------------------------------------------ 4. bad input


def test_invalid_spec_is_reported_then_fixed_and_a_bad_manifest_fails_only_its_app(
        stack: Stack) -> None:
    """An Application without destination server or name: InvalidSpecError, nothing applied;
    `kubectl apply` with the server added makes it sync (and the condition goes). In one repo,
    a malformed YAML file in one app's path: that app gets a ComparisonError naming the file
    and nothing of it is applied; another app of the same repo syncs."""
    stack.origin.commit({
        "fixme/cm.yaml": configmap("fixme-cm"),
        "broken/good.yaml": configmap("broken-good"),
        "broken/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [oops\n",
        "fine/cm.yaml": configmap("fine-cm"),
    })
    stack.worker("w1", concurrency=2)
    stack.beat()
    since = time.time()
    invalid = stack.app_manifest("fixme", "fixme", automated={"prune": True})
    del invalid["spec"]["destination"]["server"]
    stack.apply_app(invalid)
    stack.apply_app(stack.app_manifest("broken", "broken", automated={"prune": True}))
    stack.apply_app(stack.app_manifest("fine", "fine", automated={"prune": True}))

    message = wait_for(lambda: conditions(stack, "fixme").get("InvalidSpecError"), 20,
                       what="InvalidSpecError")
    assert "destination" in message, message
    broken = wait_for(lambda: conditions(stack, "broken").get("ComparisonError"), 20,
                      what="ComparisonError")
    assert "bad.yaml" in broken, broken
    wait_for(lambda: stack.synced_healthy("fine"), 20, what="the other app Synced")
    time.sleep(2.5)  # sweeps and resumes: still nothing applied for the bad apps
    names = {object_name(r) for r in stack.writes(since=since)}
    assert "fine-cm" in names
    assert not names & {"fixme-cm", "broken-good"}, names
    assert stack.live(CM, "fixme-cm") is None and stack.live(CM, "broken-good") is None
    assert "bad.yaml" in conditions(stack, "broken").get("ComparisonError", "")

    stack.apply_app(stack.app_manifest("fixme", "fixme", automated={"prune": True}))
    wait_for(lambda: stack.synced_healthy("fixme"), 20, what="the fixed app Synced")
    assert stack.live(CM, "fixme-cm") is not None
    assert "InvalidSpecError" not in conditions(stack, "fixme"), conditions(stack, "fixme")


def test_a_typo_in_an_application_in_the_cluster_is_an_invalid_spec_and_stops_only_it(
        stack: Stack) -> None:
    """`targetRevison` used to be pruned by the API server (or ignored by the parser), so the
    app synced HEAD; now the CRD keeps it and the controller names it. Other apps sync."""
    stack.origin.commit({"typo/cm.yaml": configmap("typo-cm"),
                         "sound/cm.yaml": configmap("sound-cm")})
    stack.worker("w1", concurrency=2)
    stack.beat()
    since = time.time()
    typo = stack.app_manifest("typo", "typo", automated={"prune": True})
    typo["spec"]["source"]["targetRevison"] = typo["spec"]["source"].pop("targetRevision")
    stack.apply_app(typo)
    stack.apply_app(stack.app_manifest("sound", "sound", automated={"prune": True}))
    message = wait_for(lambda: conditions(stack, "typo").get("InvalidSpecError"), 20,
                       what="InvalidSpecError")
    assert "spec.source.targetRevison: unknown field; did you mean targetRevision?" in message
    wait_for(lambda: stack.synced_healthy("sound"), 20, what="the other app Synced")
    names = {object_name(r) for r in stack.writes(since=since)}
    assert "sound-cm" in names and "typo-cm" not in names, names

