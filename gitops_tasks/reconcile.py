"""The reconciler: refresh (compare Git with the cluster), sync, rollback. Plain Python, no Celery.

Reads top to bottom like kustomize-controller's reconcile: guard clauses first (dependencies),
then render, read live state, diff, health, plan, apply, prune, record. Each step is a call into
its own layer (manifests, cluster, diff, health, sync); this module only chains them and writes
the Application status. Called by the CLI (`diff`, `sync`) and by the tasks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .appstore import AppStore
from .cluster import Destinations
from .comparison import Comparer, Comparison
from .dependencies import dependencies_ready
from .diff import DryRunCache, ResourceStatus
from .errors import GitOpsError, PermanentError, TransientError
from .log import get_logger
from .manifests import ManifestSource
from .model import Application
from .model import status as st
from .model.resources import ResourceKey
from .render.tracking import stamp
from .sync import AppSyncOptions, PlanInput, app_options, build_plan
from .sync.engine import Executor, ResourceResult, SyncRun

__all__ = ["AppStore", "Comparison", "Reconciler", "SyncOutcome"]

_log = get_logger(component="reconcile")


@dataclass
class SyncOutcome:
    app: str
    revision: str
    phase: str
    message: str
    results: list[ResourceResult] = field(default_factory=list)
    comparison: Comparison | None = None
    # Conditions the operation raised (e.g. a refused prune) for the status written after it.
    conditions: list[tuple[str, str]] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.phase == st.SUCCEEDED


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
    ) -> None:
        self.manifests = manifests
        self.destinations = destinations
        self.apps = apps
        self.comparer = Comparer(manifests, destinations, dry_run_cache)
        self.hook_timeout = hook_timeout
        self.sleep = sleep

    # ---------------------------------------------------------------- compare

    def compare(self, app: Application, previous: dict[str, Any] | None = None, *,
                revision: str | None = None) -> Comparison:
        """Render Git, read the live objects, diff and assess health (see `comparison`)."""
        return self.comparer.compare(app, previous, revision=revision)

    # ---------------------------------------------------------------- status

    def status_document(self, cmp: Comparison, previous: dict[str, Any] | None,
                        extra_conditions: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
        previous = previous or {}
        old_conditions = previous.get("conditions") or []
        health = cmp.health
        status: dict[str, Any] = {
            "sync": {
                "status": cmp.sync_status,
                "revision": cmp.revision,
                "comparedTo": {
                    "source": {"repoURL": cmp.app.source.repo_url, "path": cmp.app.source.path,
                               "targetRevision": cmp.app.source.target_revision},
                    "destination": {k: v for k, v in (
                        ("server", cmp.app.destination.server),
                        ("name", cmp.app.destination.name),
                        ("namespace", cmp.app.destination.namespace)) if v},
                },
            },
            "health": {"status": health.status.value, **({"message": health.message}
                                                        if health.message else {})},
            "resources": cmp.resource_entries(),
            "conditions": [st.condition(t, m, old_conditions)
                           for t, m in [*cmp.conditions, *extra_conditions]],
            "reconciledAt": st.now(),
        }
        for keep in ("operationState", "history"):
            if keep in previous:
                status[keep] = previous[keep]
        return status

    def _write(self, app: Application, status: dict[str, Any],
               previous: dict[str, Any] | None) -> bool:
        if self.apps is None:
            return False
        if previous is not None and st.without_volatile(previous) == st.without_volatile(status):
            return False
        try:
            self.apps.write_status(app.name, status, previous)
        except GitOpsError as exc:
            _log.warning("could not write status", app=app.name, error=str(exc))
            return False
        return True

    def load_status(self, app: Application) -> tuple[dict[str, Any] | None, bool]:
        """(previous status, whether the Application exists in the control namespace)."""
        if self.apps is None:
            return None, False
        obj = self.apps.get(app.name)
        if obj is None:
            return None, False
        return dict(obj.get("status") or {}), True

    # ---------------------------------------------------------------- refresh

    def refresh(self, app: Application) -> tuple[Comparison | None, bool]:
        """Compare and record status. Returns (comparison, whether an automated sync is due)."""
        started = time.perf_counter()
        previous, exists = self.load_status(app)
        try:
            cmp = self.compare(app, previous)
        except TransientError:
            raise
        except GitOpsError as exc:
            self._record_error(app, previous, exists, st.COMPARISON_ERROR, str(exc))
            raise
        status = self.status_document(cmp, previous)
        written = self._write(app, status, previous) if exists else False
        due = self._auto_sync_due(app, cmp, previous)
        # One summary line per reconcile (kustomize-controller style).
        _log.info("refreshed", app=app.name, revision=cmp.revision, sync=cmp.sync_status,
                  health=cmp.health.status.value, dry_runs=cmp.dry_runs, status_written=written,
                  auto_sync=due, seconds=round(time.perf_counter() - started, 3))
        return cmp, due

    def _record_error(self, app: Application, previous: dict[str, Any] | None, exists: bool,
                      ctype: str, message: str) -> None:
        if not exists:
            return
        status = dict(previous or {})
        others = [c for c in status.get("conditions") or [] if c.get("type") != ctype]
        status["conditions"] = [*others, st.condition(ctype, message,
                                                      status.get("conditions") or [])]
        status.setdefault("sync", {})["status"] = "Unknown"
        self._write(app, status, previous)

    def _auto_sync_due(self, app: Application, cmp: Comparison,
                       previous: dict[str, Any] | None) -> bool:
        """Argo CD's rules: automated apps sync when Git moved to a revision not yet synced;
        a drift at an already-synced revision is corrected only with selfHeal; a revision whose
        last sync failed is not retried forever (the retry policy already ran)."""
        policy = app.sync_policy.automated
        if policy is None or cmp.sync_status != "OutOfSync":
            return False
        op = (previous or {}).get("operationState") or {}
        last_rev = ((op.get("syncResult") or {}).get("revision")) or ""
        if last_rev != cmp.revision:
            return True
        if op.get("phase") in (st.FAILED_PHASE, st.ERROR_PHASE):
            return False
        return policy.self_heal

    # ---------------------------------------------------------------- sync

    def sync(
        self,
        app: Application,
        *,
        revision: str | None = None,
        prune: bool | None = None,
        dry_run: bool = False,
        force: bool | None = None,
        initiated_by: str = "",
        should_continue: Callable[[], bool] = lambda: True,
    ) -> SyncOutcome:
        previous, exists = self.load_status(app)
        started = st.now()
        try:
            ready, message = dependencies_ready(app, self.apps)
        except GitOpsError as exc:
            self._record_error(app, previous, exists, st.DEPENDENCY_CYCLE, str(exc))
            return SyncOutcome(app.name, "", st.ERROR_PHASE, str(exc))
        if not ready:
            self._record_error(app, previous, exists, st.DEPENDENCY_WAITING, message)
            return SyncOutcome(app.name, "", st.WAITING, message)

        options = app_options(app.sync_policy.sync_options)
        do_prune = prune if prune is not None else bool(
            app.sync_policy.automated and app.sync_policy.automated.prune)
        do_force = force if force is not None else bool(
            app.sync_policy.automated and app.sync_policy.automated.self_heal)
        retry = app.sync_policy.retry
        attempts = 1 + (max(retry.limit, 0) if retry else 0)
        delay = retry.backoff.duration_seconds if retry else 0.0
        outcome: SyncOutcome | None = None
        for attempt in range(attempts):
            try:
                outcome = self._sync_once(app, previous, revision, do_prune, do_force, dry_run,
                                          options, should_continue)
            except TransientError as exc:
                outcome = SyncOutcome(app.name, "", st.ERROR_PHASE, str(exc))
            except GitOpsError as exc:
                outcome = SyncOutcome(app.name, "", st.ERROR_PHASE, str(exc))
                break
            if outcome.succeeded or dry_run or attempt == attempts - 1:
                break
            assert retry is not None
            _log.info("sync failed, retrying", app=app.name, attempt=attempt + 1,
                      delay=delay, message=outcome.message)
            self.sleep(delay)
            delay = min(delay * retry.backoff.factor, retry.backoff.max_duration_seconds)
        assert outcome is not None
        _log.info("synced", app=app.name, revision=outcome.revision, phase=outcome.phase,
                  dry_run=dry_run, changed=sum(1 for r in outcome.results
                                               if r.result in (st.APPLIED, st.PRUNED)),
                  failed=sum(1 for r in outcome.results if r.result == st.FAILED),
                  message=outcome.message)
        if not dry_run:
            self._record_sync(app, previous, exists, outcome, started, revision, do_prune,
                              initiated_by)
        return outcome

    def _sync_once(self, app: Application, previous: dict[str, Any] | None,
                   revision: str | None, prune: bool, force: bool, dry_run: bool,
                   options: AppSyncOptions, should_continue: Callable[[], bool]) -> SyncOutcome:
        cmp = self.compare(app, previous, revision=revision)
        results: list[ResourceResult] = []
        notes: list[tuple[str, str]] = []
        if cmp.errors:
            return SyncOutcome(app.name, cmp.revision, st.FAILED_PHASE,
                               "cannot sync: " + "; ".join(f"{k}: {m}" for k, m in
                                                           cmp.errors.items()),
                               comparison=cmp)
        if options.create_namespace and app.destination.namespace:
            results.extend(self._ensure_namespace(cmp, dry_run))
        targets = [t for t in cmp.targets if ResourceKey.of(t) not in cmp.shared]
        for key, owner in cmp.shared.items():
            results.append(ResourceResult(key, cmp.versions.get(key, "").rpartition("/")[2],
                                          "Sync", 0, st.SKIPPED,
                                          f"owned by application {owner}: not applied"))
        if not cmp.targets and not (app.sync_policy.automated and
                                    app.sync_policy.automated.allow_empty):
            if prune and any(d.status == ResourceStatus.REQUIRES_PRUNING
                             for d in cmp.diffs.values()):
                notes.append((st.PRUNE_REFUSED, "Git renders no resources and allowEmpty is "
                                                "false: nothing was pruned"))
            prune = False
        live = {k: v for k, v in cmp.live.items()}
        plan = build_plan(PlanInput(
            targets=targets + cmp.hooks,
            live=live,
            out_of_sync=cmp.out_of_sync(),
            prune=prune,
            options=options,
            operation=f"{cmp.revision[:7]}-{int(time.time())}",
        ))
        for key in plan.skipped_prunes:
            results.append(ResourceResult(key, cmp.versions.get(key, "").rpartition("/")[2],
                                          "Sync", 0, st.PRUNE_SKIPPED,
                                          plan.skip_reasons.get(key, "pruning disabled")))
        if plan.errors:
            # Objects the plan cannot place (e.g. a non-integer sync wave) fail the operation.
            for err in plan.errors:
                results.append(ResourceResult(err.key, cmp.versions.get(err.key, "")
                                              .rpartition("/")[2], "Sync", 0, st.FAILED,
                                              err.message))
            return SyncOutcome(app.name, cmp.revision, st.FAILED_PHASE,
                               "; ".join(f"{e.key}: {e.message}" for e in plan.errors),
                               results, comparison=cmp)
        executor = Executor(
            cmp.cluster, app=app.name, force=force, dry_run=dry_run,
            prune_propagation=options.prune_propagation_policy.capitalize(),
            hook_timeout=self.hook_timeout, should_continue=should_continue,
        )
        run: SyncRun = executor.run(plan)
        results.extend(run.results)
        return SyncOutcome(app.name, cmp.revision, run.phase, run.message, results,
                           comparison=cmp, conditions=notes)

    def _ensure_namespace(self, cmp: Comparison, dry_run: bool) -> list[ResourceResult]:
        name = cmp.app.destination.namespace
        if cmp.cluster.get("v1", "Namespace", name) is not None:
            return []
        ns = stamp({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                   cmp.app.name, namespace="")
        cmp.cluster.apply(ns, dry_run=dry_run)
        return [ResourceResult(ResourceKey("", "Namespace", "", name), "v1", "PreSync", 0,
                               st.WOULD_APPLY if dry_run else st.APPLIED,
                               "created (CreateNamespace=true)")]

    def _record_sync(self, app: Application, previous: dict[str, Any] | None, exists: bool,
                     outcome: SyncOutcome, started: str, revision: str | None, prune: bool,
                     initiated_by: str) -> None:
        if not exists or self.apps is None:
            return
        finished = st.now()
        # The post-sync state: compare again so status shows what the cluster now holds.
        extra: list[tuple[str, str]] = list(outcome.conditions)
        if outcome.phase in (st.FAILED_PHASE, st.ERROR_PHASE):
            extra.append((st.SYNC_ERROR, outcome.message))
        try:
            cmp = self.compare(app, previous, revision=revision or None)
            status = self.status_document(cmp, previous, extra)
        except GitOpsError as exc:
            status = dict(previous or {})
            status["conditions"] = [st.condition(st.SYNC_ERROR, str(exc))]
        status["operationState"] = {
            "operation": {"sync": {"revision": outcome.revision, "prune": prune,
                                   **({"targetRevision": revision} if revision else {})},
                          **({"initiatedBy": {"username": initiated_by}}
                             if initiated_by else {})},
            "phase": outcome.phase,
            "message": outcome.message,
            "startedAt": started,
            "finishedAt": finished,
            "syncResult": {
                "revision": outcome.revision,
                "resources": [r.to_dict() for r in outcome.results],
            },
        }
        if outcome.succeeded:
            history = list((previous or {}).get("history") or [])
            entry = st.history_entry(
                st.next_history_id(history), outcome.revision,
                {"repoURL": app.source.repo_url, "path": app.source.path,
                 "targetRevision": revision or app.source.target_revision},
                started, finished, initiated_by)
            status["history"] = st.append_history(history, entry, app.revision_history_limit)
        self._write(app, status, previous)

    # ---------------------------------------------------------------- rollback

    def rollback(self, app: Application, history_id: int, *, force: bool = False,
                 prune: bool | None = None) -> SyncOutcome:
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
                         initiated_by="rollback")
