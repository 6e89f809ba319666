"""The reconciler: refresh (compare Git with the cluster), sync, rollback. Plain Python, no Celery.

Reads top to bottom like kustomize-controller's reconcile: guard clauses first (dependencies),
then render, read live state, diff, health, plan, apply, prune, record. Each step is a call into
its own layer (manifests, cluster, diff, health, sync); this module only chains them and writes
the Application status. Called by the CLI (`diff`, `sync`) and by the tasks.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .cluster import ApiPermanent, Cluster, Destinations, UnknownKind
from .diff import DryRunCache, ResourceDiff, ResourceStatus, compare, manifest_hash
from .errors import GitOpsError, PermanentError, TransientError
from .health import Health, HealthStatus, app_health, resource_health
from .log import get_logger
from .manifests import ManifestSource
from .model import Application, keys
from .model import status as st
from .model.resources import ResourceKey
from .render.tracking import stamp
from .sync import (
    AppSyncOptions,
    PlanInput,
    app_options,
    build_plan,
    hook_types,
    object_options,
)
from .sync.engine import Executor, ResourceResult, SyncRun

_log = get_logger(component="reconcile")


@dataclass
class Comparison:
    """Git versus the cluster for one app at one revision."""

    app: Application
    revision: str
    cluster: Cluster
    targets: list[dict[str, Any]] = field(default_factory=list)
    hooks: list[dict[str, Any]] = field(default_factory=list)
    live: dict[ResourceKey, dict[str, Any]] = field(default_factory=dict)
    versions: dict[ResourceKey, str] = field(default_factory=dict)
    diffs: dict[ResourceKey, ResourceDiff] = field(default_factory=dict)
    healths: dict[ResourceKey, Health | None] = field(default_factory=dict)
    shared: dict[ResourceKey, str] = field(default_factory=dict)
    errors: dict[ResourceKey, str] = field(default_factory=dict)
    conditions: list[tuple[str, str]] = field(default_factory=list)
    dry_runs: int = 0

    @property
    def sync_status(self) -> str:
        if self.errors:
            return "Unknown" if not self.diffs else "OutOfSync"
        bad = (ResourceStatus.OUT_OF_SYNC, ResourceStatus.MISSING, ResourceStatus.REQUIRES_PRUNING)
        if any(d.status in bad for d in self.diffs.values()) or self.shared:
            return "OutOfSync"
        return "Synced"

    @property
    def health(self) -> Health:
        target_keys = {ResourceKey.of(t) for t in self.targets}
        return app_health(h for k, h in self.healths.items()
                          if k in target_keys and not _child_app_not_yet_reporting(k, h))

    def out_of_sync(self) -> set[ResourceKey]:
        return {k for k, d in self.diffs.items() if d.status != ResourceStatus.SYNCED}


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


class AppStore:
    """Applications (and their status) in the control cluster's control namespace."""

    def __init__(self, cluster: Cluster, namespace: str = keys.DEFAULT_CONTROL_NAMESPACE) -> None:
        self.cluster = cluster
        self.namespace = namespace

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            return self.cluster.get(keys.API_VERSION, keys.KIND, name, self.namespace)
        except UnknownKind:
            return None

    def list(self) -> list[dict[str, Any]]:
        try:
            return self.cluster.list(keys.API_VERSION, keys.KIND, namespace=self.namespace)
        except UnknownKind:
            return []

    def write_status(self, name: str, status: dict[str, Any],
                     previous: dict[str, Any] | None = None) -> None:
        """Replace the status: a merge patch that also nulls what `previous` had and `status`
        dropped (a plain merge patch would keep, say, a stale health message)."""
        self.cluster.patch_status(keys.API_VERSION, keys.KIND, name, self.namespace,
                                  _replacing_merge_patch(previous or {}, status))


def _replacing_merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(old.get(k), dict):
            patch[k] = _replacing_merge_patch(old[k], v)
        else:
            patch[k] = v
    for k in old:
        if k not in new:
            patch[k] = None
    return patch


def _child_app_not_yet_reporting(key: ResourceKey, health: Health | None) -> bool:
    """As Argo CD: a child Application that is Missing or Unknown (not created or not yet
    reconciled) does not make its parent unhealthy; its own status reports it."""
    return (key.group == keys.GROUP and key.kind == keys.KIND and health is not None
            and health.status in (HealthStatus.MISSING, HealthStatus.UNKNOWN))


def _fill_scope(cluster: Cluster, obj: dict[str, Any], app: Application,
                crd_scopes: dict[tuple[str, str], bool]) -> None:
    """Namespaced objects without a namespace go to the destination namespace; cluster-scoped
    ones lose any namespace; then the tracking id is stamped again with the final namespace."""
    api_version = str(obj.get("apiVersion", ""))
    kind = str(obj.get("kind", ""))
    group = api_version.rpartition("/")[0]
    try:
        namespaced = cluster.resource(api_version, kind).namespaced
    except UnknownKind:
        if (group, kind) not in crd_scopes:
            raise
        namespaced = crd_scopes[(group, kind)]
    meta = obj.setdefault("metadata", {})
    if namespaced:
        if not meta.get("namespace"):
            if not app.destination.namespace:
                raise PermanentError(f"{kind} {meta.get('name')} has no namespace and the "
                                     "Application's destination sets none", app=app.name)
            meta["namespace"] = app.destination.namespace
    else:
        meta.pop("namespace", None)
    stamp(obj, app.name, namespace=meta.get("namespace", ""))


def _crd_scopes(targets: list[dict[str, Any]]) -> dict[tuple[str, str], bool]:
    scopes: dict[tuple[str, str], bool] = {}
    for t in targets:
        if t.get("kind") == "CustomResourceDefinition":
            spec = t.get("spec") or {}
            kind = (spec.get("names") or {}).get("kind", "")
            scopes[(spec.get("group", ""), kind)] = spec.get("scope", "Namespaced") == "Namespaced"
    return scopes


def _tracked_by(obj: dict[str, Any]) -> str:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(keys.TRACKING_ANNOTATION)
    parsed = keys.parse_tracking_id(value) if value else None
    return parsed[0] if parsed else ""


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
        self.dry_run_cache = dry_run_cache or DryRunCache(None)
        self.hook_timeout = hook_timeout
        self.sleep = sleep

    # ---------------------------------------------------------------- compare

    def compare(self, app: Application, previous: dict[str, Any] | None = None, *,
                revision: str | None = None) -> Comparison:
        """Render Git, read the live objects, diff and assess health. Raises GitOpsError when
        the app cannot be compared at all (render failed, cluster unknown)."""
        cluster = self.destinations.resolve(app.destination)
        rendered = self.manifests.manifests(app, revision)
        cmp = Comparison(app=app, revision=rendered.revision, cluster=cluster)
        objects = copy.deepcopy(rendered.manifests)
        scopes = _crd_scopes(objects)
        seen: set[ResourceKey] = set()
        for obj in objects:
            try:
                _fill_scope(cluster, obj, app, scopes)
            except UnknownKind as exc:
                key = ResourceKey.of(obj)
                cmp.errors[key] = exc.message
                cmp.conditions.append((st.COMPARISON_ERROR, f"{key}: {exc.message}"))
                continue
            key = ResourceKey.of(obj)
            is_hook = bool(hook_types(obj))
            # generateName hooks have no name yet; the plan names them per operation.
            if key in seen and not (is_hook and not key.name):
                cmp.conditions.append((st.COMPARISON_ERROR,
                                       f"{key} appears more than once in the manifests"))
                continue
            seen.add(key)
            if is_hook:
                cmp.hooks.append(obj)
            else:
                cmp.targets.append(obj)
            cmp.versions[key] = str(obj.get("apiVersion", ""))
        self._read_live(cmp, previous)
        self._diff(cmp)
        return cmp

    def _inventory(self, previous: dict[str, Any] | None) -> dict[ResourceKey, str]:
        """What this app applied before, from its recorded status (not a cluster-wide scan)."""
        out: dict[ResourceKey, str] = {}
        for r in (previous or {}).get("resources") or []:
            group = r.get("group", "")
            version = r.get("version", "")
            api_version = f"{group}/{version}" if group else version
            out[ResourceKey(group, r.get("kind", ""), r.get("namespace", ""),
                            r.get("name", ""))] = api_version
        return out

    def _read_live(self, cmp: Comparison, previous: dict[str, Any] | None) -> None:
        wanted = dict(cmp.versions)
        for key, api_version in self._inventory(previous).items():
            wanted.setdefault(key, api_version)
        for key, api_version in wanted.items():
            if key in cmp.errors:
                continue
            try:
                live = cmp.cluster.get(api_version, key.kind, key.name, key.namespace)
            except UnknownKind:
                live = None
            if live is None:
                continue
            owner = _tracked_by(live)
            if key in cmp.versions:
                if owner and owner != cmp.app.name:
                    cmp.shared[key] = owner
                    cmp.conditions.append((st.SHARED_RESOURCE,
                                           f"{key} is part of application {owner}; "
                                           f"{cmp.app.name} leaves it alone"))
                    continue
                cmp.live[key] = live
            elif owner == cmp.app.name:
                # In the inventory, gone from Git, still ours: a prune candidate.
                cmp.live[key] = live
                cmp.versions.setdefault(key, api_version)

    def _diff(self, cmp: Comparison) -> None:
        hook_keys = {ResourceKey.of(h) for h in cmp.hooks}
        rules = cmp.app.ignore_differences
        target_keys = set()
        for target in cmp.targets:
            key = ResourceKey.of(target)
            target_keys.add(key)
            if key in cmp.shared:
                continue
            live = cmp.live.get(key)
            if live is None:
                cmp.diffs[key] = compare(key, None, None, rules)
                cmp.healths[key] = resource_health(None)
                continue
            try:
                predicted = self._predict(cmp, target, live)
            except ApiPermanent as exc:
                cmp.errors[key] = exc.message
                cmp.conditions.append((st.COMPARISON_ERROR, f"{key}: {exc.message}"))
                cmp.healths[key] = resource_health(live)
                continue
            cmp.diffs[key] = compare(key, predicted, live, rules)
            cmp.healths[key] = resource_health(live)
        for key, live in cmp.live.items():
            if key not in target_keys and key not in hook_keys:
                cmp.diffs[key] = compare(key, None, live, rules, tracked=True)
                cmp.healths[key] = resource_health(live)

    def _predict(self, cmp: Comparison, target: dict[str, Any], live: dict[str, Any]
                 ) -> dict[str, Any]:
        """What the server would hold after our apply: a dry-run apply, cached by (manifest,
        live resourceVersion) so a refresh where nothing changed asks the server nothing."""
        digest = manifest_hash(target)
        rv = str((live.get("metadata") or {}).get("resourceVersion", ""))
        cached = self.dry_run_cache.get(cmp.cluster.name, digest, rv)
        if cached is not None:
            return cached
        validate = object_options(
            target, app_options(cmp.app.sync_policy.sync_options).object_defaults()).validate
        predicted = cmp.cluster.apply(target, force=True, dry_run=True, validate=validate)
        cmp.dry_runs += 1
        self.dry_run_cache.put(cmp.cluster.name, digest, rv, predicted)
        return predicted

    # ---------------------------------------------------------------- status

    def _resources_status(self, cmp: Comparison) -> list[dict[str, Any]]:
        out = []
        keys_sorted = sorted(set(cmp.diffs) | set(cmp.shared) | set(cmp.errors))
        for key in keys_sorted:
            api_version = cmp.versions.get(key, "")
            entry = st.resource_ref(key, api_version.rpartition("/")[2])
            diff = cmp.diffs.get(key)
            if key in cmp.shared:
                entry["status"] = "OutOfSync"
                entry["message"] = f"owned by application {cmp.shared[key]}"
            elif key in cmp.errors:
                entry["status"] = "Unknown"
                entry["message"] = cmp.errors[key]
            elif diff is not None:
                entry["status"] = ("Synced" if diff.status == ResourceStatus.SYNCED
                                   else "OutOfSync")
                if diff.status == ResourceStatus.REQUIRES_PRUNING:
                    entry["requiresPruning"] = True
                if diff.status == ResourceStatus.MISSING:
                    entry["message"] = "missing from the cluster"
            health = cmp.healths.get(key)
            if health is not None:
                entry["health"] = {"status": health.status.value}
                if health.message:
                    entry["health"]["message"] = health.message
            out.append(entry)
        return out

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
            "resources": self._resources_status(cmp),
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

    # ---------------------------------------------------------------- dependencies

    def dependencies_ready(self, app: Application) -> tuple[bool, str]:
        """(ready, message). Unready dependencies or a dependency cycle block the sync."""
        if not app.depends_on:
            return True, ""
        if self.apps is None:
            return False, "dependsOn needs Applications in the control namespace"
        from .model import parse_application

        cycle = self._find_cycle(app)
        if cycle:
            raise PermanentError("dependency cycle: " + " -> ".join(cycle), app=app.name)
        waiting = []
        for dep in app.depends_on:
            obj = self.apps.get(dep)
            if obj is None:
                waiting.append(f"{dep} (not found)")
                continue
            parse_application(obj)  # an invalid dependency is reported as such
            health = ((obj.get("status") or {}).get("health") or {}).get("status", "Unknown")
            sync = ((obj.get("status") or {}).get("sync") or {}).get("status", "Unknown")
            if health != HealthStatus.HEALTHY.value or sync != "Synced":
                waiting.append(f"{dep} ({sync}, {health})")
        if waiting:
            return False, "waiting for dependencies: " + ", ".join(waiting)
        return True, ""

    def _find_cycle(self, app: Application) -> list[str]:
        assert self.apps is not None
        graph: dict[str, list[str]] = {app.name: list(app.depends_on)}
        stack = list(app.depends_on)
        while stack:
            name = stack.pop()
            if name in graph:
                continue
            obj = self.apps.get(name) or {}
            deps = list(((obj.get("spec") or {}).get("dependsOn")) or [])
            graph[name] = deps
            stack.extend(deps)
        path: list[str] = []
        visiting: set[str] = set()

        def visit(node: str) -> list[str]:
            if node in visiting:
                return [*path[path.index(node):], node]
            visiting.add(node)
            path.append(node)
            for nxt in graph.get(node, []):
                found = visit(nxt)
                if found:
                    return found
            path.pop()
            visiting.discard(node)
            return []

        return visit(app.name)

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
            ready, message = self.dependencies_ready(app)
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
