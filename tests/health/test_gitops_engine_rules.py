"""The built-in rules where gitops-engine's algorithm decides something the fixtures alone would
not pin down: the order HPA conditions are read in, what the Pod annotation changes and what it
does not, the Workflow phases, the StatefulSet branches and the Job conditions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gitops_tasks.health import Health, HealthStatus, resource_health

H = HealthStatus


def _cond(ctype: str, status: str, reason: str, message: str = "") -> dict[str, str]:
    return {"type": ctype, "status": status, "reason": reason, "message": message or reason}


def _hpa(*conds: dict[str, str], version: str = "autoscaling/v2") -> dict[str, Any]:
    if version == "autoscaling/v1":
        return {"apiVersion": version, "kind": "HorizontalPodAutoscaler",
                "metadata": {"annotations": {
                    "autoscaling.alpha.kubernetes.io/conditions": json.dumps(list(conds))}}}
    return {"apiVersion": version, "kind": "HorizontalPodAutoscaler",
            "status": {"conditions": list(conds)}}


@pytest.mark.parametrize("version", ["autoscaling/v1", "autoscaling/v2", "autoscaling/v2beta2"])
@pytest.mark.parametrize(
    ("conds", "expected"),
    [
        # The first deciding condition wins, in the order the controller wrote them.
        ([_cond("AbleToScale", "True", "SucceededGetScale", "got scale"),
          _cond("ScalingActive", "False", "FailedGetResourceMetric", "no metrics")],
         Health(H.HEALTHY, "got scale")),
        ([_cond("ScalingActive", "False", "FailedGetResourceMetric", "no metrics"),
          _cond("AbleToScale", "True", "SucceededGetScale", "got scale")],
         Health(H.DEGRADED, "no metrics")),
        # A known failure is Degraded whatever its status.
        ([_cond("AbleToScale", "True", "FailedUpdateScale", "update refused")],
         Health(H.DEGRADED, "update refused")),
        ([_cond("ScalingActive", "False", "InvalidSelector", "bad selector")],
         Health(H.DEGRADED, "bad selector")),
        # AbleToScale False for another reason decides nothing.
        ([_cond("AbleToScale", "False", "SucceededGetScale", "backing off")],
         Health(H.PROGRESSING, "Waiting to Autoscale")),
        # ScalingActive True alone is not one of the healthy types.
        ([_cond("ScalingActive", "True", "ValidMetricFound")],
         Health(H.PROGRESSING, "Waiting to Autoscale")),
        ([_cond("ScalingActive", "False", "ScalingDisabled", "target at zero"),
          _cond("ScalingLimited", "True", "TooFewReplicas", "at min")],
         Health(H.HEALTHY, "at min")),
        ([_cond("ScalingLimited", "False", "DesiredWithinRange")],
         Health(H.PROGRESSING, "Waiting to Autoscale")),
        ([], Health(H.PROGRESSING, "Waiting to Autoscale")),
    ],
)
def test_hpa_reads_conditions_in_order(version: str, conds: list[dict[str, str]],
                                       expected: Health) -> None:
    assert resource_health(_hpa(*conds, version=version)) == expected


def test_hpa_v1_reads_only_the_annotation() -> None:
    # autoscaling/v1 has no conditions field; anything there is not the controller's.
    obj = _hpa(_cond("AbleToScale", "True", "ok"))
    obj["apiVersion"] = "autoscaling/v1"
    assert resource_health(obj) == Health(H.PROGRESSING, "Waiting to Autoscale")


def _pod(policy: str, phase: str, *, annotated: bool = False, ready: bool = False,
         waiting: str = "", restarted: bool = False) -> dict[str, Any]:
    ctr: dict[str, Any] = {"name": "main", "ready": ready, "restartCount": int(restarted)}
    if waiting:
        ctr["state"] = {"waiting": {"reason": waiting, "message": f"{waiting} for main"}}
    if restarted:
        ctr["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error"}}
    meta: dict[str, Any] = {"name": "p"}
    if annotated:
        meta["annotations"] = {"argocd.argoproj.io/ignore-restart-policy": "true"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"restartPolicy": policy},
            "status": {"phase": phase, "containerStatuses": [ctr],
                       "conditions": [{"type": "Ready", "status": str(ready)}]}}


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        (_pod("Never", "Running", ready=True), H.PROGRESSING),
        (_pod("Never", "Running", ready=True, annotated=True), H.HEALTHY),
        (_pod("OnFailure", "Running", restarted=True), H.PROGRESSING),
        (_pod("OnFailure", "Running", restarted=True, annotated=True), H.DEGRADED),
        (_pod("OnFailure", "Running", annotated=True), H.PROGRESSING),
        # The annotation does not bring the waiting-container rule to hook pods.
        (_pod("Never", "Pending", waiting="ImagePullBackOff", annotated=True), H.PROGRESSING),
        (_pod("Always", "Pending", waiting="ImagePullBackOff"), H.DEGRADED),
        (_pod("Always", "Running", ready=True, annotated=True), H.HEALTHY),
        # Not one of gitops-engine's patterns (prefix Err, suffix Error/BackOff).
        (_pod("Always", "Pending", waiting="InvalidImageName"), H.PROGRESSING),
        (_pod("Always", "Pending", waiting="CreateContainerConfigError"), H.DEGRADED),
    ],
)
def test_pod_restart_policy_and_annotation(pod: dict[str, Any], expected: HealthStatus) -> None:
    health = resource_health(pod)
    assert health is not None and health.status is expected, health


def test_pod_waiting_message_is_the_containers() -> None:
    health = resource_health(_pod("Always", "Running", waiting="CrashLoopBackOff"))
    assert health == Health(H.DEGRADED, "CrashLoopBackOff for main")


@pytest.mark.parametrize(
    ("phase", "expected"),
    [(None, H.PROGRESSING), ("Pending", H.PROGRESSING), ("Running", H.PROGRESSING),
     ("Succeeded", H.HEALTHY), ("Failed", H.DEGRADED), ("Error", H.DEGRADED),
     ("Omitted", H.UNKNOWN)],
)
def test_workflow_phase(phase: str | None, expected: HealthStatus) -> None:
    status = {"phase": phase, "message": "the message"} if phase else {}
    obj = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "status": status}
    assert resource_health(obj) == Health(expected, "the message" if phase else "")


def _sts(strategy: dict[str, Any], **status: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"generation": 2},
            "spec": {"replicas": 3, "updateStrategy": strategy},
            "status": {"observedGeneration": 2, "readyReplicas": 3, **status}}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (_sts({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}, updatedReplicas=2,
              currentRevision="a", updateRevision="b"),
         Health(H.PROGRESSING, "Waiting for partitioned roll out to finish: 2 out of 3 new "
                               "pods have been updated...")),
        # With the block but no partition, gitops-engine does not count pods at all.
        (_sts({"type": "RollingUpdate", "rollingUpdate": {}}, updatedReplicas=1,
              currentRevision="a", updateRevision="b"),
         Health(H.HEALTHY, "partitioned roll out complete: 1 new pods have been updated...")),
        (_sts({"type": "RollingUpdate"}, updatedReplicas=1, currentRevision="a",
              updateRevision="b"),
         Health(H.PROGRESSING, "waiting for statefulset rolling update to complete 1 pods at "
                               "revision b...")),
        (_sts({"type": "RollingUpdate"}, updatedReplicas=3, currentReplicas=3,
              currentRevision="b", updateRevision="b"),
         Health(H.HEALTHY, "statefulset rolling update complete 3 pods at revision b...")),
        (_sts({"type": "OnDelete"}, currentRevision="a", updateRevision="b"),
         Health(H.HEALTHY, "statefulset has 3 ready pods")),
    ],
)
def test_statefulset_branches(obj: dict[str, Any], expected: Health) -> None:
    assert resource_health(obj) == expected


def _job(*conds: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "status": {"conditions": list(conds)}}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (_job(_cond("FailureTarget", "True", "DeadlineExceeded")), H.PROGRESSING),
        (_job(_cond("FailureTarget", "True", "DeadlineExceeded"),
              _cond("Failed", "True", "DeadlineExceeded")), H.DEGRADED),
        (_job(_cond("Complete", "True", "")), H.HEALTHY),
        (_job(_cond("Suspended", "True", "JobSuspended")), H.SUSPENDED),
        # Resumed: gitops-engine says Healthy here, see health/job.py for why we do not.
        (_job(_cond("Suspended", "False", "JobResumed")), H.PROGRESSING),
        ({"apiVersion": "batch/v1", "kind": "Job", "spec": {"suspend": True}}, H.PROGRESSING),
    ],
)
def test_job_conditions(obj: dict[str, Any], expected: HealthStatus) -> None:
    health = resource_health(obj)
    assert health is not None and health.status is expected, health


def test_apiservice_message_is_reason_colon_message() -> None:
    obj = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
           "status": {"conditions": [{"type": "Available", "status": "False",
                                      "reason": "MissingEndpoints", "message": ""}]}}
    assert resource_health(obj) == Health(H.PROGRESSING, "MissingEndpoints: ")
