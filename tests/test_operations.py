"""Requesting operations and the automated policy.

`auto_sync_due` is pure and tested as a table over hand-built stored Applications. Requests
(`request_sync`, `request_terminate`) are written on a real Application in kubesim, where every
write is guarded by resourceVersion.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest

from gitops_tasks.appstore import AppNotFound
from gitops_tasks.model import Application, keys, parse_application
from gitops_tasks.model import status as st
from gitops_tasks.model.operation import Operation, OperationState, SyncRequest
from gitops_tasks.model.resources import ResourceKey
from gitops_tasks.operations import (
    OperationInProgress,
    auto_sync_due,
    current_state,
    pending_request,
    request_sync,
    request_terminate,
    spec_hash,
)
from gitops_tasks.settings import ReconcileSettings
from tests.test_reconcile import Env

# ------------------------------------------------------------------------------ auto_sync_due

REV = "a" * 40
OLD = "b" * 40
FINISHED = "2026-03-01T12:00:00Z"
T0 = 1772366400.0  # FINISHED as epoch seconds
SETTINGS = ReconcileSettings(self_heal_backoff=10.0, self_heal_backoff_max=35.0)


def application(*, automated: dict[str, Any] | None = None, path: str = "app") -> Application:
    spec: dict[str, Any] = {
        "source": {"repoURL": "https://git.example/repo.git", "path": path,
                   "targetRevision": "main"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
    }
    if automated is not None:
        spec["syncPolicy"] = {"automated": automated}
    return parse_application({"apiVersion": keys.API_VERSION, "kind": keys.KIND,
                              "metadata": {"name": "web", "namespace": "ctl"}, "spec": spec})


AUTO = {"prune": True}
HEAL = {"selfHeal": True}


@dataclass(frozen=True)
class Last:
    """The last operation as stored in status.operationState."""

    phase: str = st.SUCCEEDED
    revision: str = REV
    automated: bool = True
    attempt: int = 1
    dry_run: bool = False
    spec: str = "same"  # "same": the app's spec hash; anything else is stored as is
    finished_at: str = FINISHED
    id: str = "lastop000001"


@dataclass(frozen=True)
class Pending:
    revision: str = REV
    id: str = "pending00001"


def stored(app: Application, last: Last | None, pending: Pending | None = None
           ) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": keys.API_VERSION, "kind": keys.KIND,
                           "metadata": {"name": app.name, "namespace": app.namespace,
                                        "resourceVersion": "7"},
                           "status": {"sync": {"status": "OutOfSync"}}}
    if last is not None:
        state = OperationState(
            Operation(last.id, SyncRequest(revision=last.revision, dry_run=last.dry_run),
                      "automated" if last.automated else "alice", last.automated,
                      "2026-03-01T11:59:00Z", last.attempt),
            phase=last.phase, message="", started_at="2026-03-01T11:59:00Z",
            finished_at=last.finished_at if last.phase not in (st.RUNNING, st.TERMINATING)
            else "",
            revision=last.revision,
            spec_hash=spec_hash(app) if last.spec == "same" else last.spec)
        obj["status"]["operationState"] = state.to_dict()
    if pending is not None:
        obj["operation"] = Operation(pending.id, SyncRequest(revision=pending.revision),
                                     "automated", True, "2026-03-01T12:00:01Z").to_dict()
    return obj


@dataclass(frozen=True)
class Case:
    automated: dict[str, Any] | None
    last: Last | None
    due: bool
    reason: str  # a part of the reason
    sync_status: str = "OutOfSync"
    pending: Pending | None = None
    after: float = 0.0  # seconds after FINISHED
    attempt: int = 1
    retry_at: float | None = None  # seconds after FINISHED


CASES: dict[str, Case] = {
    "not automated": Case(None, None, False, "automated sync is off"),
    "synced": Case(AUTO, None, False, "the app is Synced", sync_status="Synced"),
    "unknown": Case(AUTO, None, False, "the app is Unknown", sync_status="Unknown"),
    "no previous op": Case(AUTO, None, True, "no sync attempted yet"),
    "new revision": Case(AUTO, Last(revision=OLD), True, "new revision aaaaaaaaaaaa"),
    "new revision after a failure": Case(AUTO, Last(st.FAILED_PHASE, OLD), True,
                                         "new revision"),
    "spec changed": Case(AUTO, Last(spec="0123456789abcdef"), True, "spec changed"),
    "spec changed after a failure": Case(AUTO, Last(st.FAILED_PHASE, spec="0123456789abcdef"),
                                         True, "spec changed"),
    "same revision succeeded": Case(AUTO, Last(), False, "selfHeal is off", after=3600),
    "same revision failed": Case(AUTO, Last(st.FAILED_PHASE), False, "selfHeal is off",
                                 after=3600),
    "same revision errored": Case(AUTO, Last(st.ERROR_PHASE), False, "error", after=3600),
    "no spec hash stored (Argo CD)": Case(AUTO, Last(spec=""), False, "selfHeal is off"),
    "self-heal before backoff": Case(HEAL, Last(), False, "self-heal backoff", after=9,
                                     retry_at=10),
    "self-heal at backoff": Case(HEAL, Last(), True, "self-heal: drift", after=10),
    "self-heal long after": Case(HEAL, Last(), True, "self-heal: drift", after=5000),
    "failed attempt 1 before": Case(HEAL, Last(st.FAILED_PHASE), False, "backoff", after=9.5,
                                    attempt=2, retry_at=10),
    "failed attempt 1 due": Case(HEAL, Last(st.FAILED_PHASE), True, "retry #1", after=10,
                                 attempt=2),
    "failed attempt 2 before": Case(HEAL, Last(st.FAILED_PHASE, attempt=2), False, "backoff",
                                    after=19, attempt=3, retry_at=20),
    "failed attempt 2 due": Case(HEAL, Last(st.FAILED_PHASE, attempt=2), True, "retry #2",
                                 after=20, attempt=3),
    "failed attempt 3 capped": Case(HEAL, Last(st.FAILED_PHASE, attempt=3), False, "backoff",
                                    after=34, attempt=4, retry_at=35),
    "failed attempt 3 due at cap": Case(HEAL, Last(st.FAILED_PHASE, attempt=3), True,
                                        "retry #3", after=35, attempt=4),
    "failed attempt 12 capped": Case(HEAL, Last(st.FAILED_PHASE, attempt=12), True,
                                     "retry #12", after=35, attempt=13),
    "failed attempt 12 before cap": Case(HEAL, Last(st.FAILED_PHASE, attempt=12), False,
                                         "backoff", after=30, attempt=13, retry_at=35),
    "manual sync failed": Case(HEAL, Last(st.FAILED_PHASE, automated=False, attempt=1),
                               True, "retry", after=10, attempt=1),
    "manual sync failed before": Case(HEAL, Last(st.FAILED_PHASE, automated=False), False,
                                      "backoff", after=1, attempt=1, retry_at=10),
    "success resets the backoff": Case(HEAL, Last(st.SUCCEEDED, attempt=5), True, "drift",
                                       after=10, attempt=1),
    "pending same revision": Case(AUTO, None, False, "already requested", pending=Pending()),
    "pending same revision with heal": Case(HEAL, Last(), False, "already requested",
                                            pending=Pending(), after=5000),
    "pending older revision": Case(AUTO, Last(revision=OLD), True, "Git moved",
                                   pending=Pending(OLD)),
    "running same revision": Case(HEAL, Last(st.RUNNING), False, "is running", after=5000),
    "running not pinned yet": Case(AUTO, Last(st.RUNNING, revision=""), False, "is running"),
    "terminating same revision": Case(AUTO, Last(st.TERMINATING), False, "is running"),
    "running older revision": Case(AUTO, Last(st.RUNNING, OLD), True, "queued behind it"),
    "request is the running op": Case(AUTO, Last(st.RUNNING, OLD, id="same00000001"), True,
                                      "queued behind it", pending=Pending(OLD, "same00000001")),
    "dry run ignored": Case(AUTO, Last(dry_run=True), True, "no sync attempted yet"),
    "failed dry run ignored": Case(AUTO, Last(st.FAILED_PHASE, dry_run=True), True,
                                   "no sync attempted yet"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_auto_sync_due(case: Case) -> None:
    app = application(automated=case.automated)
    obj = stored(app, case.last, case.pending)
    got = auto_sync_due(app, case.sync_status, REV, obj, SETTINGS, now=T0 + case.after)
    assert got.due is case.due, got.reason
    assert case.reason in got.reason
    if case.due or case.retry_at is not None:
        assert got.attempt == case.attempt
    if case.retry_at is None:
        assert got.retry_at is None
    else:
        assert got.retry_at == pytest.approx(T0 + case.retry_at)


def test_auto_sync_backoff_doubles_and_is_capped() -> None:
    app = application(automated=HEAL)
    waits = []
    for attempt in range(1, 8):
        obj = stored(app, Last(st.FAILED_PHASE, attempt=attempt))
        got = auto_sync_due(app, "OutOfSync", REV, obj, SETTINGS, now=T0)
        assert not got.due and got.retry_at is not None and got.attempt == attempt + 1
        waits.append(got.retry_at - T0)
    assert waits == [10, 20, 35, 35, 35, 35, 35]


def test_spec_hash_ignores_volatile_fields_and_sees_real_changes() -> None:
    app = application(automated=AUTO)
    assert spec_hash(replace(app, resource_version="99", uid="u")) == spec_hash(app)
    assert spec_hash(application(automated=AUTO, path="other")) != spec_hash(app)
    assert spec_hash(application(automated=HEAL)) != spec_hash(app)


def test_pending_request_is_not_the_running_one() -> None:
    app = application(automated=AUTO)
    obj = stored(app, Last(st.RUNNING, id="x00000000001"), Pending(id="x00000000001"))
    assert pending_request(obj) is None
    obj = stored(app, Last(st.SUCCEEDED, id="x00000000001"), Pending(id="y00000000002"))
    request = pending_request(obj)
    assert request is not None and request.id == "y00000000002"
    assert pending_request({"metadata": {}}) is None


# ------------------------------------------------------------------------------ requests



def stored_obj(env: Env, name: str) -> dict[str, Any]:
    obj = env.apps.get(name)
    assert obj is not None
    return obj


def set_state(env: Env, name: str, state: OperationState) -> None:
    env.apps.update_status(name, lambda status, _: {**status,
                                                    "operationState": state.to_dict()})


def test_request_sync_writes_the_operation(env: Env) -> None:
    env.app("web", "app")
    operation = request_sync(env.apps, "web", SyncRequest(revision="r1", prune=True),
                             initiated_by="alice")
    obj = stored_obj(env, "web")
    assert obj["operation"] == operation.to_dict()
    assert operation.sync == SyncRequest(revision="r1", prune=True)
    assert operation.initiated_by == "alice" and not operation.automated
    pending = pending_request(obj)
    assert pending is not None and pending.id == operation.id
    # Nothing runs yet: the status has no operationState.
    assert current_state(obj) is None


def test_request_for_a_missing_app(env: Env) -> None:
    with pytest.raises(AppNotFound):
        request_sync(env.apps, "nope", SyncRequest(), initiated_by="x")
    with pytest.raises(AppNotFound):
        request_terminate(env.apps, "nope")


def test_a_second_request_before_the_start_merges(env: Env) -> None:
    env.app("web", "app")
    cm = ResourceKey("", "ConfigMap", env.dest, "a")
    first = request_sync(env.apps, "web", SyncRequest(revision="r1", prune=True,
                                                      resources=(cm,)),
                         initiated_by="automated", automated=True, attempt=2)
    second = request_sync(env.apps, "web", SyncRequest(revision="r2", force=True),
                          initiated_by="bob")
    assert second.id == first.id
    assert second.sync == SyncRequest(revision="r2", prune=True, force=True, resources=())
    assert second.initiated_by == "bob"
    # A person asked too: the merged request is no longer automated, and keeps the attempt.
    assert not second.automated and second.attempt == 2
    pending = pending_request(stored_obj(env, "web"))
    assert pending is not None and pending.id == first.id and pending.sync.revision == "r2"


def test_a_request_while_one_runs_is_queued_behind_it(env: Env) -> None:
    env.app("web", "app")
    running = request_sync(env.apps, "web", SyncRequest(revision="r1", prune=True),
                           initiated_by="alice")
    state = OperationState(running, revision="r1", message="applied Sync wave 0")
    set_state(env, "web", state)
    assert pending_request(stored_obj(env, "web")) is None  # it is the running one
    queued = request_sync(env.apps, "web", SyncRequest(revision="r2"), initiated_by="bob")
    assert queued.id != running.id
    # Not merged with the running operation's request.
    assert queued.sync == SyncRequest(revision="r2")
    obj = stored_obj(env, "web")
    pending = pending_request(obj)
    assert pending is not None and pending.id == queued.id
    # The running operation is not disturbed.
    now_state = current_state(obj)
    assert now_state is not None and now_state.operation.id == running.id
    assert now_state.phase == st.RUNNING and now_state.message == "applied Sync wave 0"
    # A third request merges into the queued one, not the running one.
    third = request_sync(env.apps, "web", SyncRequest(revision="r3"), initiated_by="carol")
    assert third.id == queued.id and third.sync.revision == "r3"


def test_a_request_racing_the_start_of_the_pending_one_is_not_merged(env: Env) -> None:
    env.app("web", "app")
    pending = request_sync(env.apps, "web", SyncRequest(revision="r1"), initiated_by="alice")
    calls = 0

    def start_it_meanwhile() -> None:
        # Between the request's read and its write, the step starts the pending operation.
        nonlocal calls
        calls += 1
        if calls == 1:
            set_state(env, "web", OperationState(pending, revision="r1"))

    queued = request_sync(env.apps, "web", SyncRequest(revision="r2"), initiated_by="bob",
                          fence=start_it_meanwhile)
    assert calls == 2  # the first write was refused (stale resourceVersion), then retried
    assert queued.id != pending.id and queued.sync.revision == "r2"
    obj = stored_obj(env, "web")
    request = pending_request(obj)
    assert request is not None and request.id == queued.id
    state = current_state(obj)
    assert state is not None and state.operation.id == pending.id
    assert state.operation.sync.revision == "r1"


def test_dry_run_and_real_requests_do_not_merge(env: Env) -> None:
    env.app("web", "app")
    real = request_sync(env.apps, "web", SyncRequest(revision="r1"), initiated_by="alice")
    with pytest.raises(OperationInProgress, match="already requested"):
        request_sync(env.apps, "web", SyncRequest(dry_run=True), initiated_by="bob")
    pending = pending_request(stored_obj(env, "web"))
    assert pending is not None and pending.id == real.id and not pending.sync.dry_run
    env.app("dry", "app")
    request_sync(env.apps, "dry", SyncRequest(dry_run=True), initiated_by="bob")
    with pytest.raises(OperationInProgress, match="dry-run sync is already requested"):
        request_sync(env.apps, "dry", SyncRequest(), initiated_by="alice")


def test_a_dry_run_while_an_operation_runs_is_refused(env: Env) -> None:
    env.app("web", "app")
    running = request_sync(env.apps, "web", SyncRequest(), initiated_by="alice")
    set_state(env, "web", OperationState(running))
    with pytest.raises(OperationInProgress, match="running"):
        request_sync(env.apps, "web", SyncRequest(dry_run=True), initiated_by="bob")
    # A finished one does not stand in the way.
    set_state(env, "web", OperationState(running, phase=st.SUCCEEDED, finished_at=FINISHED))
    dry = request_sync(env.apps, "web", SyncRequest(dry_run=True), initiated_by="bob")
    assert dry.id != running.id and dry.sync.dry_run


def test_terminate_withdraws_a_pending_request(env: Env) -> None:
    env.app("web", "app")
    assert request_terminate(env.apps, "web") is False  # nothing to terminate
    request_sync(env.apps, "web", SyncRequest(revision="r1"), initiated_by="alice")
    assert request_terminate(env.apps, "web") is True
    obj = stored_obj(env, "web")
    assert "operation" not in obj and pending_request(obj) is None
    assert request_terminate(env.apps, "web") is False


def test_terminate_flips_a_running_state_to_terminating(env: Env) -> None:
    env.app("web", "app")
    running = request_sync(env.apps, "web", SyncRequest(revision="r1"), initiated_by="alice")
    set_state(env, "web", OperationState(running, revision="r1"))
    queued = request_sync(env.apps, "web", SyncRequest(revision="r2"), initiated_by="bob")
    assert request_terminate(env.apps, "web") is True
    obj = stored_obj(env, "web")
    state = current_state(obj)
    assert state is not None and state.phase == st.TERMINATING
    assert state.operation.id == running.id and state.revision == "r1"
    # The queued request was withdrawn too.
    assert pending_request(obj) is None and queued.id != running.id
    # Terminating already, or finished: nothing more to do.
    assert request_terminate(env.apps, "web") is False
    set_state(env, "web", OperationState(running, phase=st.FAILED_PHASE,
                                         finished_at=FINISHED))
    assert request_terminate(env.apps, "web") is False
    state = current_state(stored_obj(env, "web"))
    assert state is not None and state.phase == st.FAILED_PHASE


def test_concurrent_requests_end_in_one_pending_operation(env: Env) -> None:
    env.app("web", "app")
    errors: list[BaseException] = []
    returned: list[Operation] = []
    gave_up = [0]
    lock = threading.Lock()
    per_thread = 20

    def request(t: int, i: int) -> Operation:
        key = ResourceKey("", "ConfigMap", env.dest, f"t{t}-{i}")
        for _ in range(5):
            try:
                return request_sync(env.apps, "web", SyncRequest(
                    revision=f"t{t}-{i}", resources=(key,)), initiated_by=f"user{t}")
            except OperationInProgress as exc:
                # Under contention request_sync may give up after its conflict retries and
                # say "try again" (nothing was written): the caller does so.
                assert "kept changing" in str(exc)
                with lock:
                    gave_up[0] += 1
        raise AssertionError(f"request t{t}-{i} kept failing")

    def worker(t: int) -> Callable[[], None]:
        def run() -> None:
            for i in range(per_thread):
                try:
                    got = request(t, i)
                except BaseException as exc:  # reported below
                    with lock:
                        errors.append(exc)
                    return
                with lock:
                    returned.append(got)
        return run

    threads = [threading.Thread(target=worker(t)) for t in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert errors == []
    assert len(returned) == 2 * per_thread
    pending = pending_request(stored_obj(env, "web"))
    assert pending is not None
    # Every call was merged into the one pending operation.
    assert {op.id for op in returned} == {pending.id}
    # No write was lost: each request's resource is in the union.
    assert {k.name for k in pending.sync.resources} == {
        f"t{t}-{i}" for t in range(2) for i in range(per_thread)}
    # The newest revision is the last one a thread wrote.
    assert pending.sync.revision in ("t0-19", "t1-19")
    assert gave_up[0] < 2 * per_thread


def test_two_overlapping_refreshes_request_one_automated_sync(env: Env) -> None:
    """Both read the app before either wrote (each found no attempt yet); the one writing
    second must not queue a second automated operation of the same revision, whether the
    first is still requested, already running, or even finished."""
    for when in ("requested", "running", "finished"):
        name = f"web-{when}"
        env.app(name, "app")
        read_by_second = stored_obj(env, name)
        first = request_sync(env.apps, name, SyncRequest(revision="r1"),
                             initiated_by="automated", automated=True)
        if when != "requested":
            state = OperationState(first, revision="r1")
            if when == "finished":
                state.phase = "Failed"
            set_state(env, name, state)
            env.apps.remove_if(name, "/operation/id", first.id, remove="/operation")
        second = request_sync(env.apps, name, SyncRequest(revision="r1"),
                              initiated_by="automated", automated=True, obj=read_by_second)
        assert second.id == first.id, when
        pending = pending_request(stored_obj(env, name))
        if when == "requested":
            assert pending is not None and pending.id == first.id
        else:
            assert pending is None, when  # nothing queued behind the first
    # A user's request is never turned away that way.
    env.app("web-user", "app")
    read_before = stored_obj(env, "web-user")
    mine = request_sync(env.apps, "web-user", SyncRequest(revision="r1"), initiated_by="alice")
    theirs = request_sync(env.apps, "web-user", SyncRequest(revision="r2"),
                          initiated_by="bob", obj=read_before)
    assert theirs.id == mine.id and theirs.sync.revision == "r2"  # merged, newest wins
