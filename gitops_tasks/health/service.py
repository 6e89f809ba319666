"""Health of a Service.

Registered in `gitops_tasks.health`. Only a LoadBalancer Service has something to wait for: the
cloud controller assigning it an address. Every other type is Healthy once it exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import fields
from .status import Health, HealthStatus


def check(obj: Mapping[str, Any]) -> Health:
    if fields.string(obj, "spec", "type") != "LoadBalancer":
        return Health(HealthStatus.HEALTHY)
    if fields.objects(obj, "status", "loadBalancer", "ingress"):
        return Health(HealthStatus.HEALTHY)
    return Health(
        HealthStatus.PROGRESSING, "Waiting for the load balancer to be assigned an address"
    )
