"""Health of a nested Application (app of apps), gitops-tasks' own or Argo CD's.

Registered in `gitops_tasks.health` for `gitops-tasks.io` (see `gitops_tasks.model.keys`) and
`argoproj.io`. The child app's controller has already aggregated its resources, so the parent
takes the health the child reports in status.health. A child whose status has no health yet has
not been reconciled once: Progressing, so a parent waiting on it keeps waiting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import fields
from .status import Health, HealthStatus


def check(obj: Mapping[str, Any]) -> Health:
    reported = fields.string(obj, "status", "health", "status")
    if not reported:
        return Health(HealthStatus.PROGRESSING, "Waiting for the application to report health")
    try:
        status = HealthStatus(reported)
    except ValueError:
        raise ValueError(f"status.health.status: {reported!r} is not a health status") from None
    return Health(status, fields.string(obj, "status", "health", "message"))
