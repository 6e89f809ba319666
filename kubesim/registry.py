"""The resource types kubesim serves: the built-in kinds and those that CRDs add.

The server looks every request up here (path to type), and discovery and `/openapi/v3` are built
from it, so a CRD becomes visible everywhere at once when it is registered.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
STATUS_VERBS = ("get", "patch", "update")


@dataclass
class ResourceType:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    has_status: bool = False
    has_scale: bool = False
    # Whether metadata.generation is kept (real servers set it only for kinds with a spec
    # that controllers observe; ConfigMaps, Services, Namespaces... have none).
    has_generation: bool = True
    builtin: bool = True
    # Custom resources: the structural schema of this version (None: no pruning).
    schema: dict[str, Any] | None = None
    printer_columns: list[dict[str, Any]] = field(default_factory=list)
    # Custom resources: the storage key is shared by every served version of one CRD.
    storage_version: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        """Objects are stored once per group and plural, whatever version they are read in."""
        return (self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def discovery_entries(self) -> list[dict[str, Any]]:
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(ALL_VERBS),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        entries = [entry]
        if self.has_status:
            entries.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": list(STATUS_VERBS),
                }
            )
        if self.has_scale:
            entries.append(
                {
                    "name": f"{self.plural}/scale",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "group": "autoscaling",
                    "version": "v1",
                    "kind": "Scale",
                    "verbs": list(STATUS_VERBS),
                }
            )
        return entries


_GENERATION_KINDS = frozenset({
    ("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"), ("batch", "Job"), ("batch", "CronJob"), ("", "Pod"),
    ("", "ReplicationController"),
    ("networking.k8s.io", "Ingress"), ("networking.k8s.io", "NetworkPolicy"),
    ("policy", "PodDisruptionBudget"), ("apiextensions.k8s.io", "CustomResourceDefinition"),
})


def _rt(
    group: str,
    version: str,
    plural: str,
    kind: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    status: bool = False,
    scale: bool = False,
    all_cat: bool = False,
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        plural=plural,
        singular=kind.lower(),
        kind=kind,
        namespaced=namespaced,
        short_names=short,
        categories=("all",) if all_cat else (),
        has_status=status,
        has_scale=scale,
        has_generation=(group, kind) in _GENERATION_KINDS,
        storage_version=version,
    )


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _rt("", "v1", "namespaces", "Namespace", False, ("ns",), status=True),
    _rt("", "v1", "configmaps", "ConfigMap", short=("cm",)),
    _rt("", "v1", "secrets", "Secret"),
    _rt("", "v1", "services", "Service", short=("svc",), status=True, all_cat=True),
    _rt("", "v1", "serviceaccounts", "ServiceAccount", short=("sa",)),
    _rt("", "v1", "pods", "Pod", short=("po",), status=True, all_cat=True),
    _rt("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short=("pvc",), status=True),
    _rt("", "v1", "persistentvolumes", "PersistentVolume", False, ("pv",), status=True),
    _rt("", "v1", "events", "Event", short=("ev",)),
    _rt("", "v1", "endpoints", "Endpoints", short=("ep",)),
    _rt("", "v1", "replicationcontrollers", "ReplicationController", short=("rc",),
        status=True, scale=True, all_cat=True),
    _rt("", "v1", "nodes", "Node", False, ("no",), status=True),
    # kube-apiserver lists the aggregator's group first among the named groups.
    replace(_rt("apiregistration.k8s.io", "v1", "apiservices", "APIService", False,
                status=True), categories=("api-extensions",)),
    _rt("apps", "v1", "deployments", "Deployment", short=("deploy",), status=True, scale=True,
        all_cat=True),
    _rt("apps", "v1", "statefulsets", "StatefulSet", short=("sts",), status=True, scale=True,
        all_cat=True),
    _rt("apps", "v1", "daemonsets", "DaemonSet", short=("ds",), status=True, all_cat=True),
    _rt("apps", "v1", "replicasets", "ReplicaSet", short=("rs",), status=True, scale=True,
        all_cat=True),
    _rt("batch", "v1", "jobs", "Job", status=True, all_cat=True),
    _rt("batch", "v1", "cronjobs", "CronJob", short=("cj",), status=True, all_cat=True),
    _rt("networking.k8s.io", "v1", "ingresses", "Ingress", short=("ing",), status=True),
    _rt("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short=("netpol",)),
    _rt("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _rt("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _rt("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    _rt("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _rt("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler",
        short=("hpa",), status=True, all_cat=True),
    _rt("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short=("pdb",),
        status=True),
    _rt("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
        False, ("crd", "crds"), status=True),
    _rt("coordination.k8s.io", "v1", "leases", "Lease"),
)


class Registry:
    """Resource types by (group, version, plural), kept in registration order for discovery."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        # Which CRD (by name) registered which types, so deleting the CRD removes them.
        self._by_crd: dict[str, list[ResourceType]] = {}
        for rt in BUILTIN_TYPES:
            self._types[(rt.group, rt.version, rt.plural)] = rt

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for rt in self._types.values():
            if rt.group == group and rt.version == version and rt.kind == kind:
                return rt
        return None

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(self._types.values())

    def versions_of(self, group: str) -> list[str]:
        seen: list[str] = []
        for rt in self._types.values():
            if rt.group == group and rt.version not in seen:
                seen.append(rt.version)
        return seen

    def groups(self) -> list[str]:
        seen: list[str] = []
        for rt in self._types.values():
            if rt.group and rt.group not in seen:
                seen.append(rt.group)
        return seen

    def has_group_version(self, group: str, version: str) -> bool:
        return any(rt.group == group and rt.version == version for rt in self._types.values())

    def register_crd(self, crd: dict[str, Any]) -> list[ResourceType]:
        """Serve the versions a CRD declares (replacing an earlier registration of it)."""
        name = crd["metadata"]["name"]
        self.unregister_crd(name)
        spec = crd.get("spec", {})
        names = spec.get("names", {})
        group = spec.get("group", "")
        storage = next(
            (v["name"] for v in spec.get("versions", []) if v.get("storage")),
            spec.get("versions", [{}])[0].get("name", ""),
        )
        types: list[ResourceType] = []
        for ver in spec.get("versions", []):
            if not ver.get("served", True):
                continue
            subresources = ver.get("subresources") or {}
            schema = (ver.get("schema") or {}).get("openAPIV3Schema")
            rt = ResourceType(
                group=group,
                version=ver["name"],
                plural=names.get("plural", ""),
                singular=names.get("singular") or names.get("kind", "").lower(),
                kind=names.get("kind", ""),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                has_status="status" in subresources,
                has_scale="scale" in subresources,
                builtin=False,
                schema=schema,
                printer_columns=list(ver.get("additionalPrinterColumns") or []),
                storage_version=storage,
            )
            self._types[(rt.group, rt.version, rt.plural)] = rt
            types.append(rt)
        self._by_crd[name] = types
        return types

    def unregister_crd(self, name: str) -> list[ResourceType]:
        types = self._by_crd.pop(name, [])
        for rt in types:
            self._types.pop((rt.group, rt.version, rt.plural), None)
        return types

    def crd_types(self, name: str) -> list[ResourceType]:
        return list(self._by_crd.get(name, []))
