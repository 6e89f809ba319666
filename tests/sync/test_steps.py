"""`decide`: the next step of a sync operation from the plan, the results so far and health.

Pure: plans are built from manifests with `build_plan`, results and healths are plain dicts,
no cluster anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gitops_tasks.health import Health, HealthStatus
from gitops_tasks.model import keys
from gitops_tasks.model import operation as op
from gitops_tasks.model import status as st
from gitops_tasks.model.operation import ResourceResult
from gitops_tasks.model.resources import ResourceKey
from gitops_tasks.sync import Phase, Plan, SyncTask
from gitops_tasks.sync.steps import Decision, Next, decide

from .helpers import crd, key, obj, plan

NS = "shop"

Results = dict[tuple[ResourceKey, str], ResourceResult]
Healths = dict[ResourceKey, Health | None]


def wave(n: int) -> dict[str, str]:
    return {keys.SYNC_WAVE: str(n)}


def hook(name: str, phase: str, n: int = 0) -> dict[str, Any]:
    return obj("Job", name, NS, annotations={keys.HOOK: phase, **wave(n)},
               spec={"template": {"spec": {"containers": [{"name": "m", "image": "busybox"}]}}})


def deployment(name: str, n: int = 0) -> dict[str, Any]:
    return obj("Deployment", name, NS, annotations=wave(n), spec={"replicas": 1})


def configmap(name: str, n: int = 0, namespace: str = NS) -> dict[str, Any]:
    return obj("ConfigMap", name, namespace, annotations=wave(n), data={"k": "v"})


def done(tasks: Iterable[SyncTask], result: str = st.APPLIED, *, hook_phase: str = "",
         message: str = "") -> Results:
    """Results for `tasks` as the executor reports a finished task."""
    out: Results = {}
    for t in tasks:
        r = ResourceResult(t.key, "v1", t.phase.value, t.wave, result, message,
                           hook=t.is_hook, hook_phase=hook_phase)
        out[r.ident] = r
    return out


def healthy(p: Plan) -> Healths:
    return {t.key: Health(HealthStatus.HEALTHY) for t in p.tasks}


def group(p: Plan, index: int) -> list[SyncTask]:
    return p.waves()[index][2]


def run(p: Plan, results: Mapping[tuple[ResourceKey, str], ResourceResult] | None = None,
        healths: Mapping[ResourceKey, Health | None] | None = None, *,
        dry_run: bool = False) -> Decision:
    return decide(p, results or {}, healths or {}, dry_run=dry_run)


def names(d: Decision) -> list[str]:
    return [f"{t.key.kind}/{t.key.name}" for t in d.tasks]


# ------------------------------------------------------------------------------ waves

def two_waves() -> Plan:
    return plan([deployment("db", 0), configmap("cfg", 0), deployment("web", 1)])


def test_first_group_runs_first_and_alone() -> None:
    p = two_waves()
    d = run(p)
    assert d.next is Next.RUN
    assert names(d) == ["ConfigMap/cfg", "Deployment/db"]
    assert d.wave == ("Sync", 0)
    assert d.degraded == ()


def test_later_wave_waits_while_an_earlier_deployment_progresses() -> None:
    p = two_waves()
    results = done(group(p, 0))
    db = key(deployment("db"))
    progressing: Healths = {db: Health(HealthStatus.PROGRESSING, "0 of 1 updated replicas"),
                            key(configmap("cfg")): None}
    d = run(p, results, progressing)
    assert d.next is Next.WAIT and d.tasks == ()
    assert d.wave == ("Sync", 1)
    assert "Deployment.apps shop/db (Progressing: 0 of 1 updated replicas)" in d.message
    # Unknown or Missing is not good enough either.
    for status in (HealthStatus.MISSING, HealthStatus.UNKNOWN):
        assert run(p, results, {db: Health(status)}).next is Next.WAIT
    # Once Healthy, wave 1 runs.
    d = run(p, results, {db: Health(HealthStatus.HEALTHY)})
    assert d.next is Next.RUN and names(d) == ["Deployment/web"]
    assert d.wave == ("Sync", 1)


def test_unknown_health_key_and_no_health_notion_do_not_hold_the_next_wave() -> None:
    p = two_waves()
    # No entry at all (and None: a kind without health, like a ConfigMap) count as ready.
    d = run(p, done(group(p, 0)), {key(configmap("cfg")): None})
    assert d.next is Next.RUN and names(d) == ["Deployment/web"]


def test_suspended_counts_as_healthy() -> None:
    p = two_waves()
    d = run(p, done(group(p, 0)),
            {key(deployment("db")): Health(HealthStatus.SUSPENDED, "paused")})
    assert d.next is Next.RUN and names(d) == ["Deployment/web"]


def test_waiting_message_names_at_most_three() -> None:
    p = plan([deployment(f"d{i}", 0) for i in range(5)] + [deployment("last", 1)])
    progressing: Healths = {t.key: Health(HealthStatus.PROGRESSING) for t in p.tasks}
    d = run(p, done(group(p, 0)), progressing)
    assert d.next is Next.WAIT
    assert d.message.count("Deployment.apps") == 3 and d.message.endswith("and 2 more")


def test_degraded_earlier_resource_fails_with_degraded_set() -> None:
    p = two_waves()
    db = key(deployment("db"))
    d = run(p, done(group(p, 0)),
            {db: Health(HealthStatus.DEGRADED, "ProgressDeadlineExceeded")})
    assert d.next is Next.FAIL
    assert d.tasks == ()
    assert d.degraded == ((db, "Sync", "became Degraded: ProgressDeadlineExceeded"),)
    assert d.wave == ("Sync", 1)
    assert "ProgressDeadlineExceeded" in d.message
    # Without a message.
    d = run(p, done(group(p, 0)), {db: Health(HealthStatus.DEGRADED)})
    assert d.degraded == ((db, "Sync", "became Degraded"),)


def test_degraded_wins_over_progressing() -> None:
    p = plan([deployment("a", 0), deployment("b", 0), deployment("c", 1)])
    d = run(p, done(group(p, 0)), {key(deployment("a")): Health(HealthStatus.PROGRESSING),
                                   key(deployment("b")): Health(HealthStatus.DEGRADED)})
    assert d.next is Next.FAIL and [k.name for k, _, _ in d.degraded] == ["b"]


def test_hooks_and_prunes_of_earlier_waves_are_not_health_gated() -> None:
    old = configmap("old", 0)
    p = plan([hook("migrate", "PreSync"), deployment("web", 1)], [old], prune=True)
    assert [(g[0], g[1], [t.action.value for t in g[2]]) for g in p.waves()] == [
        (Phase.PRE_SYNC, 0, ["hook"]), (Phase.SYNC, 0, ["prune"]), (Phase.SYNC, 1, ["apply"])]
    # The hook completed (its Job may show anything afterwards) and the pruned object is
    # gone (Missing): wave 1 runs.
    results = {**done(group(p, 0), hook_phase=op.HOOK_SUCCEEDED),
               **done(group(p, 1), st.PRUNED)}
    d = run(p, results, {key(hook("migrate", "PreSync")): Health(HealthStatus.DEGRADED),
                         key(old): Health(HealthStatus.MISSING)})
    assert d.next is Next.RUN
    assert names(d) == ["Deployment/web"]


def test_last_group_does_not_wait_for_health() -> None:
    p = two_waves()
    results = done(p.tasks)
    d = run(p, results, {t.key: Health(HealthStatus.PROGRESSING) for t in p.tasks})
    assert d.next is Next.SUCCEED


def test_everything_done_succeeds() -> None:
    p = plan([hook("pre", "PreSync"), configmap("cfg"), deployment("web", 2),
              hook("post", "PostSync"), hook("onfail", "SyncFail")])
    results = {**done([t for t in p.tasks if not t.is_hook]),
               **done([t for t in p.tasks if t.is_hook and t.phase is not Phase.SYNC_FAIL],
                      hook_phase=op.HOOK_SUCCEEDED)}
    d = run(p, results, healthy(p))
    assert d.next is Next.SUCCEED
    assert d.tasks == () and d.degraded == ()


def test_an_empty_plan_succeeds() -> None:
    assert run(Plan(())).next is Next.SUCCEED


def test_phases_in_order_and_post_sync_only_once_healthy() -> None:
    p = plan([hook("post", "PostSync"), deployment("web"), hook("pre", "PreSync")])
    d = run(p)
    assert d.next is Next.RUN and names(d) == ["Job/pre"] and d.wave == ("PreSync", 0)
    results = done(group(p, 0), hook_phase=op.HOOK_SUCCEEDED)
    d = run(p, results)
    assert names(d) == ["Deployment/web"] and d.wave == ("Sync", 0)
    results.update(done(group(p, 1)))
    web = key(deployment("web"))
    d = run(p, results, {web: Health(HealthStatus.PROGRESSING)})
    assert d.next is Next.WAIT and d.wave == ("PostSync", 0)
    d = run(p, results, {web: Health(HealthStatus.HEALTHY)})
    assert d.next is Next.RUN and names(d) == ["Job/post"] and d.wave == ("PostSync", 0)


# ------------------------------------------------------------------------------ starts_group

def test_starts_group_for_a_later_group_only_when_none_of_it_ran() -> None:
    p = plan([configmap("a", 0), configmap("b", 1), configmap("c", 1)])
    d = run(p, done(group(p, 0)))
    assert d.next is Next.RUN and d.starts_group is True
    # Half of wave 1 ran (a step that died half-way): the rest does not start the group again.
    first = group(p, 1)[0]
    d = run(p, {**done(group(p, 0)), **done([first])})
    assert d.next is Next.RUN and names(d) == ["ConfigMap/c"] and d.starts_group is False


def test_first_group_does_not_start_a_group() -> None:
    p = plan([configmap("a", 0), configmap("b", 1)])
    d = run(p)
    assert d.next is Next.RUN and names(d) == ["ConfigMap/a"]
    assert d.starts_group is False


# ------------------------------------------------------------------------------ running things

def test_a_running_hook_holds_the_operation() -> None:
    p = plan([hook("migrate", "PreSync"), deployment("web")])
    results = done(group(p, 0), hook_phase=op.HOOK_RUNNING, message="hook started")
    d = run(p, results, healthy(p))
    assert d.next is Next.WAIT and d.tasks == ()
    assert d.message == "waiting for Job.batch shop/migrate (hook started)"
    results = done(group(p, 0), hook_phase=op.HOOK_SUCCEEDED)
    assert names(run(p, results, healthy(p))) == ["Deployment/web"]


def test_running_holds_even_when_everything_else_is_done() -> None:
    p = plan([configmap("cfg"), hook("post", "PostSync")])
    results = {**done(group(p, 0)), **done(group(p, 1), hook_phase=op.HOOK_RUNNING)}
    assert run(p, results).next is Next.WAIT


def test_cr_waits_for_its_crd_in_the_same_wave() -> None:
    widget = obj("Widget", "w1", NS, api_version="example.com/v1")
    cm = configmap("cfg")
    p = plan([widget, crd("example.com", "Widget", "widgets"), cm])
    crd_key = ResourceKey("apiextensions.k8s.io", "CustomResourceDefinition", "",
                          "widgets.example.com")
    (widget_task,) = [t for t in p.tasks if t.key.kind == "Widget"]
    assert widget_task.depends_on == (crd_key,)
    assert len(p.waves()) == 1
    d = run(p)
    assert d.next is Next.RUN
    assert names(d) == ["CustomResourceDefinition/widgets.example.com", "ConfigMap/cfg"]
    assert d.starts_group is False  # the first group: no wave delay before it
    # The CRD was applied but is not established yet: the operation waits.
    results = done(d.tasks)
    results[(crd_key, "Sync")].hook_phase = op.HOOK_RUNNING
    results[(crd_key, "Sync")].message = "waiting for the CRD to be established"
    d = run(p, results)
    assert d.next is Next.WAIT and "widgets.example.com" in d.message
    # Established: the Widget runs, in the same group.
    results[(crd_key, "Sync")].hook_phase = op.HOOK_SUCCEEDED
    d = run(p, results)
    assert d.next is Next.RUN and names(d) == ["Widget/w1"]
    assert d.starts_group is False and d.wave == ("Sync", 0)


def test_tasks_after_a_blocked_cr_wait_with_it() -> None:
    # Order is kept: the CRD's custom resource stops the batch, later kinds wait behind it.
    p = plan([crd("example.com", "Widget", "widgets"),
              obj("Widget", "w1", NS, api_version="example.com/v1"),
              obj("Zebra", "z", NS, api_version="zoo.example.com/v1")])
    assert [t.key.kind for t in p.tasks] == ["CustomResourceDefinition", "Widget", "Zebra"]
    d = run(p)
    assert names(d) == ["CustomResourceDefinition/widgets.example.com"]


def test_a_failed_crd_fails_the_operation_rather_than_waiting() -> None:
    p = plan([crd("example.com", "Widget", "widgets"),
              obj("Widget", "w1", NS, api_version="example.com/v1")])
    results = done(run(p).tasks, st.FAILED, message="invalid")
    d = run(p, results)
    assert d.next is Next.FAIL and "invalid" in d.message


def test_dry_run_custom_resource_runs_once_the_crd_was_dry_run() -> None:
    p = plan([crd("example.com", "Widget", "widgets"),
              obj("Widget", "w1", NS, api_version="example.com/v1")])
    d = run(p, dry_run=True)
    assert names(d) == ["CustomResourceDefinition/widgets.example.com"]
    d = run(p, done(d.tasks, st.WOULD_APPLY), dry_run=True)
    assert names(d) == ["Widget/w1"]


def test_a_namespace_in_the_same_batch_does_not_block() -> None:
    other = "fresh"
    p = plan([configmap("cfg", namespace=other),
              obj("Namespace", other), deployment("web")])
    (cm_task,) = [t for t in p.tasks if t.key.kind == "ConfigMap"]
    assert cm_task.depends_on == (ResourceKey("", "Namespace", "", other),)
    d = run(p)
    assert d.next is Next.RUN
    assert names(d) == ["Namespace/fresh", "ConfigMap/cfg", "Deployment/web"]


# ------------------------------------------------------------------------------ failures

def fail_plan() -> Plan:
    return plan([hook("pre", "PreSync"), configmap("cfg"), deployment("web", 1),
                 hook("cleanup", "SyncFail", 1), hook("notify", "SyncFail", 0)])


def test_a_failure_runs_the_sync_fail_hooks_then_fails() -> None:
    p = fail_plan()
    pre, cfg = group(p, 0)[0], group(p, 1)[0]
    results = {**done([pre], hook_phase=op.HOOK_SUCCEEDED),
               **done([cfg], st.FAILED, message="admission webhook denied")}
    d = run(p, results, healthy(p))
    assert d.next is Next.RUN
    assert names(d) == ["Job/notify", "Job/cleanup"]
    assert {t.phase for t in d.tasks} == {Phase.SYNC_FAIL}
    assert d.wave == ("SyncFail", 0)
    assert d.message == "running SyncFail hooks"
    # The SyncFail hooks run: wait for them.
    running = done(d.tasks, hook_phase=op.HOOK_RUNNING)
    assert run(p, {**results, **running}, healthy(p)).next is Next.WAIT
    # They completed: the operation fails with the original failure.
    finished = done(d.tasks, hook_phase=op.HOOK_SUCCEEDED)
    d = run(p, {**results, **finished}, healthy(p))
    assert d.next is Next.FAIL
    assert d.message == "1 resource(s) failed: ConfigMap shop/cfg: admission webhook denied"


def test_a_failed_sync_fail_hook_is_mentioned() -> None:
    p = fail_plan()
    cfg = group(p, 1)[0]
    fail_hooks = [t for t in p.tasks if t.phase is Phase.SYNC_FAIL]
    results = {**done([cfg], st.FAILED, message="boom"),
               **done(fail_hooks, st.FAILED, hook_phase=op.HOOK_FAILED, message="oops")}
    d = run(p, results)
    assert d.next is Next.FAIL
    assert "ConfigMap shop/cfg: boom" in d.message
    assert d.message.endswith("(a SyncFail hook failed too)")
    # The failed SyncFail hooks are not themselves counted as the failure.
    assert d.message.startswith("1 resource(s) failed")


def test_a_failed_hook_counts_as_a_failure() -> None:
    p = fail_plan()
    pre = group(p, 0)[0]
    results = done([pre], st.FAILED, hook_phase=op.HOOK_FAILED, message="hook failed")
    d = run(p, results)
    assert d.next is Next.RUN and names(d) == ["Job/notify", "Job/cleanup"]
    # A terminated hook, too.
    results = done([pre], st.APPLIED, hook_phase=op.HOOK_TERMINATED, message="terminated")
    assert run(p, results).next is Next.RUN


def test_a_failure_without_sync_fail_hooks_fails_at_once() -> None:
    p = two_waves()
    results = done(group(p, 0), st.FAILED, message="nope")
    d = run(p, results)
    assert d.next is Next.FAIL and d.tasks == ()
    assert d.message.startswith("2 resource(s) failed")


def test_a_dry_run_failure_runs_no_sync_fail_hooks() -> None:
    p = fail_plan()
    cfg = group(p, 1)[0]
    d = run(p, done([cfg], st.FAILED, message="x"), dry_run=True)
    assert d.next is Next.FAIL


def test_sync_fail_hooks_never_run_on_success() -> None:
    p = fail_plan()
    normal = [t for t in p.tasks if t.phase is not Phase.SYNC_FAIL]
    results = done(normal, hook_phase="")
    for t in normal:
        if t.is_hook:
            results[(t.key, t.phase.value)].hook_phase = op.HOOK_SUCCEEDED
    d = run(p, results, healthy(p))
    assert d.next is Next.SUCCEED


# ------------------------------------------------------------------------------ dry run

def test_dry_run_never_waits_for_health() -> None:
    p = two_waves()
    results = done(group(p, 0), st.WOULD_APPLY)
    db = key(deployment("db"))
    for status in (HealthStatus.PROGRESSING, HealthStatus.MISSING, HealthStatus.DEGRADED):
        d = run(p, results, {db: Health(status)}, dry_run=True)
        assert d.next is Next.RUN and names(d) == ["Deployment/web"], status
        assert d.degraded == ()
    # The same inputs without dry run: wait.
    assert run(p, results, {db: Health(HealthStatus.PROGRESSING)}).next is Next.WAIT
