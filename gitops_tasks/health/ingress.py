"""Health of an Ingress (networking.k8s.io, and the retired extensions group).

Registered in `gitops_tasks.health`. Healthy once an ingress controller has published an address
in status.loadBalancer.ingress; until then Progressing (no controller claims it, or it is still
provisioning a load balancer).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import fields
from .status import Health, HealthStatus


def check(obj: Mapping[str, Any]) -> Health:
    if fields.objects(obj, "status", "loadBalancer", "ingress"):
        return Health(HealthStatus.HEALTHY)
    return Health(
        HealthStatus.PROGRESSING, "Waiting for the ingress controller to publish an address"
    )
