"""Executing sync tasks against one cluster, one task at a time and without ever waiting.

Called by the sync step function (`gitops_tasks.operations`), which decides *which* tasks run
in a step; this module only performs them and reports a `ResourceResult`. Nothing here sleeps:
something that takes time (a hook Job running, a CRD being established, a previous hook object
being deleted) is reported with `hook_phase=Running`, and a later step calls `check()` to see
whether it finished.

Every write is preceded by `fence()`, which the task layer binds to its app lock: a worker that
lost the lock (paused past its TTL, partitioned) raises `LockLost` before its next write.
Permanent API errors fail the one resource with the server's message; transient ones propagate
so the caller can run the (idempotent) step again later.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from ..cluster import ApiConflict, ApiPermanent, Cluster, UnknownKind
from ..health import NONE, Customizations, HealthStatus, resource_health
from ..log import get_logger
from ..model import keys
from ..model import operation as op
from ..model import status as st
from ..model.operation import ResourceResult
from .hooks import DeletePolicy
from .plan import Action, SyncTask

__all__ = ["Executor", "ResourceResult"]

_log = get_logger(component="sync")

CRD_API_VERSION = "apiextensions.k8s.io/v1"


def _version(obj: dict[str, Any] | None) -> str:
    if not obj:
        return ""
    return str(obj.get("apiVersion", "")).rpartition("/")[2]


def _api_version(task: SyncTask) -> str:
    obj = task.target or task.live or {}
    return str(obj.get("apiVersion", ""))


def _established(crd: dict[str, Any] | None) -> bool:
    conditions = ((crd or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in conditions)


def _annotation(obj: dict[str, Any] | None, key: str) -> str:
    return str((((obj or {}).get("metadata") or {}).get("annotations") or {}).get(key, ""))


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
        fence: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        customizations: Customizations = NONE,
    ) -> None:
        self.cluster = cluster
        # Users' health scripts judge hooks too (a custom resource as a hook, or a Job override).
        self.customizations = customizations
        self.app = app
        self.force = force
        self.dry_run = dry_run
        self.prune_propagation = prune_propagation
        self.hook_timeout = hook_timeout
        self.establish_timeout = establish_timeout
        self.fence = fence
        self.clock = clock
        # Objects as the server returned them from this step's writes: their health decides
        # whether the next wave may start without another round trip.
        self.returned: dict[tuple[Any, str], dict[str, Any]] = {}
        # Completed hooks whose delete policy applies: deleted by `flush()`, once the caller
        # saved their result (deleted first, a crash before the save would leave a rerun
        # with neither the Job nor the knowledge that it succeeded).
        self._deferred: list[SyncTask] = []

    # ---------------------------------------------------------------- starting tasks

    def run(self, task: SyncTask, token: str) -> ResourceResult:
        """Perform one task (apply, prune, start a hook); `token` identifies the operation
        attempt (see `OperationState.attempt_token`)."""
        result = ResourceResult(task.key, _version(task.target or task.live), task.phase.value,
                                task.wave, st.UNCHANGED, hook=task.action == Action.HOOK,
                                started_at=self.clock())
        try:
            if task.action == Action.NONE:
                result.message = "in sync (ApplyOutOfSyncOnly)"
            elif task.action == Action.PRUNE:
                self._prune(task, result)
            elif task.action == Action.HOOK:
                self._start_hook(task, result, token)
            else:
                self._apply(task, result)
        except UnknownKind as exc:
            if self.dry_run and task.depends_on:
                # Its CRD is part of this sync and, in a dry run, was not created.
                result.result = st.WOULD_APPLY
                result.message = "its CustomResourceDefinition is applied by this sync"
            else:
                self._fail(result, exc.message)
        except ApiConflict as exc:
            if exc.fields:
                fields = ", ".join(f"{f} (owned by {m})" for m, f in exc.fields)
                self._fail(result, f"conflict: {fields}; another manager changed these "
                                   "fields. Enable selfHeal or sync with force to take them "
                                   "over")
            else:
                self._fail(result, exc.message)
        except ApiPermanent as exc:
            self._fail(result, exc.message)
        except ValueError as exc:
            self._fail(result, str(exc))
        return result

    def _fail(self, result: ResourceResult, message: str) -> None:
        result.result = st.FAILED
        result.message = message
        result.hook_phase = op.HOOK_FAILED if result.hook else ""
        _log.warning("resource failed", app=self.app, resource=str(result.key),
                     message=message)

    def _apply(self, task: SyncTask, result: ResourceResult) -> None:
        assert task.target is not None
        live_rv = ((task.live or {}).get("metadata") or {}).get("resourceVersion")
        validate = task.options.validate
        self.fence()
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
            return
        self.returned[(task.key, task.phase.value)] = out
        result.result = st.UNCHANGED if (live_rv and new_rv == live_rv) else st.APPLIED
        if result.result == st.APPLIED:
            result.message = "created" if task.live is None else "configured"
        if task.key.kind == "CustomResourceDefinition" and not _established(out):
            # Its custom resources are served only once it is established.
            result.hook_phase = op.HOOK_RUNNING
            result.message = "waiting for the CRD to be established"

    def _prune(self, task: SyncTask, result: ResourceResult) -> None:
        if self.dry_run:
            result.result = st.WOULD_PRUNE
            return
        self.fence()
        gone = self.cluster.delete(_api_version(task), task.key.kind, task.key.name,
                                   task.key.namespace, propagation=self.prune_propagation)
        result.result = st.PRUNED
        result.message = "pruned" if gone else "already gone"

    # ---------------------------------------------------------------- hooks

    def _start_hook(self, task: SyncTask, result: ResourceResult, token: str) -> None:
        assert task.target is not None
        if self.dry_run:
            result.result = st.SKIPPED
            result.message = "hook not run in a dry run"
            return
        live = self.cluster.get(_api_version(task), task.key.kind, task.key.name,
                                task.key.namespace)
        if live is not None and _annotation(live, keys.HOOK_OPERATION) == token:
            # This attempt created it already (a step that ran again after a crash).
            self._running(result, live, "hook started")
            return
        if live is not None and DeletePolicy.BEFORE_HOOK_CREATION in task.delete_policies:
            self.fence()
            self.cluster.delete(_api_version(task), task.key.kind, task.key.name,
                                task.key.namespace, propagation="Background")
            result.result = st.PENDING
            result.hook_phase = op.HOOK_RUNNING
            result.message = "deleting the previous run's hook object"
            return
        self._create_hook(task, result, token, live)

    def _create_hook(self, task: SyncTask, result: ResourceResult, token: str,
                     live: dict[str, Any] | None) -> None:
        assert task.target is not None
        target = copy.deepcopy(task.target)
        target.setdefault("metadata", {}).setdefault("annotations", {})[
            keys.HOOK_OPERATION] = token
        self.fence()
        if live is None:
            try:
                # Create, not apply: if two steps ever raced, the second gets AlreadyExists
                # instead of silently sharing (or restarting) the first one's Job.
                created = self.cluster.create(target)
            except ApiConflict as exc:
                if exc.reason != "AlreadyExists":
                    raise
                created = self.cluster.get(_api_version(task), task.key.kind, task.key.name,
                                           task.key.namespace) or {}
                if _annotation(created, keys.HOOK_OPERATION) != token:
                    raise
        else:
            # A previous run's object without BeforeHookCreation: take it over, as Argo CD.
            created = self.cluster.apply(target, force=True)
        result.started_at = self.clock()
        self._running(result, created, "hook started")

    def _running(self, result: ResourceResult, obj: dict[str, Any], message: str) -> None:
        result.result = st.APPLIED
        result.hook_phase = op.HOOK_RUNNING
        result.message = message
        self.returned[result.ident] = obj

    # ---------------------------------------------------------------- watching

    def check(self, task: SyncTask | None, result: ResourceResult, token: str) -> None:
        """Update a Running result: has its hook completed, its CRD become established, the
        previous hook object gone? `task` is None when the plan no longer has it."""
        if not result.running:
            return
        now = self.clock()
        if result.key.kind == "CustomResourceDefinition" and not result.hook:
            crd = self.cluster.get(CRD_API_VERSION, "CustomResourceDefinition",
                                   result.key.name)
            if _established(crd):
                result.hook_phase = op.HOOK_SUCCEEDED
                result.message = "created" if result.message.startswith("waiting") else \
                    result.message
                self.cluster.invalidate_discovery()
            elif now - result.started_at > self.establish_timeout:
                self._fail(result, f"not established within {self.establish_timeout:.0f}s")
            return
        if task is None:
            self._fail(result, "the hook is no longer part of the app's manifests")
            return
        live = self.cluster.get(_api_version(task), task.key.kind, task.key.name,
                                task.key.namespace)
        if result.result == st.PENDING:
            if live is None:
                self._create_hook(task, result, token, None)
            elif now - result.started_at > self.hook_timeout:
                self._fail(result, "the previous run's hook object was not deleted within "
                                   f"{self.hook_timeout:.0f}s")
            return
        if live is None:
            self._fail(result, "hook object disappeared before completing")
            return
        health = resource_health(live, self.customizations)
        if health is None or health.status == HealthStatus.HEALTHY:
            result.hook_phase = op.HOOK_SUCCEEDED
            result.message = "hook completed"
            self._delete_hook(task, DeletePolicy.HOOK_SUCCEEDED)
        elif health.status == HealthStatus.DEGRADED:
            self._fail(result, f"hook failed: {health.message}")
            self._delete_hook(task, DeletePolicy.HOOK_FAILED)
        elif now - result.started_at > self.hook_timeout:
            self._fail(result, f"hook failed: did not complete within "
                               f"{self.hook_timeout:.0f}s")
            self._delete_hook(task, DeletePolicy.HOOK_FAILED)

    def _delete_hook(self, task: SyncTask, policy: DeletePolicy) -> None:
        if policy in task.delete_policies:
            self._deferred.append(task)

    def flush(self) -> None:
        """Delete the completed hooks whose policy says so; call after saving the results."""
        while self._deferred:
            task = self._deferred.pop(0)
            self.fence()
            self.cluster.delete(_api_version(task), task.key.kind, task.key.name,
                                task.key.namespace, propagation="Background")

    def terminate(self, task: SyncTask | None, result: ResourceResult) -> None:
        """Stop a running hook (delete its object, as Argo CD does) and mark it Terminated."""
        if not result.running:
            return
        if result.hook and task is not None:
            self.fence()
            self.cluster.delete(_api_version(task), task.key.kind, task.key.name,
                                task.key.namespace, propagation="Background")
        result.hook_phase = op.HOOK_TERMINATED
        result.result = st.FAILED
        result.message = "terminated"


def _differs(live: dict[str, Any], predicted: dict[str, Any]) -> bool:
    from ..diff import compare
    from ..model.resources import ResourceKey

    return compare(ResourceKey.of(live), predicted, live).status.value != "Synced"
