"""The reconciler: refresh (compare Git with the cluster), sync, rollback. Plain Python, no Celery.

Reads top to bottom like kustomize-controller's reconcile: guard clauses first (dependencies),
then render, read live state, diff, health, record; a sync is the step function of `syncing`,
driven here in a loop for the in-process CLI and one step per task run by `gitops.sync`. This
module only chains the layers and writes the refresh's part of the Application status (sync,
health, resources, conditions); the operation's part (operationState, history) belongs to the
step function. Called by the CLI (`diff`, `sync`, `refresh`, `rollback`) and by the tasks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .appstore import AppStore
from .cluster import Destinations
from .comparison import Comparer, Comparison, status_document
from .dependencies import dependencies_ready
from .diff import DryRunCache
from .errors import GitOpsError, PermanentError, TransientError
from .health import Customizations
from .log import get_logger
from .manifests import ManifestSource
from .model import Application
from .model import status as st
from .model.operation import Operation, ResourceResult, SyncRequest
from .model.resources import ResourceKey
from .operations import (
    AutoSync,
    ClusterState,
    MemoryState,
    OperationInProgress,
    StateStore,
    auto_sync_due,
    current_state,
)
from .settings import ReconcileSettings, TaskSettings
from .syncing import SyncStepper

__all__ = ["AppStore", "Comparison", "Reconciler", "Refreshed", "SyncOutcome"]

Fence = Callable[[], None]

_log = get_logger(component="reconcile")


def _no_fence() -> None:
    return None


@dataclass
class SyncOutcome:
    app: str
    revision: str
    phase: str
    message: str
    results: list[ResourceResult] = field(default_factory=list)
    comparison: Comparison | None = None
    # Conditions the operation raised (e.g. a refused prune).
    conditions: list[tuple[str, str]] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.phase == st.SUCCEEDED


@dataclass
class Refreshed:
    """One refresh: the comparison, the Application as stored after it (None when the app is
    only a file), whether the status was written, and the automated policy's decision."""

    comparison: Comparison
    obj: dict[str, Any] | None
    written: bool
    auto: AutoSync


class Reconciler:
    def __init__(
        self,
        manifests: ManifestSource,
        destinations: Destinations,
        *,
        apps: AppStore | None = None,
        dry_run_cache: DryRunCache | None = None,
        hook_timeout: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        tasks: TaskSettings | None = None,
        reconcile: ReconcileSettings | None = None,
        customizations: Callable[[], Customizations] | None = None,
    ) -> None:
        self.manifests = manifests
        self.destinations = destinations
        self.apps = apps
        self.comparer = Comparer(manifests, destinations, dry_run_cache, customizations)
        self.hook_timeout = hook_timeout
        self.sleep = sleep
        self.reconcile_settings = reconcile or ReconcileSettings()
        self.stepper = SyncStepper(self.comparer, tasks, apps=apps, hook_timeout=hook_timeout)

    # ---------------------------------------------------------------- compare

    def compare(self, app: Application, previous: dict[str, Any] | None = None, *,
                revision: str | None = None) -> Comparison:
        """Render Git, read the live objects, diff and assess health (see `comparison`)."""
        return self.comparer.compare(app, previous, revision=revision)

    # ---------------------------------------------------------------- status

    def status_document(self, cmp: Comparison, previous: dict[str, Any] | None,
                        extra_conditions: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
        return status_document(cmp, previous, extra_conditions)

    def load_status(self, app: Application) -> tuple[dict[str, Any] | None, bool]:
        """(previous status, whether the Application exists in the control namespace)."""
        if self.apps is None:
            return None, False
        obj = self.apps.get(app.name)
        if obj is None:
            return None, False
        return dict(obj.get("status") or {}), True

    # ---------------------------------------------------------------- refresh

    def refresh(self, app: Application, *, revision: str | None = None
                ) -> tuple[Comparison | None, bool]:
        """Compare and record status. Returns (comparison, whether an automated sync is due)."""
        done = self.refresh_app(app, revision=revision)
        return done.comparison, done.auto.due

    def refresh_app(self, app: Application, *, revision: str | None = None,
                    sha: str | None = None, hard: bool = False, fence: Fence = _no_fence,
                    obj: dict[str, Any] | None = None) -> Refreshed:
        """Compare, write the status when it changed (guarded by resourceVersion, so it never
        overwrites an operation's newer state), and decide whether the automated policy wants
        a sync. `obj`: the Application as just read, to save a GET."""
        started = time.perf_counter()
        if obj is None and self.apps is not None:
            obj = self.apps.get(app.name)
        previous = dict(obj.get("status") or {}) if obj is not None else None
        try:
            cmp = self.comparer.compare(app, previous, revision=revision, sha=sha, hard=hard)
        except TransientError:
            raise
        except GitOpsError as exc:
            self._record_error(app, previous, obj is not None, st.COMPARISON_ERROR, str(exc),
                               fence)
            raise
        written = False
        if obj is not None and self.apps is not None:
            before = obj["metadata"].get("resourceVersion")

            def change(status: dict[str, Any], _: dict[str, Any]) -> dict[str, Any] | None:
                new = self.status_document(cmp, status)
                return None if st.without_volatile(new) == st.without_volatile(status) else new

            obj = self.apps.update_status(app.name, change, fence=fence, current=obj)
            written = obj["metadata"].get("resourceVersion") != before
        auto = (auto_sync_due(app, cmp.sync_status, cmp.revision, obj,
                              self.reconcile_settings)
                if obj is not None else AutoSync(bool(app.sync_policy.automated and
                                                      cmp.sync_status == "OutOfSync"),
                                                 "the app is only a file"))
        # One summary line per reconcile (kustomize-controller style).
        _log.info("refreshed", app=app.name, revision=cmp.revision, sync=cmp.sync_status,
                  health=cmp.health.status.value, dry_runs=cmp.dry_runs, status_written=written,
                  auto_sync=auto.due, auto_sync_reason=auto.reason, hard=hard,
                  seconds=round(time.perf_counter() - started, 3))
        return Refreshed(cmp, obj, written, auto)

    def _record_error(self, app: Application, previous: dict[str, Any] | None, exists: bool,
                      ctype: str, message: str, fence: Fence = _no_fence) -> None:
        if not exists or self.apps is None:
            return

        def change(status: dict[str, Any], _: dict[str, Any]) -> dict[str, Any]:
            others = [c for c in status.get("conditions") or [] if c.get("type") != ctype]
            status["conditions"] = [*others, st.condition(ctype, message,
                                                          status.get("conditions") or [])]
            status.setdefault("sync", {})["status"] = "Unknown"
            return status

        try:
            self.apps.update_status(app.name, change, fence=fence)
        except GitOpsError as exc:
            _log.warning("could not record the error in the status", app=app.name,
                         error=str(exc))

    # ---------------------------------------------------------------- sync

    def sync(
        self,
        app: Application,
        *,
        revision: str | None = None,
        prune: bool | None = None,
        dry_run: bool = False,
        force: bool | None = None,
        resources: Sequence[ResourceKey] = (),
        initiated_by: str = "",
        fence: Fence = _no_fence,
    ) -> SyncOutcome:
        """Sync in this process: the same step function the `gitops.sync` task runs, driven in
        a loop that sleeps the countdown each step returns. For the CLI and tests."""
        obj = self.apps.get(app.name) if self.apps is not None else None
        previous = dict(obj.get("status") or {}) if obj is not None else None
        try:
            ready, message = dependencies_ready(app, self.apps)
        except GitOpsError as exc:
            self._record_error(app, previous, obj is not None, st.DEPENDENCY_CYCLE, str(exc))
            return SyncOutcome(app.name, "", st.ERROR_PHASE, str(exc))
        if not ready:
            self._record_error(app, previous, obj is not None, st.DEPENDENCY_WAITING, message)
            return SyncOutcome(app.name, "", st.WAITING, message)
        store: StateStore
        if obj is not None and self.apps is not None:
            running = current_state(obj)
            if running is not None and running.in_progress:
                raise OperationInProgress(
                    f"operation {running.operation.id} (started {running.started_at} by "
                    f"{running.operation.initiated_by or 'unknown'}) is still running; wait "
                    "for it or terminate it", app=app.name)
            store = ClusterState(self.apps, app, fence)
        else:
            store = MemoryState(app, previous)
        operation = Operation.new(SyncRequest(revision or "", prune, dry_run, force,
                                              tuple(resources)), initiated_by=initiated_by)
        store.save(self.stepper.begin(app, operation))
        while True:
            step = self.stepper.step(app, store, fence=fence)
            state = step.state
            if state is None or state.operation.id != operation.id or state.completed \
                    or step.requeue_after is None:
                break
            self.sleep(step.requeue_after)
        if state is None or state.operation.id != operation.id:
            return SyncOutcome(app.name, "", st.ERROR_PHASE, step.message)
        outcome = SyncOutcome(app.name, state.revision, state.phase, state.message,
                              list(state.results), step.comparison, list(state.conditions))
        if obj is not None and not dry_run and not outcome.succeeded:
            # What the cluster holds after a failed sync (a successful one recorded it).
            try:
                cmp, _ = self.refresh(app, revision=state.revision)
                outcome.comparison = cmp
            except GitOpsError as exc:
                _log.warning("post-sync refresh failed", app=app.name, error=str(exc))
        return outcome

    # ---------------------------------------------------------------- rollback

    def rollback(self, app: Application, history_id: int, *, force: bool = False,
                 prune: bool | None = None, fence: Fence = _no_fence) -> SyncOutcome:
        """Sync an earlier history entry's revision without touching Git."""
        previous, _ = self.load_status(app)
        history = (previous or {}).get("history") or []
        entry = next((h for h in history if int(h.get("id", -1)) == history_id), None)
        if entry is None:
            known = ", ".join(str(h.get("id")) for h in history) or "none"
            raise PermanentError(f"no history entry {history_id} (known ids: {known})",
                                 app=app.name)
        if app.automated and not force:
            raise PermanentError("rollback is refused while automated sync is enabled (it "
                                 "would sync Git's revision again); disable automated sync "
                                 "or force the rollback", app=app.name)
        return self.sync(app, revision=str(entry["revision"]), prune=prune,
                         initiated_by="rollback", fence=fence)
