"""Kind order within a sync wave: what must exist before what.

Called by `plan.SyncTask.sort_key` (applies in this order, prunes in reverse). Pure data.

The order is Helm's and Argo CD's (gitops-engine `sync_tasks.go`, from Helm's `kind_sorter.go`),
with one change: CustomResourceDefinition moves up next to Namespace, so a CRD is applied before
anything else in its wave (Argo CD puts it after PersistentVolumeClaim and relies on its
dependency fix alone). Kinds not listed, i.e. custom resources, come after every listed kind:
they usually need their CRD and the workloads that serve them.
"""

from __future__ import annotations

from typing import Final

KIND_ORDER: Final[tuple[str, ...]] = (
    "Namespace",
    "CustomResourceDefinition",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
)

_RBAC = frozenset({"rbac.authorization.k8s.io"})
_CORE = frozenset({""})

# The API groups each listed kind really lives in. Argo CD ranks by kind alone, which puts a
# Knative `serving.knative.dev/Service` among core Services, ahead of the Deployments and CRDs
# it depends on; matching the group keeps such custom resources where custom resources go.
# `extensions` covers manifests from before the kinds moved to their current groups.
_GROUPS: Final[dict[str, frozenset[str]]] = {
    "Namespace": _CORE,
    "CustomResourceDefinition": frozenset({"apiextensions.k8s.io"}),
    "NetworkPolicy": frozenset({"networking.k8s.io", "extensions"}),
    "ResourceQuota": _CORE,
    "LimitRange": _CORE,
    "PodSecurityPolicy": frozenset({"policy", "extensions"}),
    "PodDisruptionBudget": frozenset({"policy"}),
    "ServiceAccount": _CORE,
    "Secret": _CORE,
    "SecretList": _CORE,
    "ConfigMap": _CORE,
    "StorageClass": frozenset({"storage.k8s.io"}),
    "PersistentVolume": _CORE,
    "PersistentVolumeClaim": _CORE,
    "ClusterRole": _RBAC,
    "ClusterRoleList": _RBAC,
    "ClusterRoleBinding": _RBAC,
    "ClusterRoleBindingList": _RBAC,
    "Role": _RBAC,
    "RoleList": _RBAC,
    "RoleBinding": _RBAC,
    "RoleBindingList": _RBAC,
    "Service": _CORE,
    "DaemonSet": frozenset({"apps", "extensions"}),
    "Pod": _CORE,
    "ReplicationController": _CORE,
    "ReplicaSet": frozenset({"apps", "extensions"}),
    "Deployment": frozenset({"apps", "extensions"}),
    "HorizontalPodAutoscaler": frozenset({"autoscaling"}),
    "StatefulSet": frozenset({"apps"}),
    "Job": frozenset({"batch"}),
    "CronJob": frozenset({"batch"}),
    "IngressClass": frozenset({"networking.k8s.io"}),
    "Ingress": frozenset({"networking.k8s.io", "extensions"}),
    "APIService": frozenset({"apiregistration.k8s.io"}),
}

_RANK: Final = {kind: i for i, kind in enumerate(KIND_ORDER)}

# Rank of every kind not in KIND_ORDER (custom resources): after all known kinds.
CUSTOM_RANK: Final = len(KIND_ORDER)


def kind_rank(group: str, kind: str) -> int:
    """Position of (group, kind) in `KIND_ORDER`; `CUSTOM_RANK` for anything else."""
    rank = _RANK.get(kind)
    if rank is None or group not in _GROUPS[kind]:
        return CUSTOM_RANK
    return rank


def is_crd(group: str, kind: str) -> bool:
    return kind == "CustomResourceDefinition" and group == "apiextensions.k8s.io"


def is_namespace(group: str, kind: str) -> bool:
    return kind == "Namespace" and group == ""
