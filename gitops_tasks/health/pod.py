"""Health of a Pod.

Registered in `gitops_tasks.health`. Mostly the pod phase, as in gitops-engine, with two
refinements for long-running pods (restartPolicy Always): a container stuck waiting for a reason
that will not fix itself (CrashLoopBackOff, ImagePullBackOff, ErrImagePull,
CreateContainerConfigError, ...) is Degraded at once, and so is a running pod that is not ready
after a container already died. Pods that run to completion (OnFailure, Never) are usually sync
hooks: marking them Degraded on an image pull back-off would fail the hook early and then let it
run after the sync ended, so for them only the final phase counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import fields
from .status import Health, HealthStatus


def _stuck(reason: str) -> bool:
    """Whether a container waiting for `reason` is failing rather than starting up."""
    return (
        reason.startswith("Err")
        or reason.endswith(("Error", "BackOff"))
        or reason == "InvalidImageName"
    )


def _waiting_failures(obj: Mapping[str, Any]) -> list[str]:
    messages = []
    # Init containers count too: one in CrashLoopBackOff leaves the pod Pending for good.
    for key in ("initContainerStatuses", "containerStatuses"):
        for ctr in fields.objects(obj, "status", key):
            reason = fields.string(ctr, "state", "waiting", "reason")
            if not _stuck(reason):
                continue
            message = fields.string(ctr, "state", "waiting", "message")
            name = fields.string(ctr, "name")
            messages.append(f"{reason}: {message}" if message else f'container "{name}": {reason}')
    return messages


def _fail_message(obj: Mapping[str, Any]) -> str:
    """Why a Failed pod failed: the pod's own message, else the first container that says."""
    message = fields.string(obj, "status", "message")
    if message:
        return message
    for key in ("initContainerStatuses", "containerStatuses"):
        for ctr in fields.objects(obj, "status", key):
            terminated = fields.mapping(ctr, "state", "terminated")
            if not terminated:
                continue
            if fields.string(terminated, "message"):
                return fields.string(terminated, "message")
            if fields.string(terminated, "reason") == "OOMKilled":
                return "OOMKilled"
            code = fields.integer(terminated, "exitCode")
            if code != 0:
                return f'container "{fields.string(ctr, "name")}" failed with exit code {code}'
    return fields.string(obj, "status", "reason")


def check(obj: Mapping[str, Any]) -> Health:
    # The API server defaults restartPolicy to Always.
    policy = fields.string(obj, "spec", "restartPolicy", default="Always")
    message = fields.string(obj, "status", "message")
    if policy == "Always":
        failures = _waiting_failures(obj)
        if failures:
            return Health(HealthStatus.DEGRADED, ", ".join(failures))

    # The API server sets Pending on create, so a missing phase is a pod nobody has looked at.
    phase = fields.string(obj, "status", "phase", default="Pending")
    if phase == "Pending":
        if not message:
            scheduled = fields.find(fields.conditions(obj), "PodScheduled")
            if scheduled is not None and scheduled.is_false:
                message = scheduled.describe()
        return Health(HealthStatus.PROGRESSING, message)
    if phase == "Succeeded":
        return Health(HealthStatus.HEALTHY, message)
    if phase == "Failed":
        return Health(HealthStatus.DEGRADED, _fail_message(obj))
    if phase == "Running":
        if policy != "Always":
            # A pod meant to finish is not healthy until it has finished.
            return Health(HealthStatus.PROGRESSING, message)
        ready = fields.find(fields.conditions(obj), "Ready")
        if ready is not None and ready.is_true:
            return Health(HealthStatus.HEALTHY, message)
        for ctr in fields.objects(obj, "status", "containerStatuses"):
            if fields.mapping(ctr, "lastState", "terminated"):
                name = fields.string(ctr, "name")
                restarts = fields.integer(ctr, "restartCount")
                return Health(
                    HealthStatus.DEGRADED,
                    message
                    or f'container "{name}" is not ready and has restarted {restarts} times',
                )
        return Health(HealthStatus.PROGRESSING, message)
    # Phase Unknown: the node stopped reporting; anything else is not a pod phase.
    return Health(HealthStatus.UNKNOWN, message or f"pod phase is {phase}")
