"""Sync as a resumable step function, as gitops-engine's `Sync()`: each call takes one step of
an app's operation from its persisted state and returns how long to wait before the next.

Called by the `gitops.sync` task (one call per task run, under the app lock, re-enqueued with
the returned countdown) and by the in-process CLI (`Reconciler.sync` calls it in a loop). There
is one sync implementation; only the loop around it differs.

A step: load the state; start the requested operation if none runs; pin its revision; compare
Git with the cluster at that revision (render and dry-runs are cached, so this is cheap); build
the plan; check what is still running (hooks, CRDs); then, as `sync.steps.decide` says, apply
the next wave's tasks, wait, or finish. After applying, a step goes on to the next wave only
when nothing it applied needs watching and its time budget allows; otherwise it saves and
returns. Nothing sleeps. Every write is fenced by the caller's lock check, and the state is
saved after each wave, so a step that dies half-way is simply run again: server-side apply is
idempotent and hooks are found again by their per-attempt annotation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .appstore import AppStore
from .cluster import Cluster
from .comparison import Comparer, Comparison, after_sync, status_document
from .dependencies import dependencies_ready
from .diff import ResourceStatus
from .errors import GitOpsError, PermanentError, TransientError
from .health import resource_health
from .log import get_logger
from .model import Application
from .model import operation as op
from .model import status as st
from .model.operation import Operation, OperationState, ResourceResult
from .model.resources import ResourceKey
from .operations import StateStore, spec_hash
from .render.tracking import stamp
from .retries import exponential, jittered
from .settings import TaskSettings
from .sync import PlanInput, app_options, build_plan
from .sync.engine import Executor
from .sync.options import object_option_warnings
from .sync.plan import Action, Plan
from .sync.steps import Decision, Next, decide

Fence = Callable[[], None]

_log = get_logger(component="syncing")


def _no_fence() -> None:
    return None


@dataclass
class StepOutcome:
    """What one step did. `requeue_after` is the countdown before the next step (None: the
    operation is over and nothing else is requested)."""

    app: str
    state: OperationState | None
    requeue_after: float | None
    message: str = ""
    comparison: Comparison | None = None
    applied: list[ResourceResult] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.state is None or self.state.completed


class SyncStepper:
    def __init__(
        self,
        comparer: Comparer,
        settings: TaskSettings | None = None,
        *,
        apps: AppStore | None = None,
        hook_timeout: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.comparer = comparer
        self.apps = apps
        self.settings = settings or TaskSettings()
        self.hook_timeout = hook_timeout
        self.clock = clock

    # ------------------------------------------------------------------ entry

    def begin(self, app: Application, operation: Operation) -> OperationState:
        """A new Running state for `operation` (not saved yet)."""
        return OperationState(operation=operation, message="starting",
                              spec_hash=spec_hash(app))

    def step(self, app: Application, store: StateStore, *, fence: Fence = _no_fence,
             comparison: Comparison | None = None) -> StepOutcome:
        """One step. `comparison`: a comparison the caller made moments ago (the refresh that
        requested this sync), used instead of comparing again when it is of the operation's
        first step, at its revision."""
        status, request = store.load()
        state = OperationState.from_dict(status.get("operationState"))
        if state is None or state.completed:
            if request is None:
                if state is not None:
                    store.clear_request(state.operation.id)  # finished, never cleared
                return StepOutcome(app.name, state, None, "no operation to run")
            store.claim_request(request)
            state = self.begin(app, request)
        now = self.clock()
        if state.phase == st.TERMINATING:
            return self._terminate(app, state, status, store, fence)
        if state.not_before > now + 0.05:
            return StepOutcome(app.name, state, state.not_before - now,
                               f"not before {state.not_before - now:.1f}s")
        if comparison is not None and (state.steps or state.results or comparison.revision
                                       != (state.revision or state.operation.sync.revision)):
            comparison = None
        try:
            return self._advance(app, state, status, store, fence, comparison)
        except TransientError as exc:
            return self._transient(app, state, store, exc)

    # ------------------------------------------------------------------ one step

    def _advance(self, app: Application, state: OperationState, status: dict[str, Any],
                 store: StateStore, fence: Fence, cmp: Comparison | None = None
                 ) -> StepOutcome:
        started = time.monotonic()
        revision = state.revision or state.operation.sync.revision or None
        try:
            if cmp is None:
                cmp = self.comparer.compare(app, status, revision=revision)
        except TransientError:
            raise
        except GitOpsError as exc:
            return self._finish(app, state, store, st.ERROR_PHASE, str(exc), retry=False)
        state.revision = cmp.revision
        state.steps += 1
        state.transient_errors = 0
        if not state.results and app.depends_on:
            waiting = self._dependencies(app, state, store)
            if waiting is not None:
                return waiting
        if cmp.errors:
            return self._finish(app, state, store, st.FAILED_PHASE, "cannot sync: " + "; ".join(
                f"{k}: {m}" for k, m in cmp.errors.items()), comparison=cmp)
        if cmp.shared and app_options(app.sync_policy.sync_options).fail_on_shared_resource:
            # Argo CD's FailOnSharedResource=true: the whole sync fails, nothing is applied,
            # instead of applying the rest and leaving the other app's objects alone.
            return self._finish(app, state, store, st.FAILED_PHASE, "FailOnSharedResource: " +
                                "; ".join(f"{k} is already part of application {owner}"
                                          for k, owner in sorted(cmp.shared.items())),
                                comparison=cmp, retry=False)
        plan, notes = self._plan(app, state, cmp)
        self._record_start(state, cmp, plan, notes)
        if plan.errors:
            for err in plan.errors:
                state.record(ResourceResult(err.key, cmp.versions.get(err.key, "")
                                            .rpartition("/")[2], "Sync", 0, st.FAILED,
                                            err.message))
            return self._finish(app, state, store, st.FAILED_PHASE, "; ".join(
                f"{e.key}: {e.message}" for e in plan.errors), comparison=cmp, retry=False)
        sync = state.operation.sync
        executor = Executor(
            cmp.cluster, app=app.name, force=self._force(app, state.operation),
            dry_run=sync.dry_run,
            prune_propagation=app_options(app.sync_policy.sync_options)
            .prune_propagation_policy.capitalize(),
            hook_timeout=self.hook_timeout, fence=fence, clock=self.clock,
            customizations=cmp.customizations,
        )
        tasks = {(t.key, t.phase.value): t for t in plan.tasks}
        token = state.attempt_token
        for result in state.results:
            if result.running:
                executor.check(tasks.get(result.ident), result, token)
        healths = dict(cmp.healths)
        applied: list[ResourceResult] = []
        unsaved = False  # results applied in this step and not saved yet
        while True:
            decision = decide(plan, {r.ident: r for r in state.results}, healths,
                              dry_run=sync.dry_run)
            if decision.wave is not None:
                state.wave = decision.wave
            if decision.next is Next.FAIL:
                self._mark_degraded(state, decision)
                if decision.degraded:
                    continue  # SyncFail hooks, then the failure
                return self._finish(app, state, store, st.FAILED_PHASE, decision.message,
                                    comparison=cmp, applied=applied, saved=executor.flush)
            if decision.next is Next.SUCCEED:
                return self._finish(app, state, store, st.SUCCEEDED, self._summary(state),
                                    comparison=cmp, applied=applied, saved=executor.flush,
                                    returned=executor.returned)
            if decision.next is Next.WAIT:
                state.message = decision.message
                store.save(state)
                executor.flush()
                return StepOutcome(app.name, state, self.settings.sync_poll_interval,
                                   decision.message, cmp, applied)
            if decision.starts_group and unsaved:
                # A wave after one this step applied: save the progress first. The save
                # also shows a terminate requested meanwhile: the operation stops between
                # waves. (Within a wave nothing is saved until it is applied: applying again
                # after a crash is harmless.)
                store.save(state)
                executor.flush()
                unsaved = False
                if state.phase == st.TERMINATING:
                    return self._terminate(app, state, status, store, fence)
            delay = self._wave_delay(state, decision)
            if delay:
                store.save(state)
                executor.flush()
                return StepOutcome(app.name, state, delay, state.message, cmp, applied)
            for task in decision.tasks:
                result = executor.run(task, token)
                state.record(result)
                applied.append(result)
                returned = executor.returned.get(result.ident)
                if returned is not None:
                    healths[task.key] = resource_health(returned, cmp.customizations)
                    if task.action is Action.APPLY and task.target is not None and \
                            not task.options.replace:
                        self.comparer.remember_applied(cmp.cluster, task.target, returned)
            unsaved = True
            state.message = decision.message or (
                f"applied {decision.wave[0]} wave {decision.wave[1]}" if decision.wave
                else "applied")
            if time.monotonic() - started > self.settings.step_budget:
                store.save(state)
                executor.flush()
                return StepOutcome(app.name, state, 0.0, "step budget used; continuing",
                                   cmp, applied)

    def _dependencies(self, app: Application, state: OperationState, store: StateStore
                      ) -> StepOutcome | None:
        """dependsOn: the operation waits (Running, re-checked every few polls) until the
        Applications it names are Synced and Healthy; a cycle is an error."""
        try:
            ready, message = dependencies_ready(app, self.apps)
        except GitOpsError as exc:
            state.conditions = [(st.DEPENDENCY_CYCLE, str(exc))]
            return self._finish(app, state, store, st.ERROR_PHASE, str(exc), retry=False)
        if ready:
            return None
        state.message = message
        state.conditions = [(st.DEPENDENCY_WAITING, message)]
        store.save(state)
        return StepOutcome(app.name, state, self.settings.sync_poll_interval * 5, message)

    def _plan(self, app: Application, state: OperationState, cmp: Comparison
              ) -> tuple[Plan, list[tuple[str, str]]]:
        sync = state.operation.sync
        notes: list[tuple[str, str]] = []
        options = app_options(app.sync_policy.sync_options)
        prune = self._prune(app, state.operation)
        targets = [t for t in cmp.targets if ResourceKey.of(t) not in cmp.shared]
        refused = ""
        if not cmp.targets and not (app.sync_policy.automated and
                                    app.sync_policy.automated.allow_empty):
            if prune and any(d.status == ResourceStatus.REQUIRES_PRUNING
                             for d in cmp.diffs.values()):
                refused = ("Git renders no resources and allowEmpty is false (an empty render "
                           "is more often a mistake than a wish to delete everything)")
                notes.append((st.PRUNE_REFUSED, f"{refused}: nothing was pruned"))
            prune = False
        if options.create_namespace and app.destination.namespace:
            namespace = self._missing_namespace(cmp, state)
            if namespace is not None:
                targets = [namespace, *targets]
        for obj in targets + cmp.hooks:
            for warning in object_option_warnings(obj):
                notes.append((st.SYNC_OPTION_WARNING, f"{ResourceKey.of(obj)}: {warning}"))
        hooks = [] if sync.resources else cmp.hooks  # a selective sync runs no hooks (Argo CD)
        plan = build_plan(PlanInput(
            targets=targets + hooks, live=cmp.live, out_of_sync=cmp.out_of_sync(),
            prune=prune, prune_refused=refused, options=options,
            operation=state.attempt_token))
        if sync.resources:
            wanted = set(sync.resources)
            plan = Plan(tuple(t for t in plan.tasks if t.key in wanted),
                        tuple(k for k in plan.skipped_prunes if k in wanted),
                        plan.skip_reasons, plan.errors)
        return plan, notes

    def _missing_namespace(self, cmp: Comparison, state: OperationState
                           ) -> dict[str, Any] | None:
        """CreateNamespace=true: the destination namespace joins the plan while it is missing
        (or while this operation is the one creating it); the kind order puts it first. It is
        not part of the app's inventory, so it is never pruned."""
        name = cmp.app.destination.namespace
        key = ResourceKey("", "Namespace", "", name)
        if not any(r.key == key for r in state.results) and \
                cmp.cluster.get("v1", "Namespace", name) is not None:
            return None
        return stamp({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                     cmp.app.name, namespace="")

    def _record_start(self, state: OperationState, cmp: Comparison, plan: Plan,
                      notes: list[tuple[str, str]]) -> None:
        """What the first step knows for the whole operation: objects another app owns and
        prunes that will not happen are reported once, as results."""
        state.conditions = notes
        for key, owner in cmp.shared.items():
            state.record(ResourceResult(key, cmp.versions.get(key, "").rpartition("/")[2],
                                        "Sync", 0, st.SKIPPED,
                                        f"owned by application {owner}: not applied"))
        for key in plan.skipped_prunes:
            state.record(ResourceResult(key, cmp.versions.get(key, "").rpartition("/")[2],
                                        "Sync", 0, st.PRUNE_SKIPPED,
                                        plan.skip_reasons.get(key, "pruning disabled")))

    def _wave_delay(self, state: OperationState, decision: Decision) -> float:
        """GITOPS_TASKS_SYNC_WAVE_DELAY between waves: the first time a later wave could
        start, the step records when it may and returns."""
        delay = self.settings.sync_wave_delay
        if not decision.starts_group or delay <= 0:
            state.not_before = 0.0
            return 0.0
        now = self.clock()
        if state.not_before == 0.0:
            state.not_before = now + delay
            state.message = f"waiting {delay:g}s before the next wave"
            return delay
        if state.not_before > now:
            return state.not_before - now
        state.not_before = 0.0
        return 0.0

    @staticmethod
    def _mark_degraded(state: OperationState, decision: Decision) -> None:
        for key, phase, message in decision.degraded:
            result = state.result(key, phase)
            if result is not None:
                result.result = st.FAILED
                result.message = message

    @staticmethod
    def _prune(app: Application, operation: Operation) -> bool:
        if operation.sync.prune is not None:
            return operation.sync.prune
        return bool(app.sync_policy.automated and app.sync_policy.automated.prune)

    @staticmethod
    def _force(app: Application, operation: Operation) -> bool:
        if operation.sync.force is not None:
            return operation.sync.force
        return bool(app.sync_policy.automated and app.sync_policy.automated.self_heal)

    @staticmethod
    def _summary(state: OperationState) -> str:
        if state.operation.sync.dry_run:
            return "dry run: nothing was changed"
        done = sum(1 for r in state.results if r.result in (st.APPLIED, st.PRUNED))
        return f"successfully synced ({done} changed, {len(state.results) - done} unchanged)"

    # ------------------------------------------------------------------ endings

    def _finish(self, app: Application, state: OperationState, store: StateStore, phase: str,
                message: str, *, retry: bool = True, comparison: Comparison | None = None,
                applied: list[ResourceResult] | None = None,
                saved: Callable[[], None] = _no_fence,
                returned: Mapping[tuple[ResourceKey, str], dict[str, Any]] | None = None,
                ) -> StepOutcome:
        retry_policy = app.sync_policy.retry
        if (phase == st.FAILED_PHASE and retry and retry_policy is not None
                and not state.operation.sync.dry_run
                and (retry_policy.limit < 0 or state.retry_count < retry_policy.limit)):
            backoff = retry_policy.backoff
            delay = exponential(state.retry_count + 1, backoff.duration_seconds,
                                backoff.factor, backoff.max_duration_seconds)
            attempt = state.retry_count + 1
            restarted = state.restart(f"retrying (attempt {attempt + 1}) in {delay:g}s: "
                                      f"{message}", self.clock() + delay)
            store.save(restarted)
            saved()
            _log.info("sync failed, retrying", app=app.name, attempt=attempt, delay=delay,
                      message=message)
            return StepOutcome(app.name, restarted, delay, restarted.message, comparison,
                               applied or [])
        state.phase = phase
        state.message = message
        state.finished_at = st.now()
        state.not_before = 0.0
        history = None
        refresh = None
        if phase == st.SUCCEEDED and not state.operation.sync.dry_run:
            history = st.history_entry(
                0, state.revision,
                {"repoURL": app.source.repo_url, "path": app.source.path,
                 "targetRevision": state.operation.sync.revision or
                 app.source.target_revision},
                state.started_at, state.finished_at, state.operation.initiated_by)
            if comparison is not None:
                # What a refresh would record now, from what this step read and applied:
                # written with the operation's end, so no refresh has to follow the sync.
                comparison = after_sync(
                    comparison, {k: obj for (k, _), obj in (returned or {}).items()},
                    [r.key for r in state.results if r.result == st.PRUNED])
                done = comparison

                def refresh(status: dict[str, Any]) -> dict[str, Any]:
                    return status_document(done, status)

        store.save(state, history, refresh)
        saved()
        store.clear_request(state.operation.id)
        pending = store.pending()
        _log.info("sync finished", app=app.name, revision=state.revision, phase=phase,
                  dry_run=state.operation.sync.dry_run, steps=state.steps,
                  retries=state.retry_count, message=message,
                  changed=sum(1 for r in state.results if r.result in (st.APPLIED, st.PRUNED)),
                  failed=sum(1 for r in state.results if r.failed))
        return StepOutcome(app.name, state, 0.0 if pending else None, message,
                           comparison, applied or [])

    def _terminate(self, app: Application, state: OperationState, status: dict[str, Any],
                   store: StateStore, fence: Fence) -> StepOutcome:
        """Stop the running hooks (their objects are deleted) and fail the operation."""
        tasks: dict[tuple[ResourceKey, str], Any] = {}
        cluster: Cluster | None = None
        if any(r.running and r.hook for r in state.results):
            try:
                cmp = self.comparer.compare(app, status, revision=state.revision or None)
                cluster = cmp.cluster
                plan, _ = self._plan(app, state, cmp)
                tasks = {(t.key, t.phase.value): t for t in plan.tasks}
            except GitOpsError as exc:
                _log.warning("cannot find the running hooks to stop them", app=app.name,
                             error=str(exc))
        if cluster is not None:
            executor = Executor(cluster, app=app.name, fence=fence, clock=self.clock)
            for result in state.results:
                executor.terminate(tasks.get(result.ident), result)
        for result in state.results:
            if result.running:
                result.hook_phase = op.HOOK_TERMINATED
        return self._finish(app, state, store, st.FAILED_PHASE, "operation terminated",
                            retry=False)

    def _transient(self, app: Application, state: OperationState, store: StateStore,
                   exc: TransientError) -> StepOutcome:
        """API 5xx/429/timeouts, unreachable Git: the step runs again after a backoff; after
        `max_retries` such steps in a row the operation fails (and its retry policy applies)."""
        state.transient_errors += 1
        if state.transient_errors > self.settings.max_retries:
            return self._finish(app, state, store, st.FAILED_PHASE,
                                f"gave up after {state.transient_errors} transient errors: "
                                f"{exc.message}")
        delay = max(exc.retry_after or 0.0, jittered(exponential(
            state.transient_errors, self.settings.retry_backoff, 2.0,
            self.settings.retry_backoff_max)))
        state.message = f"retrying in {delay:.1f}s after a transient error: {exc.message}"
        _log.info("transient error, retrying", app=app.name, delay=round(delay, 2),
                  error=exc.message, attempt=state.transient_errors)
        try:
            store.save(state)
        except TransientError:
            pass  # the API server is down for the status write too: the retry carries on
        except PermanentError as perm:
            return StepOutcome(app.name, state, None, str(perm))
        return StepOutcome(app.name, state, delay, state.message)
