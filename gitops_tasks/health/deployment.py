"""Health of a Deployment (apps, and the retired extensions group).

Registered in `gitops_tasks.health`. The logic is kubectl's `rollout status`, as gitops-engine
uses it: a Deployment is Healthy once its latest spec is observed and every desired replica runs
the new template and is available. It is Degraded only when the controller itself gives up
(ProgressDeadlineExceeded); crash-looping pods alone keep it Progressing until that deadline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import fields
from .status import Health, HealthStatus

_WAITING = "Waiting for rollout to finish"


def check(obj: Mapping[str, Any]) -> Health:
    if fields.boolean(obj, "spec", "paused"):
        return Health(HealthStatus.SUSPENDED, "Deployment is paused")

    # Until the controller has seen the latest spec, every other status field describes an
    # older generation and cannot be trusted.
    generation = fields.integer(obj, "metadata", "generation")
    if fields.integer(obj, "status", "observedGeneration") < generation:
        return Health(
            HealthStatus.PROGRESSING,
            f"{_WAITING}: observed deployment generation less than desired generation",
        )

    progressing = fields.find(fields.conditions(obj), "Progressing")
    if progressing is not None and progressing.reason == "ProgressDeadlineExceeded":
        name = fields.string(obj, "metadata", "name")
        return Health(HealthStatus.DEGRADED, f'Deployment "{name}" exceeded its progress deadline')

    # spec.replicas defaults to 1 on the server; a live object always carries it.
    desired = fields.integer(obj, "spec", "replicas", default=1)
    replicas = fields.integer(obj, "status", "replicas")
    updated = fields.integer(obj, "status", "updatedReplicas")
    available = fields.integer(obj, "status", "availableReplicas")
    if updated < desired:
        return Health(
            HealthStatus.PROGRESSING,
            f"{_WAITING}: {updated} out of {desired} new replicas have been updated...",
        )
    if replicas > updated:
        return Health(
            HealthStatus.PROGRESSING,
            f"{_WAITING}: {replicas - updated} old replicas are pending termination...",
        )
    if available < updated:
        return Health(
            HealthStatus.PROGRESSING,
            f"{_WAITING}: {available} of {updated} updated replicas are available...",
        )
    return Health(HealthStatus.HEALTHY)
