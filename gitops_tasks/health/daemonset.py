"""Health of a DaemonSet (apps, and the retired extensions group).

Registered in `gitops_tasks.health`. kubectl's `rollout status` logic, as in gitops-engine: the
spec must be observed, then every node that should run the daemon must run the new template and
have it available. With the OnDelete strategy old pods are expected, so it is Healthy as soon as
the spec is observed. Like a StatefulSet it has no failure signal and is never Degraded.
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
            "Waiting for rollout to finish: observed daemon set generation less than desired "
            "generation",
        )

    name = fields.string(obj, "metadata", "name")
    desired = fields.integer(obj, "status", "desiredNumberScheduled")
    updated = fields.integer(obj, "status", "updatedNumberScheduled")
    available = fields.integer(obj, "status", "numberAvailable")
    if fields.string(obj, "spec", "updateStrategy", "type") == "OnDelete":
        return Health(
            HealthStatus.HEALTHY,
            f"daemon set {updated} out of {desired} new pods have been updated",
        )
    if updated < desired:
        return Health(
            HealthStatus.PROGRESSING,
            f'Waiting for daemon set "{name}" rollout to finish: {updated} out of {desired} new '
            "pods have been updated...",
        )
    if available < desired:
        return Health(
            HealthStatus.PROGRESSING,
            f'Waiting for daemon set "{name}" rollout to finish: {available} of {desired} updated '
            "pods are available...",
        )
    return Health(HealthStatus.HEALTHY)
