"""Executing a sync plan against one cluster: waves in order, hooks waited for, prunes last.

Called by the reconciler with a `Plan` (plain data from `plan.build_plan`). Each wave is
applied in full; the next starts only when every resource of this wave was applied, CRDs among
them are established and hooks have completed. A resource that fails is recorded with the API
server's message and stops later waves, never the process; transient API errors propagate so
the caller can retry the whole (idempotent) operation with backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..cluster import ApiConflict, ApiPermanent, Cluster, UnknownKind
from ..errors import PermanentError
from ..health import HealthStatus, resource_health
from ..log import get_logger
from ..model import status as st
from ..model.resources import ResourceKey
from .hooks import DeletePolicy
from .plan import Action, Phase, Plan, SyncTask

_log = get_logger(component="sync")


@dataclass
class ResourceResult:
    key: ResourceKey
    version: str
    phase: str
    wave: int
    result: str
    message: str = ""
    hook: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = st.resource_ref(self.key, self.version)
        out.update({"syncPhase": self.phase, "wave": self.wave, "status": self.result})
        if self.message:
            out["message"] = self.message
        if self.hook:
            out["hookType"] = self.phase
        return out


@dataclass
class SyncRun:
    results: list[ResourceResult] = field(default_factory=list)
    failed: bool = False
    message: str = ""

    @property
    def phase(self) -> str:
        return st.FAILED_PHASE if self.failed else st.SUCCEEDED


def _version(obj: dict[str, Any] | None) -> str:
    if not obj:
        return ""
    return str(obj.get("apiVersion", "")).rpartition("/")[2]


def _api_version(task: SyncTask) -> str:
    obj = task.target or task.live or {}
    return str(obj.get("apiVersion", ""))


class Executor:
    def __init__(
        self,
        cluster: Cluster,
        *,
        app: str,
        force: bool = False,
        dry_run: bool = False,
        prune_propagation: str = "Foreground",
        hook_timeout: float = 300.0,
        establish_timeout: float = 60.0,
        poll_interval: float = 0.2,
        should_continue: Callable[[], bool] = lambda: True,
    ) -> None:
        self.cluster = cluster
        self.app = app
        self.force = force
        self.dry_run = dry_run
        self.prune_propagation = prune_propagation
        self.hook_timeout = hook_timeout
        self.establish_timeout = establish_timeout
        self.poll_interval = poll_interval
        # The task layer passes a lock check here: a worker that lost its lock stops before
        # its next write.
        self.should_continue = should_continue

    def run(self, plan: Plan) -> SyncRun:
        run = SyncRun()
        fail_hooks: list[SyncTask] = []
        for phase, wave, tasks in plan.waves():
            if phase == Phase.SYNC_FAIL:
                fail_hooks.extend(tasks)
                continue
            if run.failed:
                break
            if not self.should_continue():
                raise PermanentError("sync stopped: this worker no longer holds the app lock",
                                     app=self.app)
            self._run_wave(phase, wave, tasks, run)
        if run.failed and fail_hooks and not self.dry_run:
            self._run_wave(Phase.SYNC_FAIL, 0, fail_hooks, SyncRun())
        if not run.message:
            failed = [r for r in run.results if r.result == st.FAILED]
            if failed:
                run.message = f"{len(failed)} resource(s) failed: " + "; ".join(
                    f"{r.key}: {r.message}" for r in failed[:5])
            else:
                done = sum(1 for r in run.results if r.result in (st.APPLIED, st.PRUNED))
                run.message = ("dry run: nothing was changed" if self.dry_run else
                               f"successfully synced ({done} changed, "
                               f"{len(run.results) - done} unchanged)")
        return run

    # ---------------------------------------------------------------- waves

    def _run_wave(self, phase: Phase, wave: int, tasks: list[SyncTask], run: SyncRun) -> None:
        pending_crds: list[SyncTask] = []
        hooks: list[tuple[SyncTask, dict[str, Any]]] = []
        for task in tasks:
            if pending_crds and task.key.kind not in ("Namespace", "CustomResourceDefinition"):
                # Kind order puts CRDs first in a wave; what follows may be their objects,
                # which the server only serves once the CRD is established.
                self._establish(pending_crds, run)
                pending_crds = []
            result = self._run_task(task, phase, wave, hooks)
            run.results.append(result)
            if result.result == st.FAILED:
                run.failed = True
            elif (task.key.kind == "CustomResourceDefinition" and
                  task.action == Action.APPLY and not self.dry_run):
                pending_crds.append(task)
        if pending_crds:
            self._establish(pending_crds, run)
        for task, created in hooks:
            self._wait_hook(task, created, phase, wave, run)

    def _establish(self, crds: list[SyncTask], run: SyncRun) -> None:
        for crd in crds:
            self._wait_established(crd, run)
        self.cluster.invalidate_discovery()

    def _run_task(self, task: SyncTask, phase: Phase, wave: int,
                  hooks: list[tuple[SyncTask, dict[str, Any]]]) -> ResourceResult:
        version = _version(task.target or task.live)
        result = ResourceResult(task.key, version, phase.value, wave, st.UNCHANGED,
                                hook=task.action == Action.HOOK)
        try:
            if task.action == Action.NONE:
                result.message = "in sync (ApplyOutOfSyncOnly)"
            elif task.action == Action.PRUNE:
                self._prune(task, result)
            elif task.action == Action.HOOK:
                created = self._start_hook(task, result)
                if created is not None:
                    hooks.append((task, created))
            else:
                self._apply(task, result)
        except UnknownKind as exc:
            if self.dry_run and task.depends_on:
                # Its CRD is part of this sync and, in a dry run, was not created.
                result.result = st.WOULD_APPLY
                result.message = "its CustomResourceDefinition is applied by this sync"
            else:
                result.result = st.FAILED
                result.message = exc.message
        except ApiConflict as exc:
            result.result = st.FAILED
            fields = ", ".join(f"{f} (owned by {m})" for m, f in exc.fields) or str(exc)
            result.message = (f"conflict: {fields}; another manager changed these fields. Enable "
                              "selfHeal or sync with force to take them over")
        except ApiPermanent as exc:
            result.result = st.FAILED
            result.message = exc.message
        except ValueError as exc:
            result.result = st.FAILED
            result.message = str(exc)
        if result.result == st.FAILED:
            _log.warning("resource failed", app=self.app, resource=str(task.key),
                         message=result.message)
        return result

    def _apply(self, task: SyncTask, result: ResourceResult) -> None:
        assert task.target is not None
        live_rv = ((task.live or {}).get("metadata") or {}).get("resourceVersion")
        validate = task.options.validate
        if task.options.replace and task.live is not None:
            out = self.cluster.replace(task.target, dry_run=self.dry_run, validate=validate)
        elif task.options.replace:
            out = self.cluster.create(task.target, dry_run=self.dry_run, validate=validate)
        else:
            out = self.cluster.apply(task.target, force=self.force or task.options.force,
                                     dry_run=self.dry_run, validate=validate)
        new_rv = (out.get("metadata") or {}).get("resourceVersion")
        if self.dry_run:
            changed = task.live is None or _differs(task.live, out)
            result.result = st.WOULD_APPLY if changed else st.UNCHANGED
        else:
            result.result = st.UNCHANGED if (live_rv and new_rv == live_rv) else st.APPLIED
        if result.result == st.APPLIED:
            result.message = "created" if task.live is None else "configured"

    def _prune(self, task: SyncTask, result: ResourceResult) -> None:
        if self.dry_run:
            result.result = st.WOULD_PRUNE
            return
        gone = self.cluster.delete(_api_version(task), task.key.kind, task.key.name,
                                   task.key.namespace, propagation=self.prune_propagation)
        result.result = st.PRUNED
        result.message = "pruned" if gone else "already gone"

    # ---------------------------------------------------------------- hooks

    def _start_hook(self, task: SyncTask, result: ResourceResult) -> dict[str, Any] | None:
        assert task.target is not None
        if self.dry_run:
            result.result = st.SKIPPED
            result.message = "hook not run in a dry run"
            return None
        api_version = _api_version(task)
        if task.live is not None and DeletePolicy.BEFORE_HOOK_CREATION in task.delete_policies:
            self.cluster.delete(api_version, task.key.kind, task.key.name, task.key.namespace,
                                propagation="Background")
            self._wait_gone(task)
        created = self.cluster.apply(task.target, force=True)
        result.result = st.APPLIED
        result.message = "hook started"
        return created

    def _wait_gone(self, task: SyncTask) -> None:
        deadline = time.monotonic() + self.hook_timeout
        while time.monotonic() < deadline:
            if self.cluster.get(_api_version(task), task.key.kind, task.key.name,
                                task.key.namespace) is None:
                return
            time.sleep(self.poll_interval)
        raise PermanentError(f"{task.key}: the previous hook object was not deleted in time",
                             app=self.app)

    def _wait_hook(self, task: SyncTask, created: dict[str, Any], phase: Phase, wave: int,
                   run: SyncRun) -> None:
        """Hooks (Jobs, Pods, anything with health) must complete before the next wave."""
        api_version = _api_version(task)
        deadline = time.monotonic() + self.hook_timeout
        outcome = ""
        message = ""
        obj: dict[str, Any] | None = created
        while True:
            health = resource_health(obj)
            if health is None or health.status == HealthStatus.HEALTHY:
                outcome = "succeeded"
                break
            if health.status == HealthStatus.DEGRADED:
                outcome, message = "failed", health.message
                break
            if time.monotonic() > deadline:
                outcome, message = "failed", f"did not complete within {self.hook_timeout:.0f}s"
                break
            time.sleep(self.poll_interval)
            obj = self.cluster.get(api_version, task.key.kind, task.key.name, task.key.namespace)
            if obj is None:
                outcome, message = "failed", "hook object disappeared before completing"
                break
        for r in run.results:
            if r.key == task.key and r.phase == phase.value and r.hook:
                if outcome == "failed":
                    r.result = st.FAILED
                    r.message = f"hook failed: {message}"
                    run.failed = True
                else:
                    r.message = "hook completed"
        policy = (DeletePolicy.HOOK_SUCCEEDED if outcome == "succeeded"
                  else DeletePolicy.HOOK_FAILED)
        if policy in task.delete_policies:
            self.cluster.delete(api_version, task.key.kind, task.key.name, task.key.namespace,
                                propagation="Background")

    def _wait_established(self, task: SyncTask, run: SyncRun) -> None:
        deadline = time.monotonic() + self.establish_timeout
        while time.monotonic() < deadline:
            crd = self.cluster.get("apiextensions.k8s.io/v1", "CustomResourceDefinition",
                                   task.key.name)
            conditions = ((crd or {}).get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Established" and c.get("status") == "True"
                   for c in conditions):
                return
            time.sleep(self.poll_interval)
        run.failed = True
        run.message = f"{task.key} was not established within {self.establish_timeout:.0f}s"


def _differs(live: dict[str, Any], predicted: dict[str, Any]) -> bool:
    from ..diff import compare

    return compare(ResourceKey.of(live), predicted, live).status.value != "Synced"
