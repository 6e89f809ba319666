"""Health of a Job.

Registered in `gitops_tasks.health`. Read from the conditions the Job controller sets: Failed
(or FailureTarget, which newer controllers set first, while the failed Job's pods are still
terminating: the outcome is already decided) is Degraded, Complete is Healthy, a suspended Job is
Suspended, and anything else is still running.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import fields
from .status import Health, HealthStatus


def check(obj: Mapping[str, Any]) -> Health:
    conds = [c for c in fields.conditions(obj) if c.is_true]
    for ctype in ("Failed", "FailureTarget"):
        failed = fields.find(conds, ctype)
        if failed is not None:
            return Health(HealthStatus.DEGRADED, failed.message or failed.reason)
    complete = fields.find(conds, "Complete")
    if complete is not None:
        return Health(HealthStatus.HEALTHY, complete.message)
    # A resumed Job keeps its Suspended condition with status False, hence "true ones only".
    suspended = fields.find(conds, "Suspended")
    if suspended is not None or fields.boolean(obj, "spec", "suspend"):
        return Health(
            HealthStatus.SUSPENDED, suspended.message if suspended else "Job is suspended"
        )
    active = fields.integer(obj, "status", "active")
    succeeded = fields.integer(obj, "status", "succeeded")
    failed_pods = fields.integer(obj, "status", "failed")
    return Health(
        HealthStatus.PROGRESSING,
        f"Job is running: {active} active, {succeeded} succeeded, {failed_pods} failed pods",
    )
