"""The sync plan: which object is applied, run as a hook or pruned, and in what order.

Called by the sync engine (`gitops_tasks/sync/engine.py`) at every step of a sync: the sync is
a step function, so each step rebuilds the plan from the rendered manifests and the live state,
runs the first wave that is not done yet, and returns. The plan is therefore plain data and
`build_plan` a pure, deterministic function: the same input gives the same tasks in the same
order, and nothing here performs I/O.

Order (gitops-engine's `syncTasks.Less`, with the differences listed at `SyncTask.sort_key`):
1. phase: PreSync, Sync, PostSync, SyncFail (SyncFail runs only when the sync failed);
2. wave: `gitops-tasks.io/sync-wave`, else `argocd.argoproj.io/sync-wave`, else Helm's
   `helm.sh/hook-weight`, else 0;
3. within a wave, applies and hooks first, by kind (`kinds.KIND_ORDER`), then prunes in reverse
   kind order (a Deployment is deleted before the ConfigMap it mounts);
4. then kind, group, namespace and name, so that the order is total.

Dependency fixes (`_fix_dependencies`), as gitops-engine's `syncTasks.adjustDeps`: a Namespace
or a CustomResourceDefinition applied by this sync moves *earlier*, into the phase and wave of
the first task that needs it (an object in that namespace; a custom resource of the kind the
CRD defines), where kind order then puts it first. The objects that need it keep the phase and
wave their annotations give. Each such task lists what it needs in `SyncTask.depends_on`, so
the engine can wait for a CRD to be established (and skip the dry-run of its custom resources)
before applying them.

Why move the dependency earlier rather than the dependent later: a custom resource in wave -2
is often something a wave -1 object needs (a Certificate whose Secret a Deployment mounts);
pushing it to its CRD's wave 5 would break that, while a CRD or Namespace depends on nothing
the app renders. And a PreSync hook that is a custom resource must stay in PreSync; moving its
CRD into PreSync keeps it there. This is also what Argo CD users already get.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final

from ..model import keys
from ..model.resources import ResourceKey
from .hooks import (
    HELM_HOOK_WEIGHT,
    DeletePolicy,
    HookType,
    delete_policies,
    hook_name,
    hook_types,
    is_skipped,
)
from .kinds import is_crd, is_namespace, kind_rank
from .options import AppSyncOptions, ObjectSyncOptions, annotations_of, object_options


class Phase(StrEnum):
    PRE_SYNC = "PreSync"
    SYNC = "Sync"
    POST_SYNC = "PostSync"
    SYNC_FAIL = "SyncFail"

    @property
    def order(self) -> int:
        return _PHASE_ORDER[self]


_PHASE_ORDER: Final = {phase: i for i, phase in enumerate(Phase)}
_HOOK_PHASES: Final = {
    HookType.PRE_SYNC: Phase.PRE_SYNC,
    HookType.SYNC: Phase.SYNC,
    HookType.POST_SYNC: Phase.POST_SYNC,
    HookType.SYNC_FAIL: Phase.SYNC_FAIL,
}


class Action(StrEnum):
    APPLY = "apply"  # server-side apply the target
    PRUNE = "prune"  # delete the live object: tracked by the app, no longer rendered
    HOOK = "hook"  # create the hook object and wait for it to complete
    NONE = "none"  # in sync, and the app asked for ApplyOutOfSyncOnly: report it unchanged


@dataclass(frozen=True)
class SyncTask:
    """One object's part in a sync. `wave` and `phase` are the effective ones, after the
    dependency fixes and PruneLast; the annotations may say otherwise."""

    key: ResourceKey
    phase: Phase
    wave: int
    action: Action
    target: dict[str, Any] | None  # desired manifest; None for a prune
    live: dict[str, Any] | None  # the object in the cluster; None when it does not exist yet
    options: ObjectSyncOptions  # effective: app-level options overridden by the annotation
    hook_types: tuple[HookType, ...] = ()
    delete_policies: tuple[DeletePolicy, ...] = ()
    # Namespaces and CRDs applied by this plan, earlier, that this task needs to exist first.
    depends_on: tuple[ResourceKey, ...] = ()

    @property
    def is_prune(self) -> bool:
        return self.action is Action.PRUNE

    @property
    def is_hook(self) -> bool:
        return self.action is Action.HOOK

    def sort_key(self) -> tuple[int, int, int, int, str, str, str, str]:
        """(phase, wave, applies-then-prunes, kind rank, kind, group, namespace, name).

        Prunes come after the applies of their wave, in reverse kind order: what depends on
        something goes before it. PruneLast needs no place of its own here, because
        `build_plan` has already moved those prunes to a wave after every other Sync wave.
        Unlike Argo CD (which prunes first, in parallel, within a wave), new objects exist
        before old ones go, so a rename never leaves a gap.
        """
        k = self.key
        rank = kind_rank(k.group, k.kind)
        if self.is_prune:
            return (self.phase.order, self.wave, 1, -rank, k.kind, k.group, k.namespace, k.name)
        return (self.phase.order, self.wave, 0, rank, k.kind, k.group, k.namespace, k.name)

    def __str__(self) -> str:
        return f"{self.phase.value}[{self.wave}] {self.action.value} {self.key}"


@dataclass(frozen=True)
class PlanError:
    """An object the plan could not place (e.g. an invalid sync-wave). It gets no task; the
    engine reports it as that resource's failure. A target with an error is still never
    pruned."""

    key: ResourceKey
    message: str


@dataclass(frozen=True)
class PlanInput:
    """Everything `build_plan` needs; assembled by the engine from render, cluster and diff."""

    # Rendered manifests, namespace already filled in for namespaced kinds.
    targets: Sequence[dict[str, Any]]
    # Live objects tracked by the app (its inventory, filtered on the tracking annotation).
    live: Mapping[ResourceKey, dict[str, Any]]
    # Keys whose diff is not Synced (from the diff layer); only read for ApplyOutOfSyncOnly.
    out_of_sync: Set[ResourceKey] = frozenset()
    # Prune enabled for this sync (automated prune, or asked for).
    prune: bool = False
    # Why prune was asked for and is still off for this sync (said per skipped resource).
    prune_refused: str = ""
    options: AppSyncOptions = field(default_factory=AppSyncOptions)
    # Unique per sync operation (e.g. "<short revision>-<start time>"): names generateName
    # hooks, see `hooks.hook_name`. Must stay the same across the steps of one operation.
    operation: str = ""


@dataclass(frozen=True)
class Plan:
    tasks: tuple[SyncTask, ...]  # in execution order
    # Live objects that would be pruned, but are not: prune disabled, Prune=false, Delete=false.
    skipped_prunes: tuple[ResourceKey, ...] = ()
    skip_reasons: Mapping[ResourceKey, str] = field(default_factory=dict)
    errors: tuple[PlanError, ...] = ()

    def waves(self) -> list[tuple[Phase, int, list[SyncTask]]]:
        """The tasks grouped by (phase, wave), in execution order. The engine runs one group per
        step; the SyncFail groups only when the sync failed."""
        groups: list[tuple[Phase, int, list[SyncTask]]] = []
        for task in self.tasks:
            if groups and groups[-1][0] is task.phase and groups[-1][1] == task.wave:
                groups[-1][2].append(task)
            else:
                groups.append((task.phase, task.wave, [task]))
        return groups


_INTEGER: Final = re.compile(r"[+-]?\d+")
_WAVE_KEYS: Final = (keys.SYNC_WAVE, keys.ARGO_SYNC_WAVE, HELM_HOOK_WEIGHT)


def wave_of(obj: Mapping[str, Any]) -> int:
    """The object's sync wave: ours, else Argo CD's, else Helm's hook weight, else 0.

    The first annotation present decides, even if it is invalid: a value that is not an integer
    raises ValueError naming the object and the annotation (Argo CD silently uses 0, which
    hides the mistake and runs the object at the wrong time).
    """
    annotations = annotations_of(obj)
    for key in _WAVE_KEYS:
        if key not in annotations:
            continue
        value = annotations[key]
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            return int(value.strip())
        raise ValueError(
            f"{ResourceKey.of(dict(obj))}: annotation {key} must be an integer sync wave, "
            f"not {value!r}")
    return 0


def build_plan(inp: PlanInput) -> Plan:
    """Tasks for every target and every tracked live object, fully ordered.

    - a target that is not a hook: APPLY in phase Sync (NONE when ApplyOutOfSyncOnly and it is
      live and not out of sync);
    - a hook: one HOOK task per phase it names (generateName hooks named by `hook_name`);
      Skip-only objects get no task at all;
    - a live object no target claims: PRUNE in phase Sync, in its own wave (PruneLast: after
      every Sync wave), unless prune is off or the object says Prune=false / Delete=false, in
      which case it is listed in `skipped_prunes`. Hooks are never pruned: their delete
      policies handle them;
    - an object with an invalid wave: no task, a `PlanError`.
    """
    defaults = inp.options.object_defaults()
    tasks: list[SyncTask] = []
    errors: list[PlanError] = []
    claimed: set[ResourceKey] = set()  # keys Git renders: never pruned, even when invalid
    seen: set[ResourceKey] = set()
    for obj in inp.targets:
        key = ResourceKey.of(obj)
        identity = key if key.name else replace(key, name=_generate_name(obj))
        if identity in seen:
            errors.append(PlanError(key, "rendered more than once; the first one is used"))
            continue
        seen.add(identity)
        claimed.add(key)
        try:
            tasks.extend(_target_tasks(obj, key, inp, defaults))
        except ValueError as exc:
            errors.append(PlanError(key, str(exc)))
    claimed.update(task.key for task in tasks)  # the generated names of hooks

    skipped: list[ResourceKey] = []
    reasons: dict[ResourceKey, str] = {}
    for key in sorted(inp.live):
        live = inp.live[key]
        if key in claimed or hook_types(live):
            continue
        options = object_options(live, defaults)
        reason = _prune_skip_reason(inp.prune, options, inp.prune_refused)
        if reason:
            skipped.append(key)
            reasons[key] = reason
            continue
        try:
            wave = wave_of(live)
        except ValueError as exc:
            errors.append(PlanError(key, str(exc)))
            continue
        tasks.append(SyncTask(key, Phase.SYNC, wave, Action.PRUNE, None, live, options))

    tasks = _prune_last(_fix_dependencies(tasks))
    tasks.sort(key=SyncTask.sort_key)
    return Plan(tuple(tasks), tuple(skipped), reasons, tuple(errors))


def _target_tasks(obj: dict[str, Any], key: ResourceKey, inp: PlanInput,
                  defaults: ObjectSyncOptions) -> list[SyncTask]:
    types = hook_types(obj)
    if is_skipped(types):
        return []
    wave = wave_of(obj)
    options = object_options(obj, defaults)
    if not types:
        live = inp.live.get(key)
        in_sync = live is not None and key not in inp.out_of_sync
        action = (Action.NONE if inp.options.apply_out_of_sync_only and in_sync
                  else Action.APPLY)
        return [SyncTask(key, Phase.SYNC, wave, action, obj, live, options)]

    policies = delete_policies(obj)
    phases = sorted({_HOOK_PHASES[t] for t in types if t in _HOOK_PHASES},
                    key=lambda p: p.order)
    out = []
    for phase in phases:
        name = hook_name(obj, phase.value, inp.operation)
        target = obj
        if name != key.name:
            # Copy rather than edit: the caller's manifest list is shared by every phase.
            target = copy.deepcopy(obj)
            target["metadata"]["name"] = name
        hook_key = replace(key, name=name)
        out.append(SyncTask(hook_key, phase, wave, Action.HOOK, target, inp.live.get(hook_key),
                            options, types, policies))
    return out


def _prune_skip_reason(prune: bool, options: ObjectSyncOptions, refused: str = "") -> str:
    if not prune:
        return f"requires pruning; {refused or 'prune is not enabled'}"
    if not options.prune:
        return "requires pruning; the object says Prune=false"
    if not options.delete:
        return "requires pruning; the object says Delete=false"
    return ""


def _fix_dependencies(tasks: list[SyncTask]) -> list[SyncTask]:
    """Move each applied Namespace and CRD into the phase and wave of the first task needing it.

    Only APPLY tasks provide (a Namespace that is already in sync under ApplyOutOfSyncOnly
    exists anyway; a Namespace or CRD annotated as a hook is left where its author put it), and
    only APPLY and HOOK tasks need (a NONE task applies nothing). One pass suffices: a Namespace
    and a CRD are cluster-scoped and are not custom resources, so a provider never needs
    another provider.
    """
    namespaces: dict[str, int] = {}
    crds: dict[tuple[str, str], int] = {}
    for i, task in enumerate(tasks):
        if task.action is not Action.APPLY or task.target is None:
            continue
        if is_namespace(task.key.group, task.key.kind):
            namespaces.setdefault(task.key.name, i)
        elif is_crd(task.key.group, task.key.kind):
            defined = _crd_defines(task.target)
            if defined:
                crds.setdefault(defined, i)
    if not namespaces and not crds:
        return tasks

    earliest: dict[int, tuple[int, int]] = {}  # provider index -> (phase order, wave)
    needs: dict[int, list[int]] = {}  # task index -> provider indexes
    for i, task in enumerate(tasks):
        if task.action not in (Action.APPLY, Action.HOOK):
            continue
        candidates = (namespaces.get(task.key.namespace) if task.key.namespace else None,
                      crds.get((task.key.group, task.key.kind)))
        providers = [p for p in candidates if p is not None and p != i]
        for p in providers:
            slot = (task.phase.order, task.wave)
            earliest[p] = min(earliest.get(p, slot), slot)
        if providers:
            needs[i] = providers

    out = list(tasks)
    phases = list(Phase)
    for p, (order, wave) in earliest.items():
        if (order, wave) < (out[p].phase.order, out[p].wave):
            out[p] = replace(out[p], phase=phases[order], wave=wave)
    for i, providers in needs.items():
        out[i] = replace(out[i], depends_on=tuple(out[p].key for p in providers))
    return out


def _prune_last(tasks: list[SyncTask]) -> list[SyncTask]:
    """PruneLast prunes go to a wave of their own after every Sync-phase wave (Argo CD: the last
    Sync wave plus one, counting from 0), so they run once all else has been applied."""
    if not any(t.is_prune and t.options.prune_last for t in tasks):
        return tasks
    last = max([0, *(t.wave for t in tasks if t.phase is Phase.SYNC)]) + 1
    return [replace(t, wave=last) if t.is_prune and t.options.prune_last else t for t in tasks]


def _crd_defines(crd: Mapping[str, Any]) -> tuple[str, str] | None:
    """(group, kind) of the custom resources a CRD manifest defines."""
    spec = crd.get("spec")
    if not isinstance(spec, Mapping):
        return None
    names = spec.get("names")
    group = spec.get("group")
    kind = names.get("kind") if isinstance(names, Mapping) else None
    if isinstance(group, str) and isinstance(kind, str) and group and kind:
        return group, kind
    return None


def _generate_name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("generateName") or "") if isinstance(meta, Mapping) else ""
