"""Health of a HorizontalPodAutoscaler (autoscaling v1, v2, v2beta*).

Registered in `gitops_tasks.health`. gitops-engine's algorithm, condition by condition in the
order the controller wrote them, and the first one that decides wins:

- Degraded when the condition is one of the known failures, whatever its status: AbleToScale
  FailedGetScale or FailedUpdateScale, ScalingActive FailedGetResourceMetric or InvalidSelector;
- Healthy when it is AbleToScale or ScalingLimited with status True;
- any other condition decides nothing. When none decides: Progressing, "Waiting to Autoscale".

So the usual healthy autoscaler (AbleToScale True first) is Healthy with AbleToScale's message,
one whose target was scaled to zero (ScalingActive False, ScalingDisabled) is Healthy too, and
AbleToScale False for a reason not in the list (SucceededGetScale while backing off) is only
Progressing. Because the first deciding condition wins, a metrics failure written after an
AbleToScale True condition does not make it Degraded: that is Argo CD's behaviour, kept so that
apps report the same health under both.

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
_WAITING = Health(HealthStatus.PROGRESSING, "Waiting to Autoscale")

_DEGRADED = frozenset(
    {
        ("AbleToScale", "FailedGetScale"),
        ("AbleToScale", "FailedUpdateScale"),
        ("ScalingActive", "FailedGetResourceMetric"),
        ("ScalingActive", "InvalidSelector"),
    }
)
_HEALTHY_TYPES = frozenset({"AbleToScale", "ScalingLimited"})


def _conditions(obj: Mapping[str, Any]) -> list[fields.Condition]:
    if fields.string(obj, "apiVersion") != "autoscaling/v1":
        return fields.conditions(obj)
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
    for cond in _conditions(obj):
        if (cond.type, cond.reason) in _DEGRADED:
            return Health(HealthStatus.DEGRADED, cond.message)
        if cond.type in _HEALTHY_TYPES and cond.is_true:
            return Health(HealthStatus.HEALTHY, cond.message)
    return _WAITING
