"""Health of a HorizontalPodAutoscaler (autoscaling v1, v2, v2beta*).

Registered in `gitops_tasks.health`. Read from the autoscaler's conditions, as gitops-engine
does: it is Degraded when it cannot read or update its target's scale (AbleToScale False) or
cannot compute a recommendation (ScalingActive False: missing metrics, a bad selector, ...);
Suspended when its target is scaled to zero, which switches autoscaling off; Healthy otherwise,
including when it is pinned at minReplicas or maxReplicas (ScalingLimited). Before the controller
has written any condition it is Progressing.

autoscaling/v1 has no conditions field: the API server serves them in the
`autoscaling.alpha.kubernetes.io/conditions` annotation as a JSON list instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from . import fields
from .status import Health, HealthStatus

_V1_CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"


def _conditions(obj: Mapping[str, Any]) -> list[fields.Condition]:
    conds = fields.conditions(obj)
    if conds:
        return conds
    annotation = fields.string(obj, "metadata", "annotations", _V1_CONDITIONS)
    if not annotation:
        return []
    try:
        items = json.loads(annotation)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{_V1_CONDITIONS} annotation is not JSON: {exc}") from None
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise ValueError(f"{_V1_CONDITIONS} annotation is not a list of conditions")
    return fields.parse_conditions(items, _V1_CONDITIONS)


def check(obj: Mapping[str, Any]) -> Health:
    conds = _conditions(obj)
    if not conds:
        return Health(HealthStatus.PROGRESSING, "Waiting to Autoscale")
    able = fields.find(conds, "AbleToScale")
    if able is not None and able.is_false:
        return Health(HealthStatus.DEGRADED, able.message or able.reason)
    active = fields.find(conds, "ScalingActive")
    if active is not None and active.is_false:
        if active.reason == "ScalingDisabled":
            return Health(HealthStatus.SUSPENDED, active.message or active.reason)
        return Health(HealthStatus.DEGRADED, active.message or active.reason)
    # ScalingLimited says where the recommendation sits (within range, or capped); its message
    # is the most useful summary of a working autoscaler.
    summary = fields.find(conds, "ScalingLimited") or active or able or conds[0]
    return Health(HealthStatus.HEALTHY, summary.message)
