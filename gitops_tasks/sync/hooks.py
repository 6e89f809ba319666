"""Resource hooks: which phases an object runs in as a hook, and when its hook object is deleted.

Called by `plan.build_plan` (to turn hook objects into HOOK tasks and to keep hooks out of
pruning) and by the sync engine (to apply delete policies once a hook has run). Pure functions
of a manifest, no I/O.

The semantics are Argo CD's (gitops-engine `pkg/sync/hook`):
- the hook annotation is a comma-separated list of PreSync, Sync, PostSync, SyncFail, Skip;
  ours (`gitops-tasks.io/hook`) is read when present, otherwise Argo CD's;
- without either, Helm's `helm.sh/hook` is mapped: pre-install/pre-upgrade -> PreSync,
  post-install/post-upgrade -> PostSync; other Helm hooks (test, pre-delete, post-rollback, ...)
  have no counterpart in a sync and are left out (Skip); `crd-install` is not a hook at all, the
  CRD is applied as an ordinary resource;
- delete policies default to BeforeHookCreation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any, Final, TypeVar

from ..model import keys
from .options import annotations_of

# Helm's keys. They belong with the others in `gitops_tasks.model.keys`; they are here only
# because this change may not touch that module (move them when convenient).
HELM_HOOK: Final = keys.HELM_HOOK
HELM_HOOK_WEIGHT: Final = keys.HELM_HOOK_WEIGHT
HELM_HOOK_DELETE_POLICY: Final = keys.HELM_HOOK_DELETE_POLICY

_T = TypeVar("_T")


class HookType(StrEnum):
    PRE_SYNC = "PreSync"
    SYNC = "Sync"
    POST_SYNC = "PostSync"
    SYNC_FAIL = "SyncFail"
    SKIP = "Skip"


class DeletePolicy(StrEnum):
    HOOK_SUCCEEDED = "HookSucceeded"
    HOOK_FAILED = "HookFailed"
    BEFORE_HOOK_CREATION = "BeforeHookCreation"


# Matched without regard to case: "presync" silently leaving a Job out would be a cruel reading
# of a typo (Argo CD is case-sensitive here).
_HOOK_TYPES: Final = {t.value.lower(): t for t in HookType}
_DELETE_POLICIES: Final = {p.value.lower(): p for p in DeletePolicy}
_HELM_HOOK_TYPES: Final = {
    "pre-install": HookType.PRE_SYNC,
    "pre-upgrade": HookType.PRE_SYNC,
    "post-install": HookType.POST_SYNC,
    "post-upgrade": HookType.POST_SYNC,
}
_HELM_DELETE_POLICIES: Final = {
    "before-hook-creation": DeletePolicy.BEFORE_HOOK_CREATION,
    "hook-succeeded": DeletePolicy.HOOK_SUCCEEDED,
    "hook-failed": DeletePolicy.HOOK_FAILED,
}
_HELM_NOT_A_HOOK: Final = "crd-install"


def hook_types(obj: Mapping[str, Any]) -> tuple[HookType, ...]:
    """The hook types of `obj`, in annotation order without duplicates; () when not a hook.

    An annotation naming only types we do not know (a typo, or Argo CD's PostDelete) gives
    (Skip,): Argo CD leaves such an object out of the sync, and applying a hook meant for some
    other moment as a plain resource would be worse.
    """
    annotations = annotations_of(obj)
    for key in (keys.HOOK, keys.ARGO_HOOK):
        values = _csv(annotations.get(key))
        if values:
            found = _dedupe(_HOOK_TYPES[v.lower()] for v in values if v.lower() in _HOOK_TYPES)
            return found or (HookType.SKIP,)
    values = _csv(annotations.get(HELM_HOOK))
    if not values or all(v == _HELM_NOT_A_HOOK for v in values):
        return ()
    found = _dedupe(_HELM_HOOK_TYPES[v] for v in values if v in _HELM_HOOK_TYPES)
    return found or (HookType.SKIP,)


def is_skipped(types: Sequence[HookType]) -> bool:
    """Skip alone means "do not sync this object"; Skip next to a phase is ignored (Argo CD)."""
    return tuple(types) == (HookType.SKIP,)


def delete_policies(obj: Mapping[str, Any]) -> tuple[DeletePolicy, ...]:
    """The delete policies of a hook; () for an object that is not a hook.

    Ours or else Argo CD's annotation, plus Helm's (Argo CD merges both), defaulting to
    BeforeHookCreation so that re-running a named hook replaces the previous run's object.
    Unknown policies are ignored.
    """
    if not hook_types(obj):
        return ()
    annotations = annotations_of(obj)
    values = _csv(annotations.get(keys.HOOK_DELETE_POLICY)) or _csv(
        annotations.get(keys.ARGO_HOOK_DELETE_POLICY))
    policies = [_DELETE_POLICIES[v.lower()] for v in values if v.lower() in _DELETE_POLICIES]
    policies += [_HELM_DELETE_POLICIES[v]
                 for v in _csv(annotations.get(HELM_HOOK_DELETE_POLICY))
                 if v in _HELM_DELETE_POLICIES]
    return _dedupe(policies) or (DeletePolicy.BEFORE_HOOK_CREATION,)


def hook_name(obj: Mapping[str, Any], phase: str, operation: str = "") -> str:
    """The name a hook object gets in one phase of one sync operation.

    A named hook keeps its name. A hook with only `generateName` gets
    `<generateName><phase>[-<operation>]`, lower-cased: deterministic, because the sync is a step
    function that rebuilds its plan on every step and must find the hook it created on an
    earlier step (Argo CD uses revision, phase and start time the same way). The engine passes
    something unique per operation (e.g. short revision and start time) as `operation`.
    """
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    name = meta.get("name")
    if name:
        return str(name)
    generate = str(meta.get("generateName") or "")
    if not generate:
        return ""
    suffix = f"{phase}-{operation}" if operation else phase
    return f"{generate}{suffix.lower()}"


def _csv(value: Any) -> list[str]:
    if not isinstance(value, str):
        return []
    return [item.strip() for item in value.split(",") if item.strip()]


def _dedupe(items: Iterable[_T]) -> tuple[_T, ...]:
    return tuple(dict.fromkeys(items))
