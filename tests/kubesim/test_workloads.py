"""Tests for kubesim.workloads: simulated controller status for workload kinds."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from gitops_tasks.health import HealthStatus, resource_health
from kubesim.workloads import (
    SIMULATED_KINDS,
    SimSettings,
    group_kind,
    has_fail_marker,
    simulate,
    template_hash,
)

S = SimSettings()  # ready_delay 0.5
FAIL = "registry.example/app:kubesim-fail"
T0, T1, T2, T3 = (f"2024-05-01T10:00:0{i}Z" for i in range(4))

Obj = dict[str, Any]


# --------------------------------------------------------------------------- helpers


def step(obj: Obj, since: float, now: str, settings: SimSettings = S) -> float | None:
    """Simulate like the server does: store the new status (if any) and return next_check_in."""
    status, next_in = simulate(obj, since_change=since, settings=settings, now=now)
    if status is not None:
        obj["status"] = status
    return next_in


def settled(obj: Obj, since: float = 1.0, now: str = T1) -> Obj:
    """Run the object through its in-progress and settled states; returns its status."""
    step(obj, 0.0, T0)
    step(obj, since, now)
    status: Obj = obj["status"]
    return status


def pod_template(*images: str, **spec: Any) -> Obj:
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    return {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers, **spec}}


def deployment(image: str = "nginx:1.27", generation: int = 1, **spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "generation": generation},
        "spec": {"replicas": 3, "template": pod_template(image), **spec},
    }


def workload(kind: str, image: str = "nginx:1.27", **spec: Any) -> Obj:
    group = "batch" if kind == "Job" else "apps"
    return {
        "apiVersion": f"{group}/v1",
        "kind": kind,
        "metadata": {"name": "w", "namespace": "default", "generation": 1},
        "spec": {"template": pod_template(image), **spec},
    }


def job(image: str = "busybox", **spec: Any) -> Obj:
    obj = workload("Job", image, **spec)
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    return obj


def pod(*images: str, owner: str | None = None, **spec: Any) -> Obj:
    meta: Obj = {"name": "p", "namespace": "default", "uid": "1234"}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": owner, "name": "j"}]
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": containers, **spec},
    }


def cond(status: Obj, ctype: str) -> Obj:
    found = [c for c in status.get("conditions", []) if c["type"] == ctype]
    assert len(found) == 1, (ctype, status.get("conditions"))
    result: Obj = found[0]
    return result


def assert_settled(obj: Obj, since: float = 100.0, now: str = T3) -> None:
    assert simulate(obj, since_change=since, settings=S, now=now) == (None, None)


def new_template(obj: Obj, image: str = "nginx:1.28") -> None:
    """Change a workload's pod template, as an apply of a new image would (a new generation)."""
    obj["metadata"]["generation"] += 1
    obj["spec"]["template"] = pod_template(image)


def app_health(obj: Obj) -> HealthStatus:
    """The verdict of the project's own health checks (gitops_tasks.health), used as an oracle."""
    result = resource_health(obj)
    assert result is not None
    return result.status


def counts(status: Obj, *keys: str) -> dict[str, int]:
    """Some integer status fields; omitted (omitempty) ones are 0."""
    return {key: status.get(key, 0) for key in keys}


DEPLOYMENT_COUNTS = (
    "replicas",
    "updatedReplicas",
    "readyReplicas",
    "availableReplicas",
    "unavailableReplicas",
)


# A compact rendition of Argo CD's (gitops-engine pkg/health) built-in checks, to show that the
# simulated statuses lead a health check to the intended verdict.
def health(obj: Obj) -> str:
    kind, spec, st = obj["kind"], obj.get("spec", {}), obj.get("status", {})
    gen = obj["metadata"].get("generation", 0)
    replicas = spec.get("replicas", 1)
    if kind == "Deployment":
        if spec.get("paused"):
            return "Suspended"
        if gen > st.get("observedGeneration", 0):
            return "Progressing"
        progressing = [c for c in st.get("conditions", []) if c["type"] == "Progressing"]
        if progressing and progressing[0].get("reason") == "ProgressDeadlineExceeded":
            return "Degraded"
        if st.get("updatedReplicas", 0) < replicas or st.get("replicas", 0) > st.get(
            "updatedReplicas", 0
        ):
            return "Progressing"
        return (
            "Progressing"
            if st.get("availableReplicas", 0) < st.get("updatedReplicas", 0)
            else "Healthy"
        )
    if kind == "StatefulSet":
        if not st.get("observedGeneration") or gen > st["observedGeneration"]:
            return "Progressing"
        if st.get("readyReplicas", 0) < replicas:
            return "Progressing"
        return "Healthy" if st.get("updateRevision") == st.get("currentRevision") else "Progressing"
    if kind == "DaemonSet":
        if not st.get("observedGeneration") or gen > st["observedGeneration"]:
            return "Progressing"
        desired = st.get("desiredNumberScheduled", 0)
        if st.get("updatedNumberScheduled", 0) < desired or st.get("numberAvailable", 0) < desired:
            return "Progressing"
        return "Healthy"
    if kind == "ReplicaSet":
        if gen > st.get("observedGeneration", 0):
            return "Progressing"
        return "Progressing" if st.get("availableReplicas", 0) < replicas else "Healthy"
    if kind == "Job":
        types = {c["type"] for c in st.get("conditions", [])}
        return (
            "Degraded" if "Failed" in types else "Healthy" if "Complete" in types else "Progressing"
        )
    if kind == "Pod":
        policy = spec.get("restartPolicy", "Always")
        if policy == "Always":
            for cs in st.get("containerStatuses", []):
                reason = cs["state"].get("waiting", {}).get("reason", "")
                if reason.startswith("Err") or reason.endswith(("Error", "BackOff")):
                    return "Degraded"
        phase = st.get("phase")
        if phase == "Running" and policy == "Always":
            return "Healthy" if cond(st, "Ready")["status"] == "True" else "Progressing"
        return {"Succeeded": "Healthy", "Failed": "Degraded"}.get(phase or "", "Progressing")
    if kind == "PersistentVolumeClaim":
        return {"Bound": "Healthy", "Lost": "Degraded"}.get(st.get("phase", ""), "Progressing")
    if kind == "Service":
        if spec.get("type") != "LoadBalancer":
            return "Healthy"
        return "Healthy" if st.get("loadBalancer", {}).get("ingress") else "Progressing"
    raise AssertionError(kind)


# --------------------------------------------------------------------------- general


def test_simulated_kinds() -> None:
    assert {
        ("apps", "Deployment"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("apps", "ReplicaSet"),
        ("batch", "Job"),
        ("", "Pod"),
        ("", "PersistentVolumeClaim"),
        ("", "PersistentVolume"),
        ("", "Service"),
    } == SIMULATED_KINDS


def test_group_kind() -> None:
    assert group_kind({"apiVersion": "apps/v1", "kind": "Deployment"}) == ("apps", "Deployment")
    assert group_kind({"apiVersion": "v1", "kind": "Pod"}) == ("", "Pod")
    assert group_kind({}) == ("", "")


@pytest.mark.parametrize(
    "obj",
    [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "x"}, "spec": {}},
        {"apiVersion": "example.com/v1", "kind": "Deployment", "metadata": {"name": "x"}},
    ],
)
def test_other_kinds_are_left_alone(obj: Obj) -> None:
    assert simulate(obj, since_change=10, settings=S, now=T0) == (None, None)


def test_template_hash_is_stable_and_looks_like_a_pod_template_hash() -> None:
    template = pod_template("nginx:1.27")
    h = template_hash(template)
    assert re.fullmatch(r"[bcdfghjklmnpqrstvwxz2456789]{1,10}", h)
    assert template_hash(copy.deepcopy(template)) == h
    reordered = {"spec": template["spec"], "metadata": template["metadata"]}
    assert template_hash(reordered) == h
    assert template_hash(pod_template("nginx:1.28")) != h


def test_has_fail_marker() -> None:
    assert has_fail_marker({"containers": [{"name": "a", "image": FAIL}]}, "kubesim-fail")
    assert has_fail_marker(
        {"containers": [{"image": "ok"}], "initContainers": [{"image": FAIL}]}, "kubesim-fail"
    )
    assert not has_fail_marker({"containers": [{"image": "nginx"}]}, "kubesim-fail")
    assert not has_fail_marker({"containers": [{"image": "nginx"}]}, "")
    assert not has_fail_marker(None, "kubesim-fail")


@pytest.mark.parametrize(
    "obj",
    [
        deployment(),
        workload("StatefulSet", replicas=2),
        workload("DaemonSet"),
        workload("ReplicaSet", replicas=2),
        job(),
        pod("nginx"),
    ],
)
def test_input_is_not_mutated(obj: Obj) -> None:
    step(obj, 0.0, T0)
    before = copy.deepcopy(obj)
    simulate(obj, since_change=5, settings=S, now=T1)
    assert obj == before


def test_deterministic() -> None:
    a, b = deployment(), deployment()
    assert simulate(a, since_change=0.2, settings=S, now=T0) == simulate(
        b, since_change=0.2, settings=S, now=T0
    )


# --------------------------------------------------------------------------- Deployment


def test_deployment_in_progress() -> None:
    obj = deployment()
    status, next_in = simulate(obj, since_change=0.1, settings=S, now=T0)
    assert status is not None
    assert next_in == pytest.approx(0.4)
    rs = f"web-{template_hash(obj['spec']['template'])}"
    assert status["observedGeneration"] == 1
    assert status["replicas"] == 3
    assert status["updatedReplicas"] == 3
    assert status["unavailableReplicas"] == 3
    # zero counts are omitted, as the API's omitempty tags do
    assert "readyReplicas" not in status and "availableReplicas" not in status
    progressing = cond(status, "Progressing")
    assert progressing == {
        "type": "Progressing",
        "status": "True",
        "lastUpdateTime": T0,
        "lastTransitionTime": T0,
        "reason": "ReplicaSetUpdated",
        "message": f'ReplicaSet "{rs}" is progressing.',
    }
    assert cond(status, "Available")["status"] == "False"
    assert cond(status, "Available")["reason"] == "MinimumReplicasUnavailable"
    obj["status"] = status
    assert health(obj) == "Progressing"


def test_deployment_available_after_delay() -> None:
    obj = deployment()
    status = settled(obj)
    rs = f"web-{template_hash(obj['spec']['template'])}"
    assert {k: status[k] for k in ("replicas", "updatedReplicas", "readyReplicas")} == {
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 3,
    }
    assert status["availableReplicas"] == 3
    assert "unavailableReplicas" not in status
    available = cond(status, "Available")
    assert (available["status"], available["reason"], available["message"]) == (
        "True",
        "MinimumReplicasAvailable",
        "Deployment has minimum availability.",
    )
    progressing = cond(status, "Progressing")
    assert (progressing["status"], progressing["reason"], progressing["message"]) == (
        "True",
        "NewReplicaSetAvailable",
        f'ReplicaSet "{rs}" has successfully progressed.',
    )
    # Progressing stayed True: its transition time is kept, its update time moved on
    assert progressing["lastTransitionTime"] == T0
    assert progressing["lastUpdateTime"] == T1
    assert available["lastTransitionTime"] == T1
    assert [c["type"] for c in status["conditions"]] == ["Available", "Progressing"]
    assert health(obj) == "Healthy"


def test_deployment_idempotent_once_settled() -> None:
    obj = deployment()
    settled(obj)
    assert_settled(obj, since=1.0, now=T1)
    assert_settled(obj)  # later, with another `now`: still nothing to change


def test_deployment_default_replicas_is_one() -> None:
    obj = deployment()
    del obj["spec"]["replicas"]
    status = settled(obj)
    assert status["replicas"] == status["availableReplicas"] == 1


def test_deployment_scaled_to_zero_is_available_immediately() -> None:
    obj = deployment(replicas=0)
    status, next_in = simulate(obj, since_change=0.0, settings=S, now=T0)
    assert status is not None and next_in is None
    assert "replicas" not in status and "availableReplicas" not in status
    assert cond(status, "Available")["status"] == "True"
    assert cond(status, "Progressing")["reason"] == "NewReplicaSetAvailable"
    obj["status"] = status
    assert health(obj) == "Healthy"
    assert_settled(obj)


def test_deployment_fail_marker() -> None:
    obj = deployment(FAIL)
    step(obj, 0.0, T0)
    assert cond(obj["status"], "Progressing")["status"] == "True"
    assert health(obj) == "Progressing"
    next_in = step(obj, 0.5, T1)
    assert next_in is None
    status = obj["status"]
    rs = f"web-{template_hash(obj['spec']['template'])}"
    progressing = cond(status, "Progressing")
    assert (progressing["status"], progressing["reason"], progressing["message"]) == (
        "False",
        "ProgressDeadlineExceeded",
        f'ReplicaSet "{rs}" has timed out progressing.',
    )
    assert progressing["lastTransitionTime"] == T1
    available = cond(status, "Available")
    assert (available["status"], available["reason"]) == ("False", "MinimumReplicasUnavailable")
    assert status.get("availableReplicas", 0) == 0
    assert status.get("readyReplicas", 0) == 0
    assert status["unavailableReplicas"] == 3
    assert health(obj) == "Degraded"
    assert_settled(obj)


def test_deployment_fail_marker_in_init_container() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["initContainers"] = [{"name": "init", "image": FAIL}]
    assert cond(settled(obj), "Progressing")["reason"] == "ProgressDeadlineExceeded"


def test_deployment_rolling_update_keeps_old_pods_available() -> None:
    obj = deployment()
    settled(obj)
    obj["metadata"]["generation"] = 2
    obj["spec"]["template"] = pod_template("nginx:1.28")
    step(obj, 0.0, T2)
    status = obj["status"]
    new_rs = f"web-{template_hash(obj['spec']['template'])}"
    assert status["observedGeneration"] == 2
    assert status["availableReplicas"] == 3
    assert cond(status, "Available")["status"] == "True"
    assert cond(status, "Available")["lastTransitionTime"] == T1  # never went False
    assert cond(status, "Progressing")["message"] == f'ReplicaSet "{new_rs}" is progressing.'
    step(obj, 0.6, T3)
    assert cond(obj["status"], "Progressing")["message"] == (
        f'ReplicaSet "{new_rs}" has successfully progressed.'
    )
    assert health(obj) == "Healthy"


def test_deployment_failed_rolling_update_is_degraded() -> None:
    obj = deployment()
    settled(obj)
    obj["metadata"]["generation"] = 2
    obj["spec"]["template"] = pod_template(FAIL)
    step(obj, 0.0, T2)
    assert app_health(obj) is HealthStatus.PROGRESSING
    step(obj, 0.6, T3)
    status = obj["status"]
    assert cond(status, "Progressing")["reason"] == "ProgressDeadlineExceeded"
    assert cond(status, "Available")["status"] == "True"  # the old pods still serve
    # the rollout stops where it was: old pods up, the surged new pod never ready
    assert counts(status, *DEPLOYMENT_COUNTS) == {
        "replicas": 4,
        "updatedReplicas": 1,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "unavailableReplicas": 1,
    }
    assert health(obj) == "Degraded"
    assert app_health(obj) is HealthStatus.DEGRADED
    assert_settled(obj)


def test_deployment_template_change_is_progressing_until_ready_delay() -> None:
    obj = deployment()  # 3 replicas, RollingUpdate with the default 25% surge / unavailable
    settled(obj)
    assert app_health(obj) is HealthStatus.HEALTHY
    new_template(obj)
    new_rs = f"web-{template_hash(obj['spec']['template'])}"
    assert step(obj, 0.0, T2) == pytest.approx(0.5)
    status = obj["status"]
    # Observed at once; the new ReplicaSet has its one surge pod (25% of 3, rounded up), not
    # ready yet, beside the 3 old pods, which all stay available (25% of 3 rounds down to 0).
    assert status["observedGeneration"] == 2
    assert counts(status, *DEPLOYMENT_COUNTS) == {
        "replicas": 4,
        "updatedReplicas": 1,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "unavailableReplicas": 1,
    }
    progressing = cond(status, "Progressing")
    assert (progressing["status"], progressing["reason"], progressing["message"]) == (
        "True",
        "ReplicaSetUpdated",
        f'ReplicaSet "{new_rs}" is progressing.',
    )
    assert cond(status, "Available")["status"] == "True"
    assert app_health(obj) is HealthStatus.PROGRESSING
    assert health(obj) == "Progressing"

    # The server re-simulates on a timer: nothing changes within the window.
    assert simulate(obj, since_change=0.3, settings=S, now=T3) == (None, pytest.approx(0.2))

    assert step(obj, 0.5, T3) is None
    status = obj["status"]
    assert counts(status, *DEPLOYMENT_COUNTS) == {
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "unavailableReplicas": 0,
    }
    assert cond(status, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert app_health(obj) is HealthStatus.HEALTHY
    assert_settled(obj)


@pytest.mark.parametrize(
    ("replicas", "strategy", "expected"),
    [
        # (replicas, updatedReplicas, availableReplicas) during the window
        (10, None, (13, 5, 8)),  # surge 3, unavailable 2: old RS down to 8, new RS up to 5
        (2, {"maxSurge": 0, "maxUnavailable": 1}, (2, 1, 1)),
        (2, {"maxSurge": "100%"}, (4, 2, 2)),
        (4, {"maxUnavailable": 4}, (4, 4, 0)),  # every old pod may go at once
        (1, None, (2, 1, 1)),
    ],
)
def test_deployment_rolling_update_surge_and_unavailable(
    replicas: int, strategy: Obj | None, expected: tuple[int, int, int]
) -> None:
    spec: Obj = {"replicas": replicas}
    if strategy is not None:
        spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": strategy}
    obj = deployment(**spec)
    settled(obj)
    new_template(obj)
    step(obj, 0.0, T2)
    status = obj["status"]
    total, updated, available = expected
    assert counts(status, "replicas", "updatedReplicas", "availableReplicas") == {
        "replicas": total,
        "updatedReplicas": updated,
        "availableReplicas": available,
    }
    assert status.get("unavailableReplicas", 0) == total - available
    assert app_health(obj) is HealthStatus.PROGRESSING
    assert simulate(obj, since_change=0.2, settings=S, now=T2)[0] is None
    step(obj, 0.5, T3)
    assert counts(obj["status"], "replicas", "updatedReplicas", "availableReplicas") == {
        "replicas": replicas,
        "updatedReplicas": replicas,
        "availableReplicas": replicas,
    }
    assert app_health(obj) is HealthStatus.HEALTHY


def test_deployment_scale_up_keeps_the_template() -> None:
    # A scale is no rollout: every pod is in the current ReplicaSet, only the new ones wait.
    obj = deployment()
    settled(obj)
    obj["metadata"]["generation"] = 2
    obj["spec"]["replicas"] = 5
    step(obj, 0.0, T2)
    status = obj["status"]
    assert counts(status, "replicas", "updatedReplicas", "availableReplicas") == {
        "replicas": 5,
        "updatedReplicas": 5,
        "availableReplicas": 3,
    }
    assert app_health(obj) is HealthStatus.PROGRESSING
    assert simulate(obj, since_change=0.2, settings=S, now=T2)[0] is None
    step(obj, 0.5, T3)
    assert obj["status"]["availableReplicas"] == 5
    assert app_health(obj) is HealthStatus.HEALTHY


def test_deployment_recreate_update_has_no_available_pods() -> None:
    obj = deployment(strategy={"type": "Recreate"})
    settled(obj)
    obj["metadata"]["generation"] = 2
    obj["spec"]["template"] = pod_template("nginx:1.28")
    step(obj, 0.0, T2)
    assert obj["status"].get("availableReplicas", 0) == 0
    assert cond(obj["status"], "Available")["status"] == "False"


def test_deployment_max_unavailable_governs_available_condition() -> None:
    obj = deployment(
        replicas=4, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 4}}
    )
    step(obj, 0.0, T0)
    assert cond(obj["status"], "Available")["status"] == "True"


def test_deployment_paused() -> None:
    obj = deployment(paused=True)
    status, next_in = simulate(obj, since_change=10, settings=S, now=T0)
    assert status is not None and next_in is None
    progressing = cond(status, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("Unknown", "DeploymentPaused")
    assert status["observedGeneration"] == 1
    obj["status"] = status
    assert health(obj) == "Suspended"
    assert_settled(obj)


def test_deployment_keeps_unmanaged_conditions_and_fields() -> None:
    obj = deployment()
    obj["status"] = {
        "collisionCount": 1,
        "conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate"}],
    }
    status = settled(obj)
    assert status["collisionCount"] == 1
    assert [c["type"] for c in status["conditions"]] == [
        "ReplicaFailure",
        "Available",
        "Progressing",
    ]


# --------------------------------------------------------------------------- StatefulSet


def test_statefulset_in_progress_then_ready() -> None:
    obj = workload("StatefulSet", replicas=3, serviceName="w")
    revision = f"w-{template_hash(obj['spec']['template'])}"
    next_in = step(obj, 0.0, T0)
    assert next_in == pytest.approx(0.5)
    status = obj["status"]
    assert status["observedGeneration"] == 1
    assert status["replicas"] == 3
    assert status["availableReplicas"] == 0  # not omitempty in apps/v1
    assert status.get("readyReplicas", 0) == 0
    assert health(obj) == "Progressing"

    assert step(obj, 0.5, T1) is None
    status = obj["status"]
    for key in ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas"):
        assert status[key] == 3, key
    assert status["availableReplicas"] == 3
    assert status["currentRevision"] == status["updateRevision"] == revision
    assert health(obj) == "Healthy"
    assert_settled(obj)


def test_statefulset_rolling_update() -> None:
    obj = workload("StatefulSet", replicas=3)
    settled(obj)
    old = obj["status"]["currentRevision"]
    obj["metadata"]["generation"] = 2
    obj["spec"]["template"] = pod_template("nginx:1.28")
    new = f"w-{template_hash(obj['spec']['template'])}"
    step(obj, 0.0, T2)
    status = obj["status"]
    assert (status["currentRevision"], status["updateRevision"]) == (old, new)
    assert status.get("updatedReplicas", 0) == 0
    assert status["readyReplicas"] == 3
    assert health(obj) == "Progressing"
    step(obj, 0.5, T3)
    status = obj["status"]
    assert status["currentRevision"] == status["updateRevision"] == new
    assert status["updatedReplicas"] == status["currentReplicas"] == 3
    assert health(obj) == "Healthy"
    assert_settled(obj)


def test_statefulset_template_change_is_progressing_until_ready_delay() -> None:
    obj = workload("StatefulSet", replicas=3)
    settled(obj)
    assert app_health(obj) is HealthStatus.HEALTHY
    old = obj["status"]["currentRevision"]
    new_template(obj)
    new = f"w-{template_hash(obj['spec']['template'])}"
    assert step(obj, 0.0, T2) == pytest.approx(0.5)
    status = obj["status"]
    assert status["observedGeneration"] == 2
    assert (status["currentRevision"], status["updateRevision"]) == (old, new)
    assert counts(status, "readyReplicas", "currentReplicas", "updatedReplicas") == {
        "readyReplicas": 3,
        "currentReplicas": 3,
        "updatedReplicas": 0,
    }
    assert app_health(obj) is HealthStatus.PROGRESSING
    assert simulate(obj, since_change=0.3, settings=S, now=T3) == (None, pytest.approx(0.2))
    assert step(obj, 0.5, T3) is None
    status = obj["status"]
    assert status["currentRevision"] == status["updateRevision"] == new
    assert status["updatedReplicas"] == status["readyReplicas"] == 3
    assert app_health(obj) is HealthStatus.HEALTHY
    assert_settled(obj)


def test_statefulset_partitioned_template_change_health() -> None:
    obj = workload(
        "StatefulSet",
        replicas=4,
        updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
    )
    settled(obj)
    new_template(obj)
    step(obj, 0.0, T2)
    assert app_health(obj) is HealthStatus.PROGRESSING
    step(obj, 0.5, T3)
    assert obj["status"]["updatedReplicas"] == 2
    assert app_health(obj) is HealthStatus.HEALTHY


def test_statefulset_fail_marker_first_rollout() -> None:
    obj = workload("StatefulSet", FAIL, replicas=2)
    status = settled(obj)
    assert status.get("readyReplicas", 0) == 0
    assert status["availableReplicas"] == 0
    assert health(obj) == "Progressing"  # stuck: Argo CD reports no Degraded for StatefulSets
    assert_settled(obj)


def test_statefulset_fail_marker_update_stalls() -> None:
    obj = workload("StatefulSet", replicas=3)
    settled(obj)
    old = obj["status"]["currentRevision"]
    obj["metadata"]["generation"] = 2
    obj["spec"]["template"] = pod_template(FAIL)
    step(obj, 0.0, T2)
    step(obj, 1.0, T3)
    status = obj["status"]
    assert status["currentRevision"] == old != status["updateRevision"]
    assert (status["updatedReplicas"], status["currentReplicas"], status["readyReplicas"]) == (
        1,
        2,
        2,
    )
    assert health(obj) == "Progressing"
    assert_settled(obj)


def test_statefulset_partition() -> None:
    obj = workload("StatefulSet", replicas=4)
    settled(obj)
    old = obj["status"]["currentRevision"]
    obj["metadata"]["generation"] = 2
    obj["spec"]["template"] = pod_template("nginx:1.28")
    obj["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": 3}}
    step(obj, 0.0, T2)
    step(obj, 1.0, T3)
    status = obj["status"]
    assert status["updatedReplicas"] == 1
    assert status["currentReplicas"] == 3
    assert status["currentRevision"] == old
    assert_settled(obj)


# --------------------------------------------------------------------------- DaemonSet


def test_daemonset() -> None:
    obj = workload("DaemonSet")
    step(obj, 0.0, T0)
    assert obj["status"] == {
        "currentNumberScheduled": 1,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 1,
        "numberReady": 0,
        "observedGeneration": 1,
        "updatedNumberScheduled": 1,
        "numberUnavailable": 1,
    }
    assert health(obj) == "Progressing"
    step(obj, 0.5, T1)
    assert obj["status"] == {
        "currentNumberScheduled": 1,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 1,
        "numberReady": 1,
        "observedGeneration": 1,
        "updatedNumberScheduled": 1,
        "numberAvailable": 1,
    }
    assert health(obj) == "Healthy"
    assert_settled(obj)


def test_daemonset_template_change_is_progressing_until_ready_delay() -> None:
    obj = workload("DaemonSet")
    settled(obj)
    assert app_health(obj) is HealthStatus.HEALTHY
    new_template(obj)
    assert step(obj, 0.0, T2) == pytest.approx(0.5)
    status = obj["status"]
    # The default RollingUpdate (maxUnavailable 1, no surge) replaces the one node's pod: the
    # new pod is scheduled (updated) but not available yet.
    assert status["observedGeneration"] == 2
    assert counts(
        status, "desiredNumberScheduled", "updatedNumberScheduled", "numberAvailable"
    ) == {"desiredNumberScheduled": 1, "updatedNumberScheduled": 1, "numberAvailable": 0}
    assert app_health(obj) is HealthStatus.PROGRESSING
    assert simulate(obj, since_change=0.3, settings=S, now=T3) == (None, pytest.approx(0.2))
    assert step(obj, 0.5, T3) is None
    assert obj["status"]["numberAvailable"] == 1
    assert app_health(obj) is HealthStatus.HEALTHY
    assert_settled(obj)


def test_daemonset_fail_marker() -> None:
    obj = workload("DaemonSet", FAIL)
    status = settled(obj)
    assert status["numberReady"] == 0
    assert status["numberUnavailable"] == 1
    assert "numberAvailable" not in status
    assert health(obj) == "Progressing"
    assert_settled(obj)


# --------------------------------------------------------------------------- ReplicaSet


def test_replicaset() -> None:
    obj = workload("ReplicaSet", replicas=2)
    step(obj, 0.0, T0)
    assert obj["status"] == {"replicas": 2, "fullyLabeledReplicas": 2, "observedGeneration": 1}
    assert health(obj) == "Progressing"
    step(obj, 0.5, T1)
    assert obj["status"] == {
        "replicas": 2,
        "fullyLabeledReplicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 2,
        "observedGeneration": 1,
    }
    assert health(obj) == "Healthy"
    assert_settled(obj)


def test_replicaset_fail_marker_and_template_change() -> None:
    obj = workload("ReplicaSet", FAIL, replicas=2)
    assert settled(obj).get("readyReplicas", 0) == 0
    assert health(obj) == "Progressing"
    assert_settled(obj)
    # A template change does not replace a ReplicaSet's running pods.
    healthy = workload("ReplicaSet", replicas=2)
    settled(healthy)
    healthy["metadata"]["generation"] = 2
    healthy["spec"]["template"] = pod_template(FAIL)
    step(healthy, 5.0, T2)
    assert healthy["status"]["readyReplicas"] == 2


def test_replicaset_zero_replicas() -> None:
    obj = workload("ReplicaSet", replicas=0)
    status = settled(obj)
    assert status == {"replicas": 0, "observedGeneration": 1}


# --------------------------------------------------------------------------- Job


def test_job_active_then_complete() -> None:
    obj = job()
    next_in = step(obj, 0.0, T0)
    assert next_in == pytest.approx(0.5)
    assert obj["status"] == {
        "startTime": T0,
        "active": 1,
        "ready": 0,
        "terminating": 0,
        "uncountedTerminatedPods": {},
    }
    assert health(obj) == "Progressing"

    assert step(obj, 0.7, T1) is None
    status = obj["status"]
    assert status["startTime"] == T0
    assert status["completionTime"] == T1
    assert status["succeeded"] == 1
    assert "active" not in status and "failed" not in status
    assert [c["type"] for c in status["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    complete = cond(status, "Complete")
    assert complete == {
        "type": "Complete",
        "status": "True",
        "lastProbeTime": T1,
        "lastTransitionTime": T1,
        "reason": "CompletionsReached",
        "message": "Reached expected number of succeeded pods",
    }
    assert health(obj) == "Healthy"
    assert_settled(obj)


def test_job_completions_and_parallelism() -> None:
    obj = job(completions=5, parallelism=2)
    step(obj, 0.0, T0)
    assert obj["status"]["active"] == 2
    step(obj, 1.0, T1)
    assert obj["status"]["succeeded"] == 5

    work_queue = job(parallelism=3)
    step(work_queue, 0.0, T0)
    assert work_queue["status"]["active"] == 3
    step(work_queue, 1.0, T1)
    assert work_queue["status"]["succeeded"] == 3


def test_job_fail_marker() -> None:
    obj = job(FAIL, backoffLimit=2)
    step(obj, 0.0, T0)
    assert obj["status"]["active"] == 1
    assert step(obj, 0.5, T1) is None
    status = obj["status"]
    assert status["failed"] == 3
    assert "succeeded" not in status and "completionTime" not in status
    assert [c["type"] for c in status["conditions"]] == ["FailureTarget", "Failed"]
    failed = cond(status, "Failed")
    assert (failed["status"], failed["reason"], failed["message"]) == (
        "True",
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    )
    assert health(obj) == "Degraded"
    assert_settled(obj)


def test_job_fail_marker_default_backoff_limit() -> None:
    assert settled(job(FAIL))["failed"] == 7


def test_job_suspended() -> None:
    obj = job(suspend=True)
    status, next_in = simulate(obj, since_change=100, settings=S, now=T0)
    assert status is not None and next_in is None
    assert "startTime" not in status and "active" not in status
    suspended = cond(status, "Suspended")
    assert (suspended["status"], suspended["reason"], suspended["message"]) == (
        "True",
        "JobSuspended",
        "Job suspended",
    )
    obj["status"] = status
    assert health(obj) == "Progressing"
    assert_settled(obj)

    # resumed: a new generation, then it runs like any Job
    obj["spec"]["suspend"] = False
    obj["metadata"]["generation"] = 2
    step(obj, 0.0, T1)
    status = obj["status"]
    assert status["startTime"] == T1
    assert status["active"] == 1
    resumed = cond(status, "Suspended")
    assert (resumed["status"], resumed["reason"]) == ("False", "JobResumed")
    step(obj, 0.5, T2)
    assert health(obj) == "Healthy"


def test_job_active_deadline() -> None:
    obj = job(activeDeadlineSeconds=0.2)
    assert step(obj, 0.0, T0) == pytest.approx(0.2)
    step(obj, 0.3, T1)
    failed = cond(obj["status"], "Failed")
    assert failed["reason"] == "DeadlineExceeded"
    assert health(obj) == "Degraded"
    assert_settled(obj)


def test_finished_job_never_changes() -> None:
    obj = job()
    settled(obj)
    obj["spec"]["template"] = pod_template(FAIL)
    obj["metadata"]["generation"] = 2
    assert simulate(obj, since_change=0.0, settings=S, now=T3) == (None, None)


# --------------------------------------------------------------------------- Pod


def test_pod_pending_then_running() -> None:
    obj = pod("nginx:1.27")
    assert step(obj, 0.0, T0) == pytest.approx(0.5)
    status = obj["status"]
    assert status["phase"] == "Pending"
    assert cond(status, "PodScheduled")["status"] == "True"
    assert cond(status, "Ready")["status"] == "False"
    assert status["startTime"] == T0
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert "podIP" not in status
    assert health(obj) == "Progressing"

    assert step(obj, 0.5, T1) is None
    status = obj["status"]
    assert status["phase"] == "Running"
    for ctype in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"):
        assert cond(status, ctype)["status"] == "True", ctype
    assert cond(status, "PodScheduled")["lastTransitionTime"] == T0
    assert cond(status, "Ready")["lastTransitionTime"] == T1
    assert cond(status, "Ready")["lastProbeTime"] is None
    (cs,) = status["containerStatuses"]
    assert cs["name"] == "c0" and cs["image"] == "nginx:1.27"
    assert cs["imageID"].startswith("docker.io/library/nginx@sha256:")
    assert (cs["ready"], cs["started"], cs["restartCount"]) == (True, True, 0)
    assert cs["state"] == {"running": {"startedAt": T1}}
    assert re.fullmatch(r"10\.244\.\d{1,3}\.\d{1,3}", status["podIP"])
    assert status["podIPs"] == [{"ip": status["podIP"]}]
    assert status["hostIP"]
    assert status["startTime"] == T0
    assert health(obj) == "Healthy"
    assert_settled(obj)


def test_pod_ip_is_stable() -> None:
    a, b = pod("nginx"), pod("nginx")
    assert settled(a)["podIP"] == settled(b)["podIP"]


def test_pod_crash_loop_with_fail_marker() -> None:
    obj = pod("nginx", FAIL)
    step(obj, 0.0, T0)
    next_in = step(obj, 0.5, T1)
    assert next_in == pytest.approx(10.0)
    status = obj["status"]
    assert status["phase"] == "Running"
    ready = cond(status, "Ready")
    assert (ready["status"], ready["message"]) == ("False", "containers with unready status: [c1]")
    ok, bad = status["containerStatuses"]
    assert ok["ready"] is True
    assert bad["ready"] is False and bad["restartCount"] == 1
    assert bad["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert bad["state"]["waiting"]["message"].startswith(
        "back-off 10s restarting failed container=c1"
    )
    assert bad["lastState"]["terminated"]["exitCode"] == 1
    assert health(obj) == "Degraded"

    # nothing new until the next restart; then restartCount grows on the kubelet back-off
    status, next_in = simulate(obj, since_change=5.0, settings=S, now=T2)
    assert status is None and next_in == pytest.approx(5.5)
    step(obj, 10.5, T2)
    bad = obj["status"]["containerStatuses"][1]
    assert bad["restartCount"] == 2
    assert bad["state"]["waiting"]["message"].startswith("back-off 20s")
    assert bad["lastState"]["terminated"]["finishedAt"] == T2
    status, next_in = simulate(obj, since_change=0.5 + 610 + 300 * 10, settings=S, now=T3)
    assert status is not None
    assert status["containerStatuses"][1]["restartCount"] == 17
    assert status["containerStatuses"][1]["state"]["waiting"]["message"].startswith("back-off 5m0s")
    assert next_in == pytest.approx(300.0)


def test_pod_fail_marker_restart_never_fails() -> None:
    obj = pod(FAIL, restartPolicy="Never")
    status = settled(obj)
    assert status["phase"] == "Failed"
    (cs,) = status["containerStatuses"]
    assert cs["state"]["terminated"]["exitCode"] == 1
    assert cond(status, "Ready")["reason"] == "PodFailed"
    assert health(obj) == "Degraded"
    assert_settled(obj)


def test_pod_fail_marker_on_failure_crash_loops() -> None:
    obj = pod(FAIL, restartPolicy="OnFailure", owner="Job")
    status = settled(obj)
    assert status["phase"] == "Running"
    assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"


@pytest.mark.parametrize(
    ("owner", "policy"), [("Job", "OnFailure"), ("Job", "Never"), (None, "Never")]
)
def test_pod_run_to_completion_succeeds(owner: str | None, policy: str) -> None:
    obj = pod("busybox", owner=owner, restartPolicy=policy)
    status = settled(obj)
    assert status["phase"] == "Succeeded"
    (cs,) = status["containerStatuses"]
    assert cs["state"]["terminated"]["reason"] == "Completed"
    assert cs["state"]["terminated"]["exitCode"] == 0
    assert cond(status, "Ready")["reason"] == "PodCompleted"
    assert health(obj) == "Healthy"
    assert_settled(obj)


def test_pod_on_failure_without_job_keeps_running() -> None:
    obj = pod("busybox", restartPolicy="OnFailure")
    assert settled(obj)["phase"] == "Running"


def test_pod_init_containers() -> None:
    obj = pod("nginx")
    obj["spec"]["initContainers"] = [{"name": "init", "image": "busybox"}]
    step(obj, 0.0, T0)
    assert cond(obj["status"], "Initialized")["status"] == "False"
    assert obj["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    step(obj, 0.5, T1)
    status = obj["status"]
    assert cond(status, "Initialized")["status"] == "True"
    (init,) = status["initContainerStatuses"]
    assert init["state"]["terminated"]["reason"] == "Completed"
    assert status["phase"] == "Running"
    assert_settled(obj)


def test_pod_failing_init_container() -> None:
    obj = pod("nginx")
    obj["spec"]["initContainers"] = [{"name": "init", "image": FAIL}]
    status = settled(obj)
    assert status["phase"] == "Pending"
    assert status["initContainerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cond(status, "Initialized")["status"] == "False"

    never = pod("nginx", restartPolicy="Never")
    never["spec"]["initContainers"] = [{"name": "init", "image": FAIL}]
    assert settled(never)["phase"] == "Failed"


def test_pod_terminal_phase_is_final() -> None:
    obj = pod("busybox", restartPolicy="Never")
    settled(obj)
    obj["spec"]["containers"][0]["image"] = FAIL
    assert simulate(obj, since_change=1000, settings=S, now=T3) == (None, None)


# --------------------------------------------------------------------------- PVC


def pvc() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "default", "uid": "abc"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def test_pvc_pending_then_bound() -> None:
    obj = pvc()
    spec_before = copy.deepcopy(obj["spec"])
    assert step(obj, 0.0, T0) == pytest.approx(0.5)
    assert obj["status"] == {"phase": "Pending"}
    assert health(obj) == "Progressing"
    assert step(obj, 0.5, T1) is None
    assert obj["status"] == {
        "phase": "Bound",
        "accessModes": ["ReadWriteOnce"],
        "capacity": {"storage": "1Gi"},
    }
    assert obj["spec"] == spec_before  # volumeName is spec: not ours to set
    assert health(obj) == "Healthy"
    assert_settled(obj)


# --------------------------------------------------------------------------- Service


def service(type_: str = "LoadBalancer", name: str = "web", **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": type_, "ports": [{"port": 80}], **spec},
        "status": {"loadBalancer": {}},
    }


@pytest.mark.parametrize("type_", ["ClusterIP", "NodePort"])
def test_service_not_load_balancer_unchanged(type_: str) -> None:
    assert simulate(service(type_), since_change=100, settings=S, now=T0) == (None, None)


def test_service_load_balancer_gets_ingress() -> None:
    obj = service()
    status, next_in = simulate(obj, since_change=0.1, settings=S, now=T0)
    assert status is None and next_in == pytest.approx(0.4)
    assert health(obj) == "Progressing"
    assert step(obj, 0.5, T1) is None
    (ingress,) = obj["status"]["loadBalancer"]["ingress"]
    assert ingress["ipMode"] == "VIP"
    assert ingress["ip"].startswith("172.18.255.")
    assert 1 <= int(ingress["ip"].rsplit(".", 1)[1]) <= 254
    assert health(obj) == "Healthy"
    assert_settled(obj)
    # stable from the name
    again = service()
    step(again, 1.0, T2)
    assert again["status"] == obj["status"]


def test_service_load_balancer_prefix_and_requested_ip() -> None:
    obj = service()
    step(obj, 1.0, T0, SimSettings(lb_ip_prefix="10.9.8."))
    assert obj["status"]["loadBalancer"]["ingress"][0]["ip"].startswith("10.9.8.")
    fixed = service(loadBalancerIP="192.0.2.10")
    step(fixed, 1.0, T0)
    assert fixed["status"]["loadBalancer"]["ingress"][0]["ip"] == "192.0.2.10"


def test_service_no_longer_load_balancer_loses_ingress() -> None:
    obj = service()
    step(obj, 1.0, T0)
    obj["spec"]["type"] = "ClusterIP"
    status, next_in = simulate(obj, since_change=1.0, settings=S, now=T1)
    assert status == {"loadBalancer": {}} and next_in is None


# --------------------------------------------------------------------------- settings


def test_zero_delay_settles_at_once() -> None:
    fast = SimSettings(ready_delay=0.0)
    obj = deployment()
    assert step(obj, 0.0, T0, fast) is None
    assert obj["status"]["availableReplicas"] == 3


def test_custom_fail_marker() -> None:
    custom = SimSettings(fail_marker="broken")
    obj = job("app:broken")
    step(obj, 0.0, T0, custom)
    step(obj, 1.0, T1, custom)
    assert health(obj) == "Degraded"
    ok = job(FAIL)  # the default marker means nothing under another one
    step(ok, 0.0, T0, custom)
    step(ok, 1.0, T1, custom)
    assert health(ok) == "Healthy"
