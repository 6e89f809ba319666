"""Git versus the cluster for one app: render, read live objects, diff, assess health.

`Comparer.compare` is called by the reconciler for every refresh and sync. It reads only the
objects the app renders and the inventory it recorded, detects objects another app owns, and
asks the API server for a dry-run apply only when the manifest or the live object changed (the
dry-run cache). Without a recorded inventory (an app never registered, its status lost, the
Application re-created) the app's objects are found by its tracking label instead, one
metadata list per served kind, so what left Git is still pruned; that scan is the exception,
paid once, since the first status written records the inventory.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .cluster import (
    ApiForbidden,
    ApiPermanent,
    ApiTransient,
    Cluster,
    Destinations,
    UnknownKind,
)
from .diff import DryRunCache, ResourceDiff, ResourceStatus, compare, manifest_hash
from .errors import PermanentError
from .health import NONE, Customizations, Health, HealthStatus, app_health, resource_health
from .log import get_logger
from .manifests import ManifestSource
from .model import Application, keys
from .model import status as st
from .model.operation import OperationState
from .model.resources import ResourceKey
from .render.tracking import owner_of, stamp
from .sync import app_options, hook_types, object_options

# Kinds a tracking label on which never means the app applied it: events copy nothing, but
# are listed in every namespace and there are many of them.
_NOT_APPLIED = frozenset({("", "Event"), ("events.k8s.io", "Event")})

_log = get_logger(component="comparison")


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
    # The app's objects were found by label (there was no recorded inventory).
    discovered: bool = False
    # The users' health scripts this comparison judged with: the sync after it uses the same.
    customizations: Customizations = NONE

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

    def resource_entries(self) -> list[dict[str, Any]]:
        """The status.resources list: one entry per resource with sync status and health."""
        out = []
        keys_sorted = sorted(set(self.diffs) | set(self.shared) | set(self.errors))
        for key in keys_sorted:
            api_version = self.versions.get(key, "")
            entry = st.resource_ref(key, api_version.rpartition("/")[2])
            diff = self.diffs.get(key)
            if key in self.shared:
                entry["status"] = "OutOfSync"
                entry["message"] = f"owned by application {self.shared[key]}"
            elif key in self.errors:
                entry["status"] = "Unknown"
                entry["message"] = self.errors[key]
            elif diff is not None:
                entry["status"] = ("Synced" if diff.status == ResourceStatus.SYNCED
                                   else "OutOfSync")
                if diff.status == ResourceStatus.REQUIRES_PRUNING:
                    entry["requiresPruning"] = True
                if diff.status == ResourceStatus.MISSING:
                    entry["message"] = "missing from the cluster"
            health = self.healths.get(key)
            if health is not None:
                entry["health"] = {"status": health.status.value}
                if health.message:
                    entry["health"]["message"] = health.message
            out.append(entry)
        return out


def _child_app_not_yet_reporting(key: ResourceKey, health: Health | None) -> bool:
    """As Argo CD: a child Application that is Missing or Unknown (not created or not yet
    reconciled) does not make its parent unhealthy; its own status reports it."""
    return (key.group == keys.GROUP and key.kind == keys.KIND and health is not None
            and health.status in (HealthStatus.MISSING, HealthStatus.UNKNOWN))


def _fill_scope(cluster: Cluster, obj: dict[str, Any], app: Application,
                crd_scopes: dict[tuple[str, str], bool], skip_missing: bool = False) -> None:
    """Namespaced objects without a namespace go to the destination namespace; cluster-scoped
    ones lose any namespace; then the tracking id is stamped again with the final namespace.
    A kind the cluster does not serve yet takes its scope from a CRD among the targets, or,
    with SkipDryRunOnMissingResource, is taken as namespaced (as Argo CD takes an unknown kind)
    and left for the sync to apply once its CRD exists."""
    api_version = str(obj.get("apiVersion", ""))
    kind = str(obj.get("kind", ""))
    group = api_version.rpartition("/")[0]
    try:
        namespaced = cluster.resource(api_version, kind).namespaced
    except UnknownKind:
        if (group, kind) in crd_scopes:
            namespaced = crd_scopes[(group, kind)]
        elif skip_missing:
            namespaced = True
        else:
            raise
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


class Comparer:
    def __init__(self, manifests: ManifestSource, destinations: Destinations,
                 dry_run_cache: DryRunCache | None = None,
                 customizations: Callable[[], Customizations] | None = None) -> None:
        self.manifests = manifests
        self.destinations = destinations
        self.dry_run_cache = dry_run_cache or DryRunCache(None)
        # Asked once per comparison (it re-reads its sources at most every 30 s itself).
        self.customizations = customizations or (lambda: NONE)

    def compare(self, app: Application, previous: dict[str, Any] | None = None, *,
                revision: str | None = None, sha: str | None = None,
                hard: bool = False) -> Comparison:
        """Render Git, read the live objects, diff and assess health. Raises GitOpsError when
        the app cannot be compared at all (render failed, cluster unknown). `sha`: the commit,
        when the caller resolved it already; `hard`: no render or dry-run cache."""
        cluster = self.destinations.resolve(app.destination)
        rendered = self.manifests.manifests(app, revision, sha=sha, fresh=hard)
        cmp = Comparison(app=app, revision=rendered.revision, cluster=cluster,
                         customizations=self.customizations())
        objects = copy.deepcopy(rendered.manifests)
        scopes = _crd_scopes(objects)
        defaults = app_options(app.sync_policy.sync_options).object_defaults()
        seen: set[ResourceKey] = set()
        for obj in objects:
            try:
                _fill_scope(cluster, obj, app, scopes,
                            object_options(obj, defaults).skip_dry_run_on_missing_resource)
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
        self._diff(cmp, hard)
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

    def _discover(self, cmp: Comparison) -> dict[ResourceKey, str]:
        """The app's objects by its tracking label, across every kind the destination serves
        and lists, in the namespaces it deploys to: for an app with no recorded inventory.
        An object counts only when its tracking annotation names this app and the object
        itself (a controller that copies labels and annotations to what it creates does not
        make those objects the app's). A kind this identity may not list is skipped, and
        said."""
        cmp.discovered = True
        selector = f"{keys.APP_LABEL}={keys.app_label_value(cmp.app.name)}"
        # Namespaced kinds are looked for where the app deploys (its destination and the
        # namespaces its manifests name), not cluster-wide: cheaper, and an app of the same
        # name deploying elsewhere (another control namespace) is not mistaken for this one.
        namespaces = sorted({cmp.app.destination.namespace,
                             *(k.namespace for k in cmp.versions)} - {""})
        out: dict[ResourceKey, str] = {}
        skipped: list[str] = []
        for info in cmp.cluster.served_kinds():
            if "list" not in info.verbs or (info.group, info.kind) in _NOT_APPLIED:
                continue
            items: list[dict[str, Any]] = []
            try:
                for namespace in (namespaces if info.namespaced else [""]):
                    items.extend(self._list_retrying(cmp.cluster, info.api_version, info.kind,
                                                     namespace, selector))
            except (ApiForbidden, UnknownKind, ApiTransient):
                # One kind the server will not list now must not keep the whole app from
                # being compared (a scan makes dozens of requests): it is skipped, and said.
                skipped.append(f"{info.kind}.{info.group}" if info.group else info.kind)
                continue
            for item in items:
                meta = item.get("metadata") or {}
                value = (meta.get("annotations") or {}).get(keys.TRACKING_ANNOTATION)
                parsed = keys.parse_tracking_id(value) if isinstance(value, str) else None
                key = ResourceKey(info.group, info.kind, str(meta.get("namespace") or ""),
                                  str(meta.get("name") or ""))
                if parsed == (cmp.app.name, key.group, key.kind, key.namespace, key.name):
                    out[key] = info.api_version
        if skipped:
            _log.warning("objects of some kinds could not be listed; those are not found "
                         "for pruning", app=cmp.app.name, kinds=sorted(skipped))
        return out

    @staticmethod
    def _list_retrying(cluster: Cluster, api_version: str, kind: str, namespace: str,
                       selector: str, attempts: int = 3) -> list[dict[str, Any]]:
        for attempt in range(attempts):
            try:
                return cluster.list_metadata(api_version, kind, namespace=namespace,
                                             label_selector=selector)[0]
            except ApiTransient:
                if attempt == attempts - 1:
                    raise
        return []

    def _read_live(self, cmp: Comparison, previous: dict[str, Any] | None) -> None:
        # Hooks are not compared: the sync reads each one itself, by its per-operation name.
        hooks = {ResourceKey.of(h) for h in cmp.hooks}
        wanted = {k: v for k, v in cmp.versions.items() if k not in hooks}
        recorded = previous is not None and "resources" in previous
        found = self._inventory(previous) if recorded else self._discover(cmp)
        for key, api_version in found.items():
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
            owner = owner_of(live)
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

    def _diff(self, cmp: Comparison, hard: bool = False) -> None:
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
                cmp.diffs[key] = compare(key, target, None, rules)
                cmp.healths[key] = resource_health(None)
                continue
            try:
                predicted = self._predict(cmp, target, live, hard)
            except ApiPermanent as exc:
                cmp.errors[key] = exc.message
                cmp.conditions.append((st.COMPARISON_ERROR, f"{key}: {exc.message}"))
                cmp.healths[key] = resource_health(live, cmp.customizations)
                continue
            cmp.diffs[key] = compare(key, predicted, live, rules)
            cmp.healths[key] = resource_health(live, cmp.customizations)
        for key, live in cmp.live.items():
            if key not in target_keys and key not in hook_keys:
                cmp.diffs[key] = compare(key, None, live, rules, tracked=True)
                cmp.healths[key] = resource_health(live, cmp.customizations)

    def remember_applied(self, cluster: Cluster, target: dict[str, Any],
                         stored: dict[str, Any]) -> None:
        """After a real server-side apply of `target`, the object the server returned is also
        what a dry-run of `target` against it would predict (applying the same manifest again
        changes nothing): cached, so the refresh after a sync needs no dry-run."""
        rv = str((stored.get("metadata") or {}).get("resourceVersion", ""))
        if rv:
            self.dry_run_cache.put(cluster.name, manifest_hash(target), rv, stored)

    def _predict(self, cmp: Comparison, target: dict[str, Any], live: dict[str, Any],
                 hard: bool = False) -> dict[str, Any]:
        """What the server would hold after our apply: a dry-run apply, cached by (manifest,
        live resourceVersion) so a refresh where nothing changed asks the server nothing."""
        digest = manifest_hash(target)
        rv = str((live.get("metadata") or {}).get("resourceVersion", ""))
        cached = None if hard else self.dry_run_cache.get(cmp.cluster.name, digest, rv)
        if cached is not None:
            return cached
        validate = object_options(
            target, app_options(cmp.app.sync_policy.sync_options).object_defaults()).validate
        predicted = cmp.cluster.apply(target, force=True, dry_run=True, validate=validate)
        cmp.dry_runs += 1
        self.dry_run_cache.put(cmp.cluster.name, digest, rv, predicted)
        return predicted


def status_document(cmp: Comparison, previous: dict[str, Any] | None,
                    extra_conditions: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """The refresh's part of the status from `cmp` (sync, health, resources, conditions), with
    the operation's part (operationState, history, and the conditions the last operation
    raised) kept from `previous`. Written by the refresh, and by the last step of a sync."""
    previous = previous or {}
    old_conditions = previous.get("conditions") or []
    health = cmp.health
    state = OperationState.from_dict(previous.get("operationState"))
    op_conditions: list[tuple[str, str]] = []
    if state is not None:
        op_conditions = list(state.conditions)
        if state.phase in (st.FAILED_PHASE, st.ERROR_PHASE):
            op_conditions.append((st.SYNC_ERROR, state.message))
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
        "conditions": [st.condition(t, m, old_conditions) for t, m in
                       dict.fromkeys([*cmp.conditions, *op_conditions, *extra_conditions])],
        "reconciledAt": st.now(),
    }
    for keep in ("operationState", "history"):
        if keep in previous:
            status[keep] = previous[keep]
    return status


def after_sync(cmp: Comparison, applied: Mapping[ResourceKey, dict[str, Any]],
               pruned: Iterable[ResourceKey]) -> Comparison:
    """The comparison as it stands once a sync applied `applied` (key -> the object the server
    returned) and deleted `pruned`: what a refresh right after the sync would find, without
    reading the objects again (an object the server just returned from our apply is, by
    definition, what Git says). Objects not touched keep what `cmp` read of them."""
    after = replace(cmp, live=dict(cmp.live), diffs=dict(cmp.diffs), healths=dict(cmp.healths))
    targets = {ResourceKey.of(t) for t in cmp.targets}
    for key, obj in applied.items():
        if key not in targets:
            continue  # hooks, and the CreateNamespace namespace, are not part of the app
        after.live[key] = obj
        after.diffs[key] = compare(key, obj, obj, cmp.app.ignore_differences)
        after.healths[key] = resource_health(obj, cmp.customizations)
    for key in pruned:
        for table in (after.live, after.diffs, after.healths):
            table.pop(key, None)
    return after
