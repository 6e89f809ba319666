"""Health of a CronJob.

Registered in `gitops_tasks.health`. As Argo CD's built-in CronJob check (its
resource_customizations/batch/CronJob/health.lua; gitops-engine has none): a suspended CronJob is
Suspended; one without any status yet (a manifest, not a live object: the API server always
writes `status: {}`) is Progressing; one whose last scheduled run has finished without succeeding
(no active Job and lastSuccessfulTime older than lastScheduleTime) is Degraded. Everything else
is Healthy, because the status cannot tell "never ran yet" or "still running" apart from
"running late", and a CronJob that flips to Progressing on every run would make its app flap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import fields
from .status import Health, HealthStatus


def check(obj: Mapping[str, Any]) -> Health:
    if fields.boolean(obj, "spec", "suspend"):
        return Health(HealthStatus.SUSPENDED, "CronJob is Suspended")
    if fields.mapping(obj).get("status") is None:
        return Health(HealthStatus.PROGRESSING, "Waiting for CronJob")
    scheduled = fields.timestamp(obj, "status", "lastScheduleTime")
    if scheduled is None:
        return Health(HealthStatus.HEALTHY, "CronJob has not been scheduled yet")
    succeeded = fields.timestamp(obj, "status", "lastSuccessfulTime")
    if succeeded is None:
        # The first run may still be going, or may have failed: there is no way to tell.
        return Health(HealthStatus.HEALTHY, "CronJob has never completed successfully yet")
    if fields.objects(obj, "status", "active"):
        return Health(HealthStatus.HEALTHY, "CronJob is running a Job")
    if succeeded < scheduled:
        return Health(
            HealthStatus.DEGRADED, "CronJob has not completed its last execution successfully"
        )
    return Health(HealthStatus.HEALTHY, "CronJob has completed its last execution successfully")
