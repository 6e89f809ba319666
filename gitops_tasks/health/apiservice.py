"""Health of an APIService (apiregistration.k8s.io), the registration of an aggregated API.

Registered in `gitops_tasks.health`. As gitops-engine: Healthy when the Available condition is
True, otherwise Progressing with the aggregator's reason (the backing Service may still be
starting, and the aggregator keeps retrying).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import fields
from .status import Health, HealthStatus


def check(obj: Mapping[str, Any]) -> Health:
    available = fields.find(fields.conditions(obj), "Available")
    if available is None:
        return Health(HealthStatus.PROGRESSING, "Waiting to be processed")
    # gitops-engine's "reason: message", both parts always.
    message = f"{available.reason}: {available.message}"
    if available.is_true:
        return Health(HealthStatus.HEALTHY, message)
    return Health(HealthStatus.PROGRESSING, message)
