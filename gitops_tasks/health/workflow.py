"""Health of an Argo Workflow (`argoproj.io/Workflow`, any version).

Registered in `gitops_tasks.health`, as gitops-engine's built-in: only `status.phase` and
`status.message` are read. No phase yet, Pending or Running: Progressing; Succeeded: Healthy;
Failed or Error: Degraded; any other phase is one this check does not know: Unknown. The
message is the workflow's own in every case.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import fields
from .status import Health, HealthStatus

_BY_PHASE = {
    "": HealthStatus.PROGRESSING,
    "Pending": HealthStatus.PROGRESSING,
    "Running": HealthStatus.PROGRESSING,
    "Succeeded": HealthStatus.HEALTHY,
    "Failed": HealthStatus.DEGRADED,
    "Error": HealthStatus.DEGRADED,
}


def check(obj: Mapping[str, Any]) -> Health:
    phase = fields.string(obj, "status", "phase")
    message = fields.string(obj, "status", "message")
    return Health(_BY_PHASE.get(phase, HealthStatus.UNKNOWN), message)
