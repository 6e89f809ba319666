"""Health of a ReplicaSet (apps, and the retired extensions group).

Registered in `gitops_tasks.health`, as gitops-engine's check. Degraded when the controller
reports it cannot create pods (ReplicaFailure, e.g. a quota or admission webhook refusing them),
with the condition's message; otherwise Progressing until every desired replica is available.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import fields
from .status import Health, HealthStatus


def check(obj: Mapping[str, Any]) -> Health:
    if fields.integer(obj, "status", "observedGeneration") < fields.integer(
        obj, "metadata", "generation"
    ):
        return Health(
            HealthStatus.PROGRESSING,
            "Waiting for rollout to finish: observed replica set generation less than desired "
            "generation",
        )
    failure = fields.find(fields.conditions(obj), "ReplicaFailure")
    if failure is not None and failure.is_true:
        return Health(HealthStatus.DEGRADED, failure.message)
    desired = fields.integer(obj, "spec", "replicas", default=1)
    available = fields.integer(obj, "status", "availableReplicas")
    if available < desired:
        return Health(
            HealthStatus.PROGRESSING,
            f"Waiting for rollout to finish: {available} out of {desired} new replicas are "
            "available...",
        )
    return Health(HealthStatus.HEALTHY)
