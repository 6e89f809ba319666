"""The distributed execution under real faults: SIGKILLed workers and pool children, a worker
paused past its lock TTL, Redis restarted empty, and an API server that fails one request in
five. Every claim is read from kubesim's request log (method, path, query, user agent, status,
start, end), never from the product's own bookkeeping."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

from tests.redisserver import RedisServer, needs_redis

from .stack import (
    API,
    CM,
    DEPLOY,
    JOBS,
    KubeSimProcess,
    Stack,
    agent_pid,
    agent_worker,
    configmap,
    deployment,
    is_write,
    job,
    wait_fault_taken,
    wait_for,
)

WAVE = "argocd.argoproj.io/sync-wave"
AUTO = {"prune": True, "selfHeal": False}
Files = dict[str, str | bytes]  # what a commit writes


def waved_app(prefix: str, waves: int = 3) -> Files:
    """A PreSync hook Job `<prefix>-pre`, Deployments `<prefix>-w<N>` in waves 1..waves (each
    waits for the previous to be Healthy), and a PostSync hook Job `<prefix>-post`."""
    files: Files = {f"{prefix}/pre.yaml": job(f"{prefix}-pre", "PreSync"),
             f"{prefix}/post.yaml": job(f"{prefix}-post", "PostSync")}
    for wave in range(1, waves + 1):
        files[f"{prefix}/w{wave}.yaml"] = deployment(f"{prefix}-w{wave}",
                                                     annotations={WAVE: str(wave)})
    return files


def succeeded(stack: Stack, name: str) -> bool:
    status = stack.status(name)
    return (stack.synced_healthy(name)
            and (status.get("operationState") or {}).get("phase") == "Succeeded")


def job_creations(log: list[dict[str, Any]], ns: str) -> list[dict[str, Any]]:
    """POSTs that created a Job in namespace `ns` (answered 201)."""
    return [r for r in log if r["method"] == "POST" and r["path"] == JOBS.format(ns=ns)
            and r["status"] == 201 and is_write(r)]


def applies_of(log: list[dict[str, Any]], ns: str, deployment_name: str
               ) -> list[dict[str, Any]]:
    """Server-side applies (not dry-runs) of one Deployment."""
    path = DEPLOY.format(ns=ns) + f"/{deployment_name}"
    return [r for r in log if r["method"] == "PATCH" and r["path"] == path and is_write(r)]


def assert_hooks_created_once(log: list[dict[str, Any]], ns: str, prefix: str,
                              waves: int) -> None:
    """The app of `waved_app(prefix, waves)`, alone in namespace `ns`: its two hook Jobs,
    told apart by the waves, were each created once: one creation ended before the first
    Deployment was first applied (PreSync), one started after the last Deployment's last
    apply (PostSync), and there was no other."""
    created = job_creations(log, ns)
    first = min(r["start"] for r in applies_of(log, ns, f"{prefix}-w1"))
    last = max(r["end"] for r in applies_of(log, ns, f"{prefix}-w{waves}"))
    pre = [r for r in created if r["end"] <= first]
    post = [r for r in created if r["start"] >= last]
    assert len(pre) == 1 and len(post) == 1 and len(created) == 2, created


# ----------------------------------------------------------------------------- 1. SIGKILL


def test_worker_group_killed_after_creating_the_presync_job_before_recording_it(
        stack: Stack) -> None:
    """The whole worker (Celery parent and pool child) is SIGKILLed right after kubesim
    created its PreSync Job, while the status write that would record the Job is on the wire
    (held by injected latency): the operation state never learns of the Job. A second worker
    resumes the operation once the lock expired, finds the Job by its per-attempt annotation
    instead of creating another, and finishes every wave and the PostSync hook."""
    stack.origin.commit(waved_app("k"))
    status_path = f"{API}/namespaces/{stack.control}/applications/killed/status$"
    stack.sim.add_fault(path=status_path, method="PATCH", latency=1.0)
    w1 = stack.worker("w1")
    stack.beat()
    stack.apply_app(stack.app_manifest("killed", "k", automated=AUTO))
    created = wait_for(lambda: job_creations(stack.sim.requests(), stack.dest), 30, interval=0.02,
                       what="the PreSync Job created")
    w1.kill()
    killed = time.time()
    stack.sim.clear_faults()
    w2 = stack.worker("w2")
    wait_for(lambda: succeeded(stack, "killed"), 40, what="Succeeded after the kill")

    log = stack.sim.requests()
    one, two = (f"{w.name}@{stack.id}" for w in (w1, w2))
    assert [agent_worker(r) for r in created] == [one]
    # No status write of the first worker succeeded after the Job's creation (the kill cut
    # it off, in flight or before it was sent): the operation state the second worker read
    # did not know about the Job.
    recorded = [r for r in log if r["method"] == "PATCH" and re.search(status_path, r["path"])
                and agent_worker(r) == one and r["start"] >= created[0]["end"]
                and r["status"] == 200]
    assert not recorded, recorded
    assert_hooks_created_once(log, stack.dest, "k", 3)
    after = [r for r in log if is_write(r) and r["start"] > killed
             and f"/namespaces/{stack.dest}/" in r["path"]]
    assert after and {agent_worker(r) for r in after} == {two}
    # It did not even try to create it again (no POST answered 409 AlreadyExists either).
    first_wave = min(r["start"] for r in applies_of(log, stack.dest, "k-w1"))
    assert not [r for r in log if r["method"] == "POST" and r["path"] == JOBS.format(ns=stack.dest)
                and agent_worker(r) == two and r["start"] < first_wave]


def test_worker_group_killed_between_waves_holding_the_next_step(stack: Stack) -> None:
    """The whole worker is SIGKILLed between two waves: its step applied the first wave and
    saved the state, and the worker holds the countdown message of the next step (a health
    check 2 s later). That message dies with it (it would come back only after the
    visibility timeout), and its queue marker lives just past the message's due time: the
    resume sweep re-queues the operation seconds later (not after GITOPS_TASKS_QUEUED_TTL)
    and a second worker finishes it. Each hook Job was created once."""
    stack.origin.commit(waved_app("b"))
    w1 = stack.worker("w1", GITOPS_TASKS_SYNC_POLL_INTERVAL="2")
    stack.beat()
    stack.apply_app(stack.app_manifest("between", "b", automated=AUTO))
    status_path = f"{API}/namespaces/{stack.control}/applications/between/status"

    def saved_after_first_wave() -> bool:
        log = stack.sim.requests()
        applied = applies_of(log, stack.dest, "b-w1")
        return bool(applied) and any(
            r["method"] == "PATCH" and r["path"] == status_path and r["status"] == 200
            and r["start"] > applied[0]["end"] for r in log)

    wait_for(saved_after_first_wave, 30, interval=0.02, what="the first wave applied and saved")
    time.sleep(0.3)  # the next step's countdown message is delivered to (and held by) w1
    w1.kill()
    killed = time.time()
    w2 = stack.worker("w2")
    # The marker expires 2 s + 5 s after it was claimed, then one resume interval, then the
    # two waves and PostSync left: about 11 s. GITOPS_TASKS_QUEUED_TTL is 60 s here.
    wait_for(lambda: succeeded(stack, "between"), 20, what="Succeeded after the kill")

    log = stack.sim.requests()
    assert_hooks_created_once(log, stack.dest, "b", 3)
    one, two = (f"{w.name}@{stack.id}" for w in (w1, w2))
    mine = [r for r in log if is_write(r) and f"/namespaces/{stack.dest}/" in r["path"]]
    assert {agent_worker(r) for r in mine if r["end"] < killed} == {one}
    assert {agent_worker(r) for r in mine if r["start"] > killed} == {two}
    # The second wave was applied only after the kill: the kill was between the waves.
    assert min(r["start"] for r in applies_of(log, stack.dest, "b-w2")) > killed


def test_pool_child_killed_between_waves_parent_respawns_and_redelivers(stack: Stack
                                                                        ) -> None:
    """Only the Celery prefork child running the step is SIGKILLed, while it applies the
    second wave: the parent respawns a child, Celery gives the message back
    (task_reject_on_worker_lost) and the new child finishes the operation; no hook Job is
    created twice."""
    stack.origin.commit(waved_app("c"))
    w2 = DEPLOY.format(ns=stack.dest) + "/c-w2"
    stack.sim.add_fault(path=w2 + "$", method="PATCH", latency=1.5, count=1)
    worker = stack.worker("w1")
    stack.beat()
    stack.apply_app(stack.app_manifest("child", "c", automated=AUTO))
    wait_fault_taken(stack.sim, w2 + "$")
    children = [pid for pid in worker.group() if pid != worker.pid]
    assert len(children) == 1, children
    child = children[0]
    os.kill(child, signal.SIGKILL)
    killed = time.time()
    wait_for(lambda: succeeded(stack, "child"), 40, what="Succeeded after the child died")

    log = stack.sim.requests()
    assert_hooks_created_once(log, stack.dest, "c", 3)
    mine = [r for r in log if is_write(r) and f"/namespaces/{stack.dest}/" in r["path"]]
    before = {agent_pid(r) for r in mine if r["end"] < killed}
    after = {agent_pid(r) for r in mine if r["start"] > killed}
    assert before == {child}, before
    assert after and child not in after, after
    assert {agent_worker(r) for r in mine} == {worker.name + "@" + stack.id}
    assert worker.alive
    # The scenario is the one named: Celery gave the killed step's message back (the same
    # task id was received a second time), it was not only the sweep that resumed it.
    lost = [e for e in worker.lines() if "WorkerLostError" in str(e.get("event", ""))]
    received = [str(e["event"]).split("[", 1)[1].split("]", 1)[0] for e in worker.lines()
                if str(e.get("event", "")).startswith("Task gitops.sync[")
                and str(e["event"]).endswith("received")]
    assert lost and len(received) > len(set(received)), (lost, received)


# ----------------------------------------------------------------------------- 2. lock loss


def test_worker_paused_past_its_lock_ttl_never_writes_after_it_resumes(stack: Stack) -> None:
    """Two sync workers (and one for refreshes, so that the sync workers' user agents write
    only from sync steps); the one running a long step (twelve ConfigMaps in one wave, each
    apply held 0.5 s by kubesim) is SIGSTOPped past the 3 s lock TTL. The resume sweep
    re-queues the operation once the lock expired and the other worker takes over and
    writes; when the paused worker is SIGCONTed it stops before its next write (its lock
    check trusts its own clock), so no write of its user agent starts after the SIGCONT,
    though it goes on working (its requests after the SIGCONT are all reads)."""
    names = [f"cm-{i:02d}" for i in range(12)]
    cms_files: Files = {f"p/{n}.yaml": configmap(n) for n in names}
    stack.origin.commit(cms_files)
    cms = CM.format(ns=stack.dest)
    stack.sim.add_fault(path=cms + "/cm-", method="PATCH", latency=0.5)
    stack.worker("r", queues="refresh")
    workers = {f"{w.name}@{stack.id}": w for w in (stack.worker("s1", queues="sync"),
                                                   stack.worker("s2", queues="sync"))}
    stack.beat()
    stack.apply_app(stack.app_manifest("paused", "p", automated=AUTO))

    def applies(since: float = 0.0) -> list[dict[str, Any]]:
        return [r for r in stack.sim.requests(since) if is_write(r)
                and r["method"] == "PATCH" and r["path"].startswith(cms + "/cm-")]

    first = wait_for(applies, 30, interval=0.02, what="the first ConfigMap applied")
    runner = agent_worker(first[0])
    other = next(n for n in workers if n != runner)
    workers[runner].stop()
    stopped = time.time()
    try:
        taken = wait_for(lambda: [r for r in applies(stopped) if agent_worker(r) == other
                                  and r["start"] > stopped], 30, interval=0.05,
                         what="the other worker taking over")
    finally:
        workers[runner].cont()
    resumed = time.time()
    wait_for(lambda: succeeded(stack, "paused"), 40, what="Succeeded after the pause")
    time.sleep(1.0)  # what the resumed worker does next is in the log too

    log = stack.sim.requests()
    assert resumed - stopped > 3, "paused for longer than the lock TTL"
    assert taken[0]["start"] < resumed
    # It had written before the pause, and had more to write when it was paused.
    before = [r for r in applies() if agent_worker(r) == runner]
    # One apply may have been on the wire at the SIGSTOP (sent with the lock held) and be
    # logged by a loaded kubesim a moment later; none is sent while it is stopped.
    in_flight = [r for r in before if r["start"] >= stopped]
    assert before and len(in_flight) <= 1 and all(r["start"] < stopped + 1.0
                                                  for r in in_flight), in_flight
    assert len(before) < len(names)
    late = [r for r in log if agent_worker(r) == runner and r["start"] >= resumed]
    assert late, "the resumed worker made no request at all"
    assert not [r for r in late if is_write(r)], [r for r in late if is_write(r)]
    for n in names:
        assert stack.live(CM, n) is not None, n


# ----------------------------------------------------------------------------- 3. Redis


@needs_redis
def test_redis_restarted_empty_mid_operation(sim: KubeSimProcess, tmp_path: Path) -> None:
    """A private redis-server is SIGKILLed while one app's operation runs (between its waves)
    and while another app's sync is requested (written on the Application while Redis is
    down, so nothing can be queued), then started again empty on the same port: the queues,
    markers and locks are gone, but the Applications hold the work. Workers and beat
    reconnect, the resume sweep re-queues both operations, both Succeed, and no hook Job is
    created twice."""
    server = RedisServer(tmp_path / "redis").start()
    stack = Stack(sim, server.url, tmp_path / "stack")
    try:
        _redis_restart(stack, server)
    except BaseException:
        import sys
        sys.stderr.write(stack.logs())
        raise
    finally:
        stack.close()
        server.stop()


def _redis_restart(stack: Stack, server: RedisServer) -> None:
    other = f"{stack.dest}-q"
    stack.kubectl("create", "namespace", other)
    stack.origin.commit({**waved_app("r"), **waved_app("q", 1)})
    held = DEPLOY.format(ns=stack.dest) + "/r-w2$"
    stack.sim.add_fault(path=held, method="PATCH", latency=1.0, count=1)
    stack.worker("w1")
    stack.beat()
    stack.apply_app(stack.app_manifest("running", "r", automated=AUTO))
    stack.apply_app(stack.app_manifest("requested", "q", namespace=other))
    wait_for(lambda: (stack.status("requested").get("sync") or {}).get("status") == "OutOfSync",
             30, what="the manual app refreshed")
    wait_fault_taken(stack.sim, held)  # "running" is applying its second wave
    server.kill()
    down = time.time()
    stack.request_sync("requested")
    time.sleep(1.5)  # workers and beat see Redis gone
    server.start()
    up = time.time()
    wait_for(lambda: succeeded(stack, "running") and succeeded(stack, "requested"), 45,
             what="both operations Succeeded after Redis came back empty")

    log = stack.sim.requests()
    assert_hooks_created_once(log, stack.dest, "r", 3)
    assert_hooks_created_once(log, other, "q", 1)
    # "running" was in its second wave when Redis died: its third wave and PostSync hook ran
    # after Redis came back; "requested" started only then, from the Application alone.
    assert min(r["start"] for r in applies_of(log, stack.dest, "r-w1")) < down
    assert min(r["start"] for r in applies_of(log, stack.dest, "r-w3")) > up
    assert [r for r in job_creations(log, stack.dest) if r["start"] > up]
    assert not [r for r in log if is_write(r) and f"/namespaces/{other}/" in r["path"]
                and r["start"] < up]
    assert [r for r in job_creations(log, other) if r["start"] > up]
    for name in ("running", "requested"):
        assert (stack.app(name) or {}).get("operation") is None, name


# ----------------------------------------------------------------------------- 4. API faults


def test_apps_converge_while_the_api_server_fails_one_request_in_five(stack: Stack) -> None:
    """5 apps (a PreSync Job, two waves of Deployments and a PostSync Job each, each app in a
    destination namespace of its own so the log tells their Jobs apart), while kubesim answers
    500, or 429 with Retry-After, to about 20% of the requests to those namespaces and slows
    down another 20%: every app still ends Synced, Healthy and Succeeded, each hook Job was
    created exactly once, and the log shows the faults were really served."""
    apps = [f"f{i}" for i in range(5)]
    spaces = {name: f"{stack.dest}-{name}" for name in apps}
    files: Files = {}
    for name in apps:
        stack.kubectl("create", "namespace", spaces[name])
        files.update(waved_app(name, 2))
    stack.origin.commit(files)
    ns = f"/namespaces/{stack.dest}-f[0-9]/"
    stack.sim.add_fault(path=ns, status=500, probability=0.1)
    stack.sim.add_fault(path=ns, status=429, retry_after=1, probability=0.11)
    stack.sim.add_fault(path=ns, latency=0.2, probability=0.2)
    faulted = time.time()
    stack.worker("w1", concurrency=2)
    stack.beat()
    for name in apps:
        stack.apply_app(stack.app_manifest(name, name, automated=AUTO, namespace=spaces[name]))
    try:
        wait_for(lambda: all(succeeded(stack, n) for n in apps), 60, interval=0.3,
                 what="every app Succeeded under faults")
    finally:
        stack.sim.clear_faults()

    log = [r for r in stack.sim.requests(faulted) if re.search(ns, r["path"])]
    statuses = [r["status"] for r in log]
    assert statuses.count(500) >= 3 and statuses.count(429) >= 3, statuses
    assert any(r["end"] - r["start"] >= 0.2 and r["status"] < 400 for r in log)
    for name in apps:
        assert_hooks_created_once(log, spaces[name], name, 2)
        for wave in (1, 2):
            live = stack.get(DEPLOY.format(ns=spaces[name]) + f"/{name}-w{wave}")
            assert live is not None, (name, wave)
