"""Fallback health for kinds without a check of their own, mostly custom resources.

Called by `gitops_tasks.health.resource_health` for any (group, kind) missing from the registry.
Most operators follow the Kubernetes API conventions and report a few well-known condition types
(those of kstatus, Flux, Knative/Tekton and cert-manager); this reads them, first match wins:

- status.observedGeneration (when published) behind metadata.generation: Progressing, since the
  conditions describe an older spec.
- Stalled, Failed True, or Succeeded False: Degraded (the controller has given up).
- Reconciling or Issuing True: Progressing (work under way, whatever Ready says meanwhile).
- Ready True: Healthy. Ready False with a reason: Degraded, unless the reason names work in
  progress (Progressing, Creating, ...). Ready Unknown, or False without a reason: Progressing.
- Available or Succeeded True: Healthy; either present but not True: Progressing.
- Only Stalled/Failed/Reconciling/Issuing, none True: Healthy (kstatus "Current").

An object with none of these condition types returns None: the kind has no health notion we can
read (ConfigMap, Secret, RBAC, a CR whose operator reports something else), and it does not
count towards app health. `status.phase` is deliberately not read: its values are per-kind
vocabulary ("Active", "Released", "Running") that no generic rule maps safely.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import fields
from .status import Health, HealthStatus

_FAILED = ("Stalled", "Failed")
_WORKING = ("Reconciling", "Issuing")
_KNOWN = frozenset({*_FAILED, *_WORKING, "Ready", "Available", "Succeeded"})
# Ready False reasons that mean "not yet" rather than "broken" (Flux, Crossplane, cert-manager).
_IN_PROGRESS_REASONS = frozenset(
    {
        "Progressing",
        "Reconciling",
        "Creating",
        "Pending",
        "Initializing",
        "Provisioning",
        "Updating",
        "InProgress",
        "Issuing",
        "DependencyNotReady",
        "Waiting",
    }
)


def _stale(obj: Mapping[str, Any]) -> Health | None:
    # Only objects that publish observedGeneration can be held to it (kstatus does the same).
    if "observedGeneration" not in fields.mapping(obj, "status"):
        return None
    observed = fields.integer(obj, "status", "observedGeneration")
    generation = fields.integer(obj, "metadata", "generation")
    if observed >= generation:
        return None
    return Health(
        HealthStatus.PROGRESSING,
        f"Waiting for the controller to observe generation {generation} (status is for {observed})",
    )


def check(obj: Mapping[str, Any]) -> Health | None:
    conds = {c.type: c for c in fields.conditions(obj) if c.type in _KNOWN}
    if not conds:
        return None
    stale = _stale(obj)
    if stale is not None:
        return stale

    for ctype in _FAILED:
        cond = conds.get(ctype)
        if cond is not None and cond.is_true:
            return Health(HealthStatus.DEGRADED, cond.describe())
    succeeded = conds.get("Succeeded")
    if succeeded is not None and succeeded.is_false:
        return Health(HealthStatus.DEGRADED, succeeded.describe())
    for ctype in _WORKING:
        cond = conds.get(ctype)
        if cond is not None and cond.is_true:
            return Health(HealthStatus.PROGRESSING, cond.describe())

    ready = conds.get("Ready")
    if ready is not None:
        if ready.is_true:
            return Health(HealthStatus.HEALTHY, ready.describe())
        if ready.is_false and ready.reason and ready.reason not in _IN_PROGRESS_REASONS:
            return Health(HealthStatus.DEGRADED, ready.describe())
        return Health(HealthStatus.PROGRESSING, ready.describe())

    for ctype in ("Available", "Succeeded"):
        cond = conds.get(ctype)
        if cond is not None and cond.is_true:
            return Health(HealthStatus.HEALTHY, cond.describe())
    waiting = conds.get("Available") or conds.get("Succeeded")
    if waiting is not None:
        return Health(HealthStatus.PROGRESSING, waiting.describe())
    # Only Stalled/Failed/Reconciling/Issuing remain, none of them True: kstatus calls an object
    # whose controller is neither working on it nor stuck "Current".
    return Health(HealthStatus.HEALTHY, "")
