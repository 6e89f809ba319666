"""Server-side defaults of built-in kinds (kubesim.defaults), checked against upstream values."""

from __future__ import annotations

import base64
import copy
import itertools
from typing import Any

import pytest

from kubesim.defaults import apply_defaults, image_pull_policy

DIGEST = "sha256:" + "0123456789abcdef" * 4


def _deployment(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}
                    ]
                },
            },
            **spec,
        },
    }


def _ips() -> Any:
    counter = itertools.count(1)
    return lambda: f"10.96.1.{next(counter)}"


def test_deployment_gets_every_upstream_default() -> None:
    obj = _deployment()
    apply_defaults(obj, group="apps", kind="Deployment")
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    pod = spec["template"]["spec"]
    assert pod["dnsPolicy"] == "ClusterFirst"
    assert pod["restartPolicy"] == "Always"
    assert pod["securityContext"] == {}
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["schedulerName"] == "default-scheduler"
    # enableServiceLinks is a Pod default (SetDefaults_Pod), not a template one.
    assert "enableServiceLinks" not in pod
    container = pod["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "File"
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert container["resources"] == {}


def test_deployment_explicit_values_are_kept() -> None:
    obj = _deployment(
        replicas=0,
        revisionHistoryLimit=2,
        progressDeadlineSeconds=60,
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
    )
    pod = obj["spec"]["template"]["spec"]
    pod.update(dnsPolicy="Default", restartPolicy="Always", terminationGracePeriodSeconds=5)
    pod["containers"][0].update(
        imagePullPolicy="Never", terminationMessagePolicy="FallbackToLogsOnError"
    )
    pod["containers"][0]["ports"][0]["protocol"] = "UDP"
    apply_defaults(obj, group="apps", kind="Deployment")
    spec = obj["spec"]
    assert spec["replicas"] == 0
    assert spec["revisionHistoryLimit"] == 2
    assert spec["progressDeadlineSeconds"] == 60
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": "25%"}
    assert pod["dnsPolicy"] == "Default"
    assert pod["terminationGracePeriodSeconds"] == 5
    container = pod["containers"][0]
    assert container["imagePullPolicy"] == "Never"
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container["ports"][0]["protocol"] == "UDP"


def test_recreate_strategy_gets_no_rolling_update() -> None:
    obj = _deployment(strategy={"type": "Recreate"})
    apply_defaults(obj, group="apps", kind="Deployment")
    assert obj["spec"]["strategy"] == {"type": "Recreate"}


def test_defaulting_is_idempotent() -> None:
    obj = _deployment()
    apply_defaults(obj, group="apps", kind="Deployment")
    again = copy.deepcopy(obj)
    apply_defaults(again, group="apps", kind="Deployment")
    assert again == obj


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        (f"nginx@{DIGEST}", "IfNotPresent"),
        # Upstream looks only at the tag: latest stays Always even when pinned by digest.
        (f"nginx:latest@{DIGEST}", "Always"),
        ("registry.example.com:5000/team/app", "Always"),
        ("registry.example.com:5000/team/app:v2", "IfNotPresent"),
        ("localhost:5000/app:latest", "Always"),
        ("NotValid:1", "IfNotPresent"),  # unparsable: no tag found
    ],
)
def test_image_pull_policy(image: str, policy: str) -> None:
    assert image_pull_policy(image) == policy
    obj: dict[str, Any] = {"spec": {"containers": [{"name": "c", "image": image}]}}
    apply_defaults(obj, group="", kind="Pod")
    assert obj["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_pod_only_defaults_and_probes_and_volumes() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [
                {
                    "name": "c",
                    "image": "app:1",
                    "resources": {
                        "limits": {"cpu": "1", "memory": "1Gi"},
                        "requests": {"cpu": "500m"},
                    },
                    "livenessProbe": {"httpGet": {"port": 8080}},
                    "readinessProbe": {"grpc": {"port": 9000}, "periodSeconds": 3},
                    "env": [
                        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
                    ],
                }
            ],
            "volumes": [
                {"name": "cfg", "configMap": {"name": "cfg"}},
                {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
                {"name": "scratch"},
            ],
        },
    }
    apply_defaults(obj, group="", kind="Pod")
    spec = obj["spec"]
    assert spec["enableServiceLinks"] is True
    assert spec["initContainers"][0]["imagePullPolicy"] == "Always"
    container = spec["containers"][0]
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert container["livenessProbe"] == {
        "httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert container["readinessProbe"]["periodSeconds"] == 3
    assert container["readinessProbe"]["grpc"] == {"port": 9000, "service": ""}
    assert container["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["cfg"]["configMap"]["defaultMode"] == 420
    assert volumes["sec"]["secret"]["defaultMode"] == 256
    assert volumes["scratch"] == {"name": "scratch", "emptyDir": {}}


def test_service_defaults() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"app": "web"},
            "ports": [{"port": 80}, {"port": 443, "targetPort": "https"}],
        },
    }
    apply_defaults(obj, group="", kind="Service", assign_cluster_ip=_ips())
    spec = obj["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"] == [
        {"port": 80, "protocol": "TCP", "targetPort": 80},
        {"port": 443, "protocol": "TCP", "targetPort": "https"},
    ]
    assert spec["clusterIP"] == "10.96.1.1"
    assert spec["clusterIPs"] == ["10.96.1.1"]
    assert spec["ipFamilies"] == ["IPv4"]
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert "externalTrafficPolicy" not in spec
    assert "nodePort" not in spec["ports"][0]
    assert obj["status"] == {"loadBalancer": {}}


def test_service_keeps_given_cluster_ip_and_does_not_reallocate() -> None:
    obj: dict[str, Any] = {"spec": {"clusterIP": "10.96.0.50", "ports": [{"port": 80}]}}

    def must_not_allocate() -> str:
        raise AssertionError("a Service with a clusterIP got another one")

    apply_defaults(obj, group="", kind="Service", assign_cluster_ip=must_not_allocate)
    assert obj["spec"]["clusterIPs"] == ["10.96.0.50"]
    apply_defaults(obj, group="", kind="Service", assign_cluster_ip=must_not_allocate)
    assert obj["spec"]["clusterIP"] == "10.96.0.50"


def test_headless_service() -> None:
    obj: dict[str, Any] = {
        "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432}]}
    }
    apply_defaults(obj, group="", kind="Service", assign_cluster_ip=_ips())
    spec = obj["spec"]
    assert spec["clusterIP"] == "None"
    assert spec["clusterIPs"] == ["None"]
    assert spec["ipFamilies"] == ["IPv4"]
    assert spec["ipFamilyPolicy"] == "SingleStack"


def test_headless_service_without_selector_requires_dual_stack() -> None:
    obj: dict[str, Any] = {"spec": {"clusterIP": "None", "ports": [{"port": 5432}]}}
    apply_defaults(obj, group="", kind="Service", assign_cluster_ip=_ips())
    assert obj["spec"]["ipFamilyPolicy"] == "RequireDualStack"
    assert obj["spec"]["ipFamilies"] == ["IPv4", "IPv6"]


def test_external_name_service_gets_no_ip() -> None:
    obj: dict[str, Any] = {"spec": {"type": "ExternalName", "externalName": "example.com"}}
    apply_defaults(obj, group="", kind="Service", assign_cluster_ip=_ips())
    spec = obj["spec"]
    assert "clusterIP" not in spec
    assert "ipFamilies" not in spec
    assert "ipFamilyPolicy" not in spec
    assert "internalTrafficPolicy" not in spec


def test_node_port_and_load_balancer_services() -> None:
    node_port: dict[str, Any] = {
        "spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 81, "nodePort": 31000}]}
    }
    apply_defaults(node_port, group="", kind="Service", assign_cluster_ip=_ips())
    spec = node_port["spec"]
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert 30000 <= spec["ports"][0]["nodePort"] <= 32767
    assert spec["ports"][0]["nodePort"] != 31000
    assert spec["ports"][1]["nodePort"] == 31000
    assert "allocateLoadBalancerNodePorts" not in spec

    lb: dict[str, Any] = {
        "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 443}]}
    }
    apply_defaults(lb, group="", kind="Service", assign_cluster_ip=_ips())
    spec = lb["spec"]
    assert spec["allocateLoadBalancerNodePorts"] is True
    assert spec["externalTrafficPolicy"] == "Local"
    assert 30000 <= spec["ports"][0]["nodePort"] <= 32767
    assert 30000 <= spec["healthCheckNodePort"] <= 32767
    assert spec["healthCheckNodePort"] != spec["ports"][0]["nodePort"]


def test_secret_string_data_is_merged_and_removed() -> None:
    obj: dict[str, Any] = {
        "metadata": {"name": "s"},
        "data": {"a": base64.b64encode(b"old").decode(), "b": base64.b64encode(b"keep").decode()},
        "stringData": {"a": "new", "c": "héllo"},
    }
    apply_defaults(obj, group="", kind="Secret")
    assert obj["type"] == "Opaque"
    assert "stringData" not in obj
    decoded = {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}
    assert decoded == {"a": "new", "b": "keep", "c": "héllo"}


def test_secret_type_is_kept() -> None:
    obj: dict[str, Any] = {"type": "kubernetes.io/tls", "data": {}}
    apply_defaults(obj, group="", kind="Secret")
    assert obj["type"] == "kubernetes.io/tls"


def test_namespace_defaults() -> None:
    obj: dict[str, Any] = {"metadata": {"name": "team-a", "labels": {"owner": "me"}}}
    apply_defaults(obj, group="", kind="Namespace")
    assert obj["metadata"]["labels"] == {"owner": "me", "kubernetes.io/metadata.name": "team-a"}
    assert obj["spec"] == {"finalizers": ["kubernetes"]}
    assert obj["status"] == {"phase": "Active"}


def test_configmap_and_unknown_kinds_untouched() -> None:
    for group, kind in (("", "ConfigMap"), ("", "ServiceAccount"), ("example.com", "Widget")):
        obj = {"metadata": {"name": "x"}, "data": {"k": "v"}}
        apply_defaults(obj, group=group, kind=kind)
        assert obj == {"metadata": {"name": "x"}, "data": {"k": "v"}}


def test_statefulset_and_daemonset() -> None:
    sts = _deployment(volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": {}}])
    apply_defaults(sts, group="apps", kind="StatefulSet")
    spec = sts["spec"]
    assert spec["replicas"] == 1
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    assert spec["volumeClaimTemplates"][0]["spec"] == {"volumeMode": "Filesystem"}
    assert "strategy" not in spec

    ds = _deployment()
    del ds["spec"]["template"]["spec"]["containers"][0]["ports"]
    apply_defaults(ds, group="apps", kind="DaemonSet")
    assert ds["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert ds["spec"]["revisionHistoryLimit"] == 10
    assert "replicas" not in ds["spec"]


def test_job_and_cronjob() -> None:
    pod_template: dict[str, Any] = {
        "metadata": {"labels": {"job": "x"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]},
    }
    job: dict[str, Any] = {
        "metadata": {"name": "j"},
        "spec": {"template": copy.deepcopy(pod_template)},
    }
    apply_defaults(job, group="batch", kind="Job")
    spec = job["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert job["metadata"]["labels"] == {"job": "x"}

    work_queue: dict[str, Any] = {
        "spec": {"parallelism": 3, "template": copy.deepcopy(pod_template)}
    }
    apply_defaults(work_queue, group="batch", kind="Job")
    assert "completions" not in work_queue["spec"]

    cron: dict[str, Any] = {
        "spec": {
            "schedule": "* * * * *",
            "jobTemplate": {"spec": {"template": copy.deepcopy(pod_template)}},
        }
    }
    apply_defaults(cron, group="batch", kind="CronJob")
    spec = cron["spec"]
    assert spec["concurrencyPolicy"] == "Allow"
    assert spec["suspend"] is False
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 1)
    job_spec = spec["jobTemplate"]["spec"]
    assert "backoffLimit" not in job_spec  # Job-level defaults land on the Jobs it creates
    assert job_spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst"


def test_other_groups() -> None:
    np: dict[str, Any] = {"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}}
    apply_defaults(np, group="networking.k8s.io", kind="NetworkPolicy")
    assert np["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert np["spec"]["egress"][0]["ports"][0]["protocol"] == "TCP"

    hpa: dict[str, Any] = {"apiVersion": "autoscaling/v2", "spec": {"maxReplicas": 5}}
    apply_defaults(hpa, group="autoscaling", kind="HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] == 1
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": 80,
    }
    assert "behavior" not in hpa["spec"]

    rb: dict[str, Any] = {
        "roleRef": {"kind": "Role", "name": "r"},
        "subjects": [{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "sa"}],
    }
    apply_defaults(rb, group="rbac.authorization.k8s.io", kind="RoleBinding")
    assert rb["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
    # A ServiceAccount's group is empty, which the API leaves out of JSON.
    assert [s.get("apiGroup") for s in rb["subjects"]] == ["rbac.authorization.k8s.io", None]

    pvc: dict[str, Any] = {"spec": {"accessModes": ["ReadWriteOnce"]}}
    apply_defaults(pvc, group="", kind="PersistentVolumeClaim")
    assert pvc["spec"]["volumeMode"] == "Filesystem"


def test_malformed_input_does_not_raise() -> None:
    for group, kind in (("apps", "Deployment"), ("", "Service"), ("", "Pod"), ("batch", "Job")):
        obj: dict[str, Any] = {"spec": {"template": "nope", "ports": "x", "containers": [1, None]}}
        apply_defaults(obj, group=group, kind=kind)
        apply_defaults({"spec": "nope"}, group=group, kind=kind)
