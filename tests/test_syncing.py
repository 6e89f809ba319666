"""The sync step function against kubesim, one step at a time: waves across steps, crashes and
resumes, terminate, retries, queued requests and the state store's guard.

Each test gets its own repository, control and destination namespaces (see
`tests.test_reconcile.Env`); steps are driven by hand with `SyncStepper.step`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from gitops_tasks.errors import LockLost
from gitops_tasks.model import Application, keys
from gitops_tasks.model import operation as op
from gitops_tasks.model import status as st
from gitops_tasks.model.operation import Operation, OperationState, SyncRequest
from gitops_tasks.operations import (
    ClusterState,
    OperationInProgress,
    current_state,
    pending_request,
    request_sync,
    request_terminate,
)
from gitops_tasks.settings import TaskSettings
from gitops_tasks.syncing import StepOutcome, SyncStepper
from kubesim.server import RequestRecord
from tests.test_reconcile import CM, DEPLOY, Env, configmap, deployment

JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"

Fence = Callable[[], None]


def no_fence() -> None:
    return None




def job(name: str, hook: str, *, policy: str = "", image: str = "busybox",
        parallelism: int | None = None, wave: int | None = None) -> str:
    annotations = {keys.HOOK: hook}
    if policy:
        annotations[keys.HOOK_DELETE_POLICY] = policy
    if wave is not None:
        annotations[keys.SYNC_WAVE] = str(wave)
    spec: dict[str, Any] = {"backoffLimit": 0, "template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "m", "image": image}]}}}
    if parallelism is not None:
        spec["parallelism"] = parallelism  # 0: the Job never runs, so it never completes
    return yaml.safe_dump({"apiVersion": "batch/v1", "kind": "Job",
                           "metadata": {"name": name, "annotations": annotations},
                           "spec": spec})


def step(env: Env, app: Application, fence: Fence = no_fence,
         stepper: SyncStepper | None = None) -> StepOutcome:
    return (stepper or env.reconciler.stepper).step(app, ClusterState(env.apps, app, fence),
                                                    fence=fence)


def drive(env: Env, app: Application, operation_id: str, *, stepper: SyncStepper | None = None,
          timeout: float = 20) -> list[StepOutcome]:
    """Steps until operation `operation_id` has completed, sleeping the countdowns."""
    outcomes: list[StepOutcome] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = step(env, app, stepper=stepper)
        outcomes.append(out)
        if out.state is not None and out.state.operation.id == operation_id and \
                out.state.completed:
            return outcomes
        assert out.requeue_after is not None, out.message
        time.sleep(min(out.requeue_after, 0.5))
    raise AssertionError(f"operation {operation_id} did not finish: {outcomes[-1].message}")


def state_of(env: Env, name: str) -> OperationState:
    obj = env.apps.get(name)
    assert obj is not None
    state = current_state(obj)
    assert state is not None
    return state


def job_creates(env: Env, since: int = 0) -> list[RequestRecord]:
    path = JOBS.format(ns=env.dest)
    return [r for r in env.kubesim.request_log[since:]
            if r.method == "POST" and r.path == path and "dryRun" not in r.query]


class Crash(Exception):
    """The worker dies (a stand-in for the process being killed before its next write)."""


def crashing_fence(app: str, nth: int) -> tuple[Fence, list[int]]:
    calls = [0]

    def fence() -> None:
        calls[0] += 1
        if calls[0] == nth:
            raise Crash(f"{app}: crash at write #{nth}")
        if calls[0] > nth:
            raise LockLost(app, reason="the crashed worker wrote again")

    return fence, calls


# ------------------------------------------------------------------------------ waves per step

def test_one_step_per_wave_waits_for_health(env: Env) -> None:
    env.commit({"app/deploy.yaml": deployment("web", replicas=1),
                "app/late.yaml": configmap("late", annotations={keys.SYNC_WAVE: "1"})})
    app = env.app("waves", "app")
    operation = request_sync(env.apps, "waves", SyncRequest(), initiated_by="test")
    head = env.origin.git("rev-parse", "HEAD")
    first = step(env, app)
    assert first.requeue_after == pytest.approx(0.05)  # the poll interval
    assert not first.finished
    assert [(r.key.kind, r.result) for r in first.applied] == [("Deployment", st.APPLIED)]
    state = state_of(env, "waves")
    assert state.operation.id == operation.id and state.phase == st.RUNNING
    assert state.revision == head
    assert state.wave == ("Sync", 1)  # what it waits to start
    assert [(r.key.name, r.phase, r.wave, r.result) for r in state.results] == [
        ("web", "Sync", 0, st.APPLIED)]
    assert "waiting for healthy state of Deployment.apps" in state.message
    assert env.live(DEPLOY, "web") is not None and env.live(CM, "late") is None
    # The next steps wait (applying nothing) until the Deployment is Healthy, then wave 1.
    later = drive(env, app, operation.id)
    waiting, last = later[:-1], later[-1]
    assert all(o.applied == [] for o in waiting)
    assert all(o.requeue_after == pytest.approx(0.05) for o in waiting)
    assert [(r.key.name, r.result) for r in last.applied] == [("late", st.APPLIED)]
    assert last.state is not None and last.state.phase == st.SUCCEEDED
    assert last.requeue_after is None  # nothing else requested
    assert env.live(CM, "late") is not None
    obj = env.apps.get("waves")
    assert obj is not None and "operation" not in obj  # the request was cleared
    history = obj["status"]["history"]
    assert [h["revision"] for h in history] == [head]
    # Another step finds nothing to do.
    idle = step(env, app)
    assert idle.requeue_after is None and idle.message == "no operation to run"
    assert idle.applied == []


def test_no_request_no_operation(env: Env) -> None:
    env.commit({"app/cm.yaml": configmap("c")})
    app = env.app("idle", "app")
    out = step(env, app)
    assert out.state is None and out.requeue_after is None and out.finished
    assert env.live(CM, "c") is None


# ------------------------------------------------------------------------------ crash and resume

def test_a_crash_at_any_write_converges_and_creates_each_hook_once(env: Env) -> None:
    """For every N: the worker dies at its Nth write (the fence before it raises), then the
    step runs again; the operation converges and each hook Job is created exactly once."""
    count = 30
    env.commit({f: c for n in range(1, count + 1) for f, c in (
        (f"n{n}/pre.yaml", job(f"pre-{n}", "PreSync")),
        (f"n{n}/cm.yaml", configmap(f"cm-{n}")),
        (f"n{n}/late.yaml", configmap(f"late-{n}", annotations={keys.SYNC_WAVE: "1"})),
        (f"n{n}/post.yaml", job(f"post-{n}", "PostSync")))})
    crashed_after_create = 0
    for n in range(1, count + 1):
        name = f"crash-{n}"
        app = env.app(name, f"n{n}")
        operation = request_sync(env.apps, name, SyncRequest(), initiated_by="test")
        since = len(env.kubesim.request_log)
        fence, calls = crashing_fence(name, n)
        crashed = False
        for _ in range(400):
            try:
                out = step(env, app, fence)
            except Crash:
                crashed = True
                break
            if out.finished:
                break
            time.sleep(min(out.requeue_after or 0.0, 0.1))
        if not crashed:
            # The operation needed fewer than n writes: every write has been crashed at.
            assert n > 5, "an operation with hooks takes more than a handful of writes"
            assert out.state is not None and out.state.succeeded
            break
        creates_at_crash = len([r for r in job_creates(env, since) if r.status == 201])
        obj = env.apps.get(name)
        assert obj is not None
        saved = current_state(obj)
        recorded_hooks = sum(1 for r in (saved.results if saved else []) if r.hook)
        if creates_at_crash > recorded_hooks:
            crashed_after_create += 1  # a Job exists that no saved state knows of
        outcomes = drive(env, app, operation.id)
        final = outcomes[-1].state
        assert final is not None and final.phase == st.SUCCEEDED, (n, final and final.message)
        created = [r for r in job_creates(env, since) if r.status == 201]
        assert len(created) == 2, (n, [(r.status, r.path) for r in job_creates(env, since)])
        hooks = {r.key.name: r for r in final.results if r.hook}
        assert set(hooks) == {f"pre-{n}", f"post-{n}"}
        assert all(r.hook_phase == op.HOOK_SUCCEEDED for r in hooks.values()), n
        assert env.live(CM, f"late-{n}") is not None
        assert calls[0] >= n
    else:
        pytest.fail(f"an operation still crashed at write #{count}")
    assert crashed_after_create >= 1  # at least right after the PreSync hook's create


def test_a_crash_right_after_each_hook_create_creates_it_once(env: Env) -> None:
    env.commit({"app/pre.yaml": job("pre", "PreSync"),
                "app/cm.yaml": configmap("cfg"),
                "app/post.yaml": job("post", "PostSync")})
    app = env.app("aftercreate", "app")
    operation = request_sync(env.apps, "aftercreate", SyncRequest(), initiated_by="test")
    since = len(env.kubesim.request_log)
    seen = [0]

    def crash_after_a_create() -> None:
        # The write after a hook Job was created dies: nothing records that Job yet.
        created = len([r for r in job_creates(env, since) if r.status == 201])
        if created > seen[0]:
            seen[0] = created
            raise Crash("crash right after a hook create")

    crashes = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            out = step(env, app, crash_after_a_create)
        except Crash:
            crashes += 1
            state = current_state(env.apps.get("aftercreate") or {})
            saved = {r.key.name for r in (state.results if state else [])}
            assert f"{'pre' if crashes == 1 else 'post'}" not in saved
            continue
        if out.finished:
            break
        time.sleep(min(out.requeue_after or 0.0, 0.1))
    assert crashes == 2
    assert out.state is not None and out.state.operation.id == operation.id
    assert out.state.phase == st.SUCCEEDED, out.state.message
    assert len([r for r in job_creates(env, since) if r.status == 201]) == 2
    hooks = {r.key.name: r.hook_phase for r in out.state.results if r.hook}
    assert hooks == {"pre": op.HOOK_SUCCEEDED, "post": op.HOOK_SUCCEEDED}


def test_a_crash_after_deleting_a_succeeded_hook_converges(env: Env) -> None:
    env.commit({"app/pre.yaml": job("migrate", "PreSync", policy="HookSucceeded"),
                "app/cm.yaml": configmap("after")})
    app = env.app("hookdel", "app")
    operation = request_sync(env.apps, "hookdel", SyncRequest(), initiated_by="test")
    out = step(env, app)  # creates the hook Job
    assert out.state is not None and out.state.results[0].running
    env.wait(lambda: any(c.get("type") == "Complete" for c in (
        (env.live(JOBS, "migrate") or {}).get("status", {}).get("conditions") or [])))
    # The next step sees the Job complete, applies the ConfigMap (write #1) and dies before
    # saving the hook's success (write #2). The HookSucceeded deletion waits for that save, so
    # the Job is still there for the rerun to see completed.
    fence, _ = crashing_fence("hookdel", 2)
    with pytest.raises(Crash):
        step(env, app, fence)
    assert env.live(JOBS, "migrate") is not None
    final = drive(env, app, operation.id)[-1].state
    assert final is not None
    assert final.phase == st.SUCCEEDED, final.message
    assert env.live(CM, "after") is not None
    assert env.live(JOBS, "migrate") is None  # deleted once its success was saved


# ------------------------------------------------------------------------------ terminate

def test_terminate_while_a_pre_sync_hook_runs(env: Env) -> None:
    env.commit({"app/pre.yaml": job("forever", "PreSync", parallelism=0),
                "app/cm.yaml": configmap("never")})
    app = env.app("term", "app")
    operation = request_sync(env.apps, "term", SyncRequest(), initiated_by="test")
    out = step(env, app)
    assert [(r.key.name, r.hook_phase) for r in out.applied] == [("forever", op.HOOK_RUNNING)]
    time.sleep(0.4)  # past kubesim's ready delay: the Job still does not complete
    out = step(env, app)
    assert out.applied == [] and out.state is not None and out.state.results[0].running
    assert env.live(JOBS, "forever") is not None
    assert request_terminate(env.apps, "term") is True
    assert state_of(env, "term").phase == st.TERMINATING
    out = step(env, app)
    assert out.state is not None and out.finished
    state = state_of(env, "term")
    assert state.operation.id == operation.id
    assert state.phase == st.FAILED_PHASE and state.message == "operation terminated"
    (hook,) = state.results
    assert hook.hook_phase == op.HOOK_TERMINATED and hook.result == st.FAILED
    assert env.live(JOBS, "forever") is None  # the hook object was deleted
    assert env.live(CM, "never") is None
    assert out.requeue_after is None
    obj = env.apps.get("term")
    assert obj is not None and "operation" not in obj
    # Termination is not a failure to retry, and nothing more happens.
    assert step(env, app).message == "no operation to run"


def test_terminate_during_a_step_stops_before_the_next_wave(env: Env) -> None:
    env.commit({"app/deploy.yaml": deployment("web", replicas=1),
                "app/a.yaml": configmap("first", annotations={keys.SYNC_WAVE: "1"}),
                "app/b.yaml": configmap("second", annotations={keys.SYNC_WAVE: "2"})})
    app = env.app("midterm", "app")
    request_sync(env.apps, "midterm", SyncRequest(), initiated_by="test")
    step(env, app)  # wave 0 applied and saved; waiting for the Deployment
    env.wait(lambda: (env.live(DEPLOY, "web") or {}).get("status", {})
             .get("availableReplicas") == 1)
    terminated = [False]

    def fence() -> None:
        if not terminated[0]:  # just before wave 1 is applied, someone terminates
            terminated[0] = True
            assert request_terminate(env.apps, "midterm") is True

    out = step(env, app, fence)
    assert terminated[0] and env.live(CM, "first") is not None
    assert env.live(CM, "second") is None, "wave 2 was applied after the terminate"
    if not out.finished:
        out = step(env, app)
    state = state_of(env, "midterm")
    assert state.phase == st.FAILED_PHASE and state.message == "operation terminated"


def test_a_terminate_request_landing_during_a_step_is_kept(env: Env) -> None:
    """The step's save sees the Terminating phase someone wrote meanwhile and keeps it."""
    env.commit({"app/pre.yaml": job("forever", "PreSync", parallelism=0),
                "app/cm.yaml": configmap("never")})
    app = env.app("keep", "app")
    request_sync(env.apps, "keep", SyncRequest(), initiated_by="test")
    step(env, app)  # the hook is created; the operation waits for it
    terminated = [False]

    def fence() -> None:
        if not terminated[0]:
            terminated[0] = True
            assert request_terminate(env.apps, "keep") is True

    out = step(env, app, fence)  # a waiting step: its only write is the state save
    assert terminated[0]
    assert out.state is not None and out.state.phase == st.TERMINATING
    assert state_of(env, "keep").phase == st.TERMINATING
    step(env, app)
    state = state_of(env, "keep")
    assert state.phase == st.FAILED_PHASE and state.message == "operation terminated"
    assert env.live(JOBS, "forever") is None
    assert env.live(CM, "never") is None


# ------------------------------------------------------------------------------ retries

def test_unlimited_retries_honour_not_before(env: Env) -> None:
    env.commit({"app/bad.yaml": yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                                                "metadata": {"name": "Bad_Name"}})})
    app = env.app("retry", "app", syncPolicy={"retry": {"limit": -1, "backoff": {
        "duration": "0.2s", "factor": 2, "maxDuration": "0.4s"}}})
    assert app.sync_policy.retry is not None and app.sync_policy.retry.limit == -1
    operation = request_sync(env.apps, "retry", SyncRequest(), initiated_by="test")
    delays: list[float] = []
    for attempt in range(1, 5):
        out = step(env, app)
        assert out.requeue_after is not None
        delays.append(round(out.requeue_after, 3))
        state = state_of(env, "retry")
        assert state.operation.id == operation.id
        assert state.phase == st.RUNNING and state.retry_count == attempt
        assert state.results == [] and "Bad_Name" in state.message
        assert state.not_before > time.time()
        # A step before notBefore returns the remaining countdown and writes nothing.
        rv = env.apps.get("retry")["metadata"]["resourceVersion"]  # type: ignore[index]
        since = len(env.kubesim.request_log)
        early = step(env, app)
        assert early.requeue_after is not None
        assert 0 < early.requeue_after <= out.requeue_after
        assert early.requeue_after == pytest.approx(state.not_before - time.time(), abs=0.05)
        assert early.applied == []
        assert env.apps.get("retry")["metadata"]["resourceVersion"] == rv  # type: ignore[index]
        writes = [r for r in env.kubesim.request_log[since:] if r.method != "GET"]
        assert writes == []
        time.sleep(max(state.not_before - time.time(), 0) + 0.02)
    assert delays == [0.2, 0.4, 0.4, 0.4]
    # It would go on for ever; terminate ends it.
    assert request_terminate(env.apps, "retry") is True
    step(env, app)
    state = state_of(env, "retry")
    assert state.phase == st.FAILED_PHASE and state.message == "operation terminated"
    assert state.retry_count == 4


def test_a_limited_retry_gives_up(env: Env) -> None:
    env.commit({"app/bad.yaml": yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                                                "metadata": {"name": "Bad_Name"}})})
    app = env.app("giveup", "app", syncPolicy={"retry": {"limit": 1, "backoff": {
        "duration": "0.1s"}}})
    operation = request_sync(env.apps, "giveup", SyncRequest(), initiated_by="test")
    outcomes = drive(env, app, operation.id)
    final = outcomes[-1].state
    assert final is not None and final.phase == st.FAILED_PHASE
    assert final.retry_count == 1 and "Bad_Name" in final.message
    assert outcomes[-1].requeue_after is None


# ------------------------------------------------------------------------------ queued requests

def test_a_request_arriving_while_one_runs_starts_right_after_it(env: Env) -> None:
    first_rev = env.commit({"app/deploy.yaml": deployment("web", replicas=1),
                            "app/cfg.yaml": configmap("cfg", {"v": "1"},
                                                      annotations={keys.SYNC_WAVE: "1"})})
    app = env.app("queue", "app")
    first = request_sync(env.apps, "queue", SyncRequest(), initiated_by="alice")
    out = step(env, app)
    assert out.state is not None and out.state.revision == first_rev and not out.finished
    # Git moves and someone asks again while the first operation waits for the Deployment.
    second_rev = env.commit({"app/cfg.yaml": configmap("cfg", {"v": "2"},
                                                       annotations={keys.SYNC_WAVE: "1"})})
    second = request_sync(env.apps, "queue", SyncRequest(), initiated_by="bob")
    assert second.id != first.id
    outcomes = drive(env, app, first.id)
    finishing = outcomes[-1]
    assert finishing.state is not None and finishing.state.succeeded
    # The first operation stays at the revision it started from.
    assert finishing.state.revision == first_rev
    assert env.live(CM, "cfg")["data"] == {"v": "1"}  # type: ignore[index]
    assert finishing.requeue_after == 0.0  # the queued request: straight on
    obj = env.apps.get("queue")
    assert obj is not None
    pending = pending_request(obj)
    assert pending is not None and pending.id == second.id
    nxt = step(env, app)
    assert nxt.state is not None and nxt.state.operation.id == second.id
    assert nxt.state.revision == second_rev
    assert nxt.state.operation.initiated_by == "bob"
    if not nxt.finished:
        nxt = drive(env, app, second.id)[-1]
    assert nxt.state is not None and nxt.state.succeeded
    assert env.live(CM, "cfg")["data"] == {"v": "2"}  # type: ignore[index]
    history = env.status("queue")["history"]
    assert [h["revision"] for h in history] == [first_rev, second_rev]


def test_requests_written_in_argo_cd_form_each_run(env: Env) -> None:
    env.commit({"app/cm.yaml": configmap("cfg", {"v": "1"})})
    app = env.app("argo", "app")

    def argo_request(revision: str) -> None:
        env.apps.patch("argo", {"operation": {"initiatedBy": {"username": "admin"},
                                              "sync": {"revision": revision}}})

    argo_request("main")
    out = step(env, app)
    assert out.state is not None and out.state.succeeded
    assert env.live(CM, "cfg")["data"] == {"v": "1"}  # type: ignore[index]
    env.commit({"app/cm.yaml": configmap("cfg", {"v": "2"})})
    argo_request("main")
    out = step(env, app)
    assert out.state is not None and out.state.succeeded, out.message
    assert env.live(CM, "cfg")["data"] == {"v": "2"}  # type: ignore[index]


# ------------------------------------------------------------------------------ wave delay

class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def delayed_stepper(env: Env, clock: Clock) -> SyncStepper:
    return SyncStepper(env.reconciler.comparer,
                       TaskSettings(sync_poll_interval=0.05, sync_wave_delay=30.0),
                       apps=env.apps, hook_timeout=30, clock=clock)


def test_wave_delay_between_waves(env: Env) -> None:
    env.commit({"app/a.yaml": configmap("first"),
                "app/b.yaml": configmap("second", annotations={keys.SYNC_WAVE: "1"})})
    app = env.app("delay", "app")
    clock = Clock()
    stepper = delayed_stepper(env, clock)
    operation = request_sync(env.apps, "delay", SyncRequest(), initiated_by="test")
    applied: list[str] = []
    pauses: list[tuple[tuple[str, ...], float]] = []
    for _ in range(6):
        out = step(env, app, stepper=stepper)
        applied += [r.key.name for r in out.applied]
        if out.finished:
            break
        assert out.requeue_after is not None
        pauses.append((tuple(applied), out.requeue_after))
        if applied == ["first"]:
            assert env.live(CM, "second") is None
        clock.now += out.requeue_after
    assert out.state is not None and out.state.operation.id == operation.id
    assert out.state.succeeded
    assert applied == ["first", "second"]
    # The pause before wave 1: after wave 0 was applied, before wave 1.
    assert (("first",), 30.0) in pauses


def test_no_wave_delay_before_the_first_wave(env: Env) -> None:
    env.commit({"app/a.yaml": configmap("first")})
    app = env.app("nodelay", "app")
    stepper = delayed_stepper(env, Clock())
    request_sync(env.apps, "nodelay", SyncRequest(), initiated_by="test")
    out = step(env, app, stepper=stepper)
    assert [r.key.name for r in out.applied] == ["first"]
    assert out.finished and out.state is not None and out.state.succeeded


# ------------------------------------------------------------------------------ the state store

def test_cluster_state_never_overwrites_another_running_operation(env: Env) -> None:
    app = env.app("guard", "app")
    theirs = OperationState(Operation.new(SyncRequest(revision="r1"), initiated_by="a"),
                            revision="r1", message="theirs")
    ours = OperationState(Operation.new(SyncRequest(revision="r2"), initiated_by="b"))
    store = ClusterState(env.apps, app)
    store.save(theirs)
    with pytest.raises(OperationInProgress, match=theirs.operation.id):
        store.save(ours)
    state = state_of(env, "guard")
    assert state.operation.id == theirs.operation.id and state.message == "theirs"
    # Terminating is in progress too.
    theirs.phase = st.TERMINATING
    store.save(theirs)
    with pytest.raises(OperationInProgress):
        store.save(ours)
    # Its own operation may be saved; a finished other one may be replaced.
    theirs.phase = st.RUNNING
    theirs.message = "still theirs"
    store.save(theirs)
    assert state_of(env, "guard").phase == st.TERMINATING  # a terminate is never undone
    theirs.phase = st.FAILED_PHASE
    theirs.finished_at = st.now()
    store.save(theirs)
    store.save(ours)
    state = state_of(env, "guard")
    assert state.operation.id == ours.operation.id and state.phase == st.RUNNING


def test_cluster_state_clears_only_its_own_request(env: Env) -> None:
    app = env.app("clear", "app")
    first = request_sync(env.apps, "clear", SyncRequest(), initiated_by="a")
    store = ClusterState(env.apps, app)
    _, request = store.load()
    assert request is not None and request.id == first.id
    store.clear_request("someone-else")
    assert pending_request(env.apps.get("clear") or {}) is not None
    # A newer request replaced it after the load: clearing the old id keeps the new one.
    env.apps.patch("clear", {"operation": Operation.new(SyncRequest(revision="x"),
                                                        initiated_by="b").to_dict()})
    store.clear_request(first.id)
    pending = pending_request(env.apps.get("clear") or {})
    assert pending is not None and pending.sync.revision == "x"
