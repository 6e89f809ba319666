"""Resource and app health: pure functions over live objects, no I/O.

Called by the reconcile engine after each refresh and sync (resource inventory health, app
health, dependsOn and sync-wave waits). `resource_health` dispatches on (API group, kind) to one
check per kind, each in its own module, as gitops-engine's pkg/health does; kinds without a
check fall back to reading standard status conditions (`conditions.py`). Users' Lua scripts in
Argo CD's format (`customizations.py`, run by `lua.py`) take the place of the built-in check for
the kinds they name; the caller passes them in, nothing here reads them. A check never raises
out of here: a failure becomes Unknown with the reason in the message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from gitops_tasks.log import get_logger
from gitops_tasks.model import keys

from . import (
    apiservice,
    application,
    conditions,
    crd,
    cronjob,
    daemonset,
    deployment,
    fields,
    hpa,
    ingress,
    job,
    pod,
    pvc,
    replicaset,
    service,
    statefulset,
    workflow,
)
from .customizations import NONE, Customizations, HealthScript
from .lua import ScriptError, run_health_script
from .status import Health, HealthStatus

__all__ = [
    "CHECKS",
    "NONE",
    "Check",
    "Customizations",
    "Health",
    "HealthStatus",
    "app_health",
    "check_for",
    "resource_health",
]

_log = get_logger(component="health")

Check = Callable[[Mapping[str, Any]], Health | None]

# (API group, kind) -> check. The version is deliberately not part of the key: every served
# version of a kind carries the same status fields the checks read.
CHECKS: Mapping[tuple[str, str], Check] = MappingProxyType(
    {
        ("apps", "Deployment"): deployment.check,
        ("extensions", "Deployment"): deployment.check,
        ("apps", "StatefulSet"): statefulset.check,
        ("apps", "DaemonSet"): daemonset.check,
        ("extensions", "DaemonSet"): daemonset.check,
        ("apps", "ReplicaSet"): replicaset.check,
        ("extensions", "ReplicaSet"): replicaset.check,
        ("", "Pod"): pod.check,
        ("", "Service"): service.check,
        ("", "PersistentVolumeClaim"): pvc.check,
        ("networking.k8s.io", "Ingress"): ingress.check,
        ("extensions", "Ingress"): ingress.check,
        ("batch", "Job"): job.check,
        ("batch", "CronJob"): cronjob.check,
        ("autoscaling", "HorizontalPodAutoscaler"): hpa.check,
        ("apiextensions.k8s.io", "CustomResourceDefinition"): crd.check,
        ("apiregistration.k8s.io", "APIService"): apiservice.check,
        (keys.GROUP, keys.KIND): application.check,
        ("argoproj.io", "Application"): application.check,
        ("argoproj.io", "Workflow"): workflow.check,
    }
)


def check_for(group: str, kind: str) -> Check:
    """The check for a (group, kind): its own, or the conditions fallback."""
    return CHECKS.get((group, kind), conditions.check)


def resource_health(
    obj: Mapping[str, Any] | None, customizations: Customizations | None = None
) -> Health | None:
    """The health of one live object.

    None (the object does not exist) is Missing. Returns None when the kind has no health notion
    (ConfigMap, Secret, RBAC, ServiceAccount, ...): such objects do not affect app health. A check
    that raises, typically on a malformed object, yields Unknown with the error as the message.
    A script in `customizations` for the object's kind replaces the built-in check; a script
    that fails yields Unknown with its error.
    """
    if obj is None:
        return Health(HealthStatus.MISSING, "Resource does not exist")
    try:
        # As in gitops-engine, for every kind: a finalizer holding the object means it is going
        # away, whatever its status says.
        if fields.string(obj, "metadata", "deletionTimestamp"):
            return Health(HealthStatus.PROGRESSING, "Pending deletion")
        api_version = fields.string(obj, "apiVersion")
        kind = fields.string(obj, "kind")
        group = api_version.rpartition("/")[0]
        script = customizations.script_for(group, kind) if customizations else None
        if script is not None:
            return _scripted(script, obj)
        return check_for(group, kind)(obj)
    except Exception as exc:
        # Broad on purpose: one malformed object, or a bug in one check, must never fail a whole
        # reconcile; Unknown is the worst state, so nothing is hidden either.
        detail = str(exc) or type(exc).__name__
        return Health(HealthStatus.UNKNOWN, f"health check failed: {detail}")


_reported: set[tuple[str, str]] = set()


def _scripted(script: HealthScript, obj: Mapping[str, Any]) -> Health | None:
    try:
        return run_health_script(script.script, obj)
    except ScriptError as exc:
        message = f"health script {script.source} failed: {exc}"
        # Once per script and error, not once per object and refresh: the health message on
        # every affected resource already says it.
        if (script.source, str(exc)) not in _reported and len(_reported) < 1000:
            _reported.add((script.source, str(exc)))
            meta = fields.mapping(obj, "metadata")
            _log.warning("health script failed", source=script.source, error=str(exc),
                         kind=fields.string(obj, "kind"),
                         namespace=fields.string(meta, "namespace"),
                         name=fields.string(meta, "name"))
        return Health(HealthStatus.UNKNOWN, message)


def app_health(healths: Iterable[Health | None]) -> Health:
    """An app's health: the worst of its resources' (None ignored), Healthy when there are none.

    The message is the worst resource's; among equally bad ones, the first.
    """
    worst = Health(HealthStatus.HEALTHY)
    for health in healths:
        if health is not None and health.status.is_worse_than(worst.status):
            worst = health
    return worst
