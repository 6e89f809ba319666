"""Where a sync operation stands and what its next step is: a pure function of the plan, the
results recorded so far and the health of the live objects.

Called by the step function (`gitops_tasks.operations.SyncStepper`) after every change it
makes; the answer is one of: run these tasks now, wait (something is progressing), the
operation failed, or it succeeded. Nothing here performs I/O, so every rule below is tested
without a cluster. The rules are Argo CD's (gitops-engine `sync_context.Sync`):

- groups of tasks (phase, wave) run in order; a group starts only once every resource applied by
  the earlier groups is Healthy (a Degraded one fails the operation), so PostSync hooks run only
  when everything is Healthy. The last group does not wait for health: the operation succeeds
  once it is applied and its hooks completed (health is reported by the refresh);
- a running hook, a CRD not yet established or a hook object still being deleted holds the
  operation; within a group, a task that needs a CRD of the same group waits for it;
- a failed task (or a Degraded resource) fails the operation after the SyncFail hooks ran;
- a dry run applies nothing, so it never waits for health.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from ..health import Health, HealthStatus
from ..model.operation import ResourceResult
from ..model.resources import ResourceKey
from .plan import Action, Phase, Plan, SyncTask

# Health that lets the next wave start: Healthy, or Suspended (a paused Deployment, a suspended
# CronJob: waiting for them would wait forever).
_GOOD = (HealthStatus.HEALTHY, HealthStatus.SUSPENDED)


class Next(StrEnum):
    RUN = "run"
    WAIT = "wait"
    FAIL = "fail"
    SUCCEED = "succeed"


@dataclass(frozen=True)
class Decision:
    next: Next
    tasks: tuple[SyncTask, ...] = ()
    message: str = ""
    wave: tuple[str, int] | None = None
    # A group after others starts with these tasks (none of its tasks ran yet): the wave
    # delay applies.
    starts_group: bool = False
    # Resources of earlier waves that became Degraded: the caller records them as failed.
    degraded: tuple[tuple[ResourceKey, str, str], ...] = ()  # (key, phase, health message)


Results = Mapping[tuple[ResourceKey, str], ResourceResult]


def decide(plan: Plan, results: Results, healths: Mapping[ResourceKey, Health | None], *,
           dry_run: bool = False) -> Decision:
    groups = [g for g in plan.waves() if g[0] is not Phase.SYNC_FAIL]
    fail_hooks = [t for g in plan.waves() if g[0] is Phase.SYNC_FAIL for t in g[2]]

    running = [r for r in results.values() if r.running]
    if running:
        return Decision(Next.WAIT, message="waiting for " + _describe(running))

    failed = [r for r in results.values() if r.failed and r.phase != Phase.SYNC_FAIL.value]
    if failed:
        todo = [t for t in fail_hooks if (t.key, t.phase.value) not in results]
        if todo and not dry_run:
            return Decision(Next.RUN, tuple(todo), "running SyncFail hooks",
                            (Phase.SYNC_FAIL.value, todo[0].wave))
        return Decision(Next.FAIL, message=_failure_message(failed, results))

    for index, (phase, wave, tasks) in enumerate(groups):
        pending = [t for t in tasks if (t.key, t.phase.value) not in results]
        if not pending:
            continue
        slot = (phase.value, wave)
        # A group after others starts now: the health gate and the wave delay apply.
        starts = len(pending) == len(tasks) and index > 0
        if starts and not dry_run:
            degraded, waiting = _health_gate(groups[:index], healths)
            if degraded:
                return Decision(Next.FAIL, wave=slot, degraded=tuple(degraded),
                                message="; ".join(f"{k}: {m}" for k, _, m in degraded))
            if waiting:
                return Decision(Next.WAIT, wave=slot,
                                message="waiting for healthy state of " + ", ".join(waiting[:3])
                                + (f" and {len(waiting) - 3} more" if len(waiting) > 3 else ""))
        runnable = _runnable(pending, results)
        if not runnable:
            return Decision(Next.WAIT, wave=slot, message="waiting for " + ", ".join(
                str(d) for d in pending[0].depends_on) + " to be established")
        return Decision(Next.RUN, tuple(runnable), wave=slot, starts_group=starts)
    return Decision(Next.SUCCEED)


def _health_gate(earlier: Sequence[tuple[Phase, int, list[SyncTask]]],
                 healths: Mapping[ResourceKey, Health | None]
                 ) -> tuple[list[tuple[ResourceKey, str, str]], list[str]]:
    degraded: list[tuple[ResourceKey, str, str]] = []
    waiting: list[str] = []
    for phase, _, tasks in earlier:
        for task in tasks:
            if task.action is not Action.APPLY:
                continue  # hooks have completed by now; prunes and no-ops need no health
            health = healths.get(task.key)
            if health is None or health.status in _GOOD:
                continue
            if health.status is HealthStatus.DEGRADED:
                degraded.append((task.key, phase.value, f"became Degraded: {health.message}"
                                 if health.message else "became Degraded"))
            else:
                waiting.append(f"{task.key} ({health.status.value}"
                               + (f": {health.message})" if health.message else ")"))
    return degraded, waiting


def _runnable(pending: list[SyncTask], results: Results) -> list[SyncTask]:
    """The pending tasks that may run now, in order, up to the first one whose Namespace or CRD
    is not ready. A Namespace applied in the same batch is ready for what follows it (apply
    order suffices); a CRD is not until it is established, which takes a later step."""
    batch: dict[ResourceKey, SyncTask] = {}
    done = {k for (k, _), r in results.items() if not r.running and not r.failed}
    out: list[SyncTask] = []
    for task in pending:
        for dep in task.depends_on:
            if dep in batch:
                if dep.kind != "Namespace":
                    return out
            elif dep not in done:
                return out
        batch[task.key] = task
        out.append(task)
    return out


def _describe(results: Sequence[ResourceResult]) -> str:
    shown = ", ".join(f"{r.key} ({r.message})" if r.message else str(r.key)
                      for r in results[:3])
    return shown + (f" and {len(results) - 3} more" if len(results) > 3 else "")


def _failure_message(failed: Sequence[ResourceResult], results: Results) -> str:
    text = f"{len(failed)} resource(s) failed: " + "; ".join(
        f"{r.key}: {r.message}" for r in failed[:5])
    fail_hooks = [r for r in results.values() if r.phase == Phase.SYNC_FAIL.value]
    if any(r.failed for r in fail_hooks):
        text += " (a SyncFail hook failed too)"
    return text
