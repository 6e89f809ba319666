"""Health of a Pod.

Registered in `gitops_tasks.health`. gitops-engine's rules:

- A long-running pod (restartPolicy Always) with a container waiting for a reason that will not
  fix itself (prefix "Err", suffix "Error" or "BackOff": CrashLoopBackOff, ImagePullBackOff,
  ErrImagePull, CreateContainerConfigError, ...) is Degraded at once. Only the app containers
  are looked at, not the init containers: a pod stuck in Init:ErrImagePull stays Pending, and so
  Progressing. Pods that run to completion (OnFailure, Never) are usually sync hooks: marking
  them Degraded on an image pull back-off would fail the hook early and then let it run after
  the sync ended, so for them only the phase counts.
- Then the phase: Pending is Progressing, Succeeded Healthy, Failed Degraded (with the pod's
  message, else the first container that says why).
- Running: a pod meant to finish (OnFailure, Never) is Progressing until it has finished, unless
  it carries the `argocd.argoproj.io/ignore-restart-policy` annotation: then, like a pod with
  restartPolicy Always, it is Healthy once Ready, Degraded when not Ready after a container
  already died, Progressing otherwise. (The annotation changes only this Running rule; the
  waiting-container rule above stays for restartPolicy Always only, as in gitops-engine.)
- Phase Unknown (the node stopped reporting), or anything else: Unknown.

Where gitops-engine leaves the message empty (a Pending pod without a message, a Failed pod no
container explains, a crash-looping container without a waiting message) this check says what
it can from the pod's conditions and container statuses; the status is the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops_tasks.model import keys

from . import fields
from .status import Health, HealthStatus


def _stuck(reason: str) -> bool:
    """Whether a container waiting for `reason` is failing rather than starting up."""
    return reason.startswith("Err") or reason.endswith(("Error", "BackOff"))


def _waiting_failures(obj: Mapping[str, Any]) -> list[str]:
    messages = []
    for ctr in fields.objects(obj, "status", "containerStatuses"):
        reason = fields.string(ctr, "state", "waiting", "reason")
        if not _stuck(reason):
            continue
        message = fields.string(ctr, "state", "waiting", "message")
        name = fields.string(ctr, "name")
        messages.append(message or f'container "{name}": {reason}')
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


def _running(obj: Mapping[str, Any], message: str) -> Health:
    """A running pod judged by readiness (restartPolicy Always, or the annotation)."""
    ready = fields.find(fields.conditions(obj), "Ready")
    if ready is not None and ready.is_true:
        return Health(HealthStatus.HEALTHY, message)
    for ctr in fields.objects(obj, "status", "containerStatuses"):
        if fields.mapping(ctr, "lastState", "terminated"):
            name = fields.string(ctr, "name")
            restarts = fields.integer(ctr, "restartCount")
            return Health(
                HealthStatus.DEGRADED,
                message or f'container "{name}" is not ready and has restarted {restarts} times',
            )
    return Health(HealthStatus.PROGRESSING, message)


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
        annotations = fields.mapping(obj, "metadata", "annotations")
        if policy == "Always" or keys.ARGO_IGNORE_RESTART_POLICY in annotations:
            return _running(obj, message)
        # A pod meant to finish is not healthy until it has finished.
        return Health(HealthStatus.PROGRESSING, message)
    # Phase Unknown: the node stopped reporting; anything else is not a pod phase.
    return Health(HealthStatus.UNKNOWN, message or f"pod phase is {phase}")
