"""Health of a CustomResourceDefinition.

Registered in `gitops_tasks.health`. A CRD is usable once the API server has accepted its names
and established it (its resources are served). The sync layer waits on this before applying
custom resources, so a CRD that is merely not established yet is Progressing (gitops-engine says
Degraded); it is Degraded only when its names conflict with another CRD or its schema is not
structural, neither of which fixes itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import fields
from .status import Health, HealthStatus


def check(obj: Mapping[str, Any]) -> Health:
    conds = fields.conditions(obj)
    if not conds:
        return Health(HealthStatus.PROGRESSING, "Status conditions not found")
    terminating = fields.find(conds, "Terminating")
    if terminating is not None and terminating.is_true:
        return Health(HealthStatus.PROGRESSING, f"CRD is being terminated: {terminating.message}")
    names = fields.find(conds, "NamesAccepted")
    if names is not None and names.is_false:
        return Health(HealthStatus.DEGRADED, f"CRD names have not been accepted: {names.message}")
    schema = fields.find(conds, "NonStructuralSchema")
    if schema is not None and schema.is_true:
        return Health(HealthStatus.DEGRADED, f"Schema violations found: {schema.message}")
    established = fields.find(conds, "Established")
    if established is None or not established.is_true:
        detail = established.describe() if established else "no Established condition"
        return Health(HealthStatus.PROGRESSING, f"CRD is not established yet: {detail}")
    return Health(HealthStatus.HEALTHY, "CRD is healthy")
