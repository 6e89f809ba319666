"""Kind order: Namespaces and CRDs first, then Argo CD's (Helm's) order, custom resources last."""

from __future__ import annotations

from gitops_tasks.sync import CUSTOM_RANK, KIND_ORDER, kind_rank


def test_namespace_and_crd_lead() -> None:
    assert KIND_ORDER[:2] == ("Namespace", "CustomResourceDefinition")
    assert kind_rank("", "Namespace") == 0
    assert kind_rank("apiextensions.k8s.io", "CustomResourceDefinition") == 1


def test_argo_order_for_common_kinds() -> None:
    ordered = [
        ("", "Namespace"), ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("networking.k8s.io", "NetworkPolicy"), ("", "ServiceAccount"), ("", "Secret"),
        ("", "ConfigMap"), ("storage.k8s.io", "StorageClass"), ("", "PersistentVolumeClaim"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("rbac.authorization.k8s.io", "Role"), ("rbac.authorization.k8s.io", "RoleBinding"),
        ("", "Service"), ("apps", "DaemonSet"), ("", "Pod"), ("apps", "Deployment"),
        ("autoscaling", "HorizontalPodAutoscaler"), ("apps", "StatefulSet"), ("batch", "Job"),
        ("batch", "CronJob"), ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "Ingress"), ("apiregistration.k8s.io", "APIService"),
        ("example.com", "Widget"),
    ]
    ranks = [kind_rank(group, kind) for group, kind in ordered]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)


def test_custom_resources_come_after_every_known_kind() -> None:
    assert kind_rank("example.com", "Widget") == CUSTOM_RANK == len(KIND_ORDER)
    last_known = max(kind_rank(g, k) for g, k in [
        ("apiregistration.k8s.io", "APIService"), ("networking.k8s.io", "Ingress")])
    assert last_known < CUSTOM_RANK


def test_a_known_kind_name_in_another_group_is_a_custom_resource() -> None:
    # Knative's Service is not a core Service: it needs its CRD and controller first.
    assert kind_rank("serving.knative.dev", "Service") == CUSTOM_RANK
    assert kind_rank("", "Service") < CUSTOM_RANK
    # Old groups still count as the kind.
    assert kind_rank("extensions", "Ingress") == kind_rank("networking.k8s.io", "Ingress")
    assert kind_rank("extensions", "Deployment") == kind_rank("apps", "Deployment")
