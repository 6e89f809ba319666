"""Health of a Job.

Registered in `gitops_tasks.health`. gitops-engine's rules, from the conditions the Job
controller sets: a Failed condition is Degraded, Complete is Healthy, Suspended (True) is
Suspended, and a Job without any of them is still running: Progressing. As in gitops-engine,
FailureTarget (written by newer controllers while a failed Job's pods terminate) decides
nothing; the Failed condition follows it within seconds.

One deliberate difference: gitops-engine counts a Suspended condition with status False (a Job
that was suspended and then resumed) as finished, so a resumed Job that is still running reads
Healthy there, and a sync wave would stop waiting for it. Here it stays Progressing until it
completes or fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import fields
from .status import Health, HealthStatus


def check(obj: Mapping[str, Any]) -> Health:
    conds = fields.conditions(obj)
    # gitops-engine reads Failed and Complete whatever their status; the controller only ever
    # writes them True.
    failed = fields.find(conds, "Failed")
    if failed is not None:
        return Health(HealthStatus.DEGRADED, failed.message or failed.reason)
    complete = fields.find(conds, "Complete")
    if complete is not None:
        return Health(HealthStatus.HEALTHY, complete.message)
    suspended = fields.find(conds, "Suspended")
    if suspended is not None and suspended.is_true:
        return Health(HealthStatus.SUSPENDED, suspended.message or "Job is suspended")
    active = fields.integer(obj, "status", "active")
    succeeded = fields.integer(obj, "status", "succeeded")
    failed_pods = fields.integer(obj, "status", "failed")
    return Health(
        HealthStatus.PROGRESSING,
        f"Job is running: {active} active, {succeeded} succeeded, {failed_pods} failed pods",
    )
