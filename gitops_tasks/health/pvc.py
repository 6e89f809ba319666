"""Health of a PersistentVolumeClaim.

Registered in `gitops_tasks.health`. The claim's phase: Bound is Healthy, Pending Progressing
(waiting for a provisioner, or for a first consumer with WaitForFirstConsumer binding), Lost
Degraded (its volume is gone and the data with it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import fields
from .status import Health, HealthStatus


def check(obj: Mapping[str, Any]) -> Health:
    # The API server sets Pending on create; an absent phase has not been looked at yet.
    phase = fields.string(obj, "status", "phase", default="Pending")
    if phase == "Bound":
        return Health(HealthStatus.HEALTHY)
    if phase == "Pending":
        return Health(HealthStatus.PROGRESSING, "Waiting for the claim to be bound")
    if phase == "Lost":
        volume = fields.string(obj, "spec", "volumeName")
        return Health(HealthStatus.DEGRADED, f'Bound volume "{volume}" is lost')
    return Health(HealthStatus.UNKNOWN, f"claim phase is {phase}")
