"""Discovery through Cluster.resource(): lazy per group-version, cached, refreshed once on a
miss so CRDs created after the Cluster was built are found."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gitops_tasks.cluster import Cluster, ResourceInfo, UnknownKind
from gitops_tasks.cluster.discovery import group_version_path, parse_resource_list


def test_builtin_kinds(cluster: Cluster) -> None:
    deploy = cluster.resource("apps/v1", "Deployment")
    assert deploy == ResourceInfo(
        group="apps", version="v1", kind="Deployment", plural="deployments", namespaced=True,
        verbs=deploy.verbs, subresources=frozenset({"status", "scale"}))
    assert {"get", "list", "patch", "delete"} <= deploy.verbs
    ns = cluster.resource("v1", "Namespace")
    assert (ns.plural, ns.namespaced, ns.api_version) == ("namespaces", False, "v1")
    assert deploy.path("web", "api") == "/apis/apps/v1/namespaces/web/deployments/api"
    assert ns.path("ignored", "x") == "/api/v1/namespaces/x"


def test_cached_per_group_version(cluster: Cluster) -> None:
    cluster.resource("v1", "ConfigMap")
    before = cluster.requests
    for kind in ("ConfigMap", "Secret", "Service", "Namespace"):
        cluster.resource("v1", kind)
    assert cluster.requests == before
    cluster.resource("apps/v1", "Deployment")
    assert cluster.requests == before + 1  # one document for the new group-version
    cluster.invalidate_discovery()
    cluster.resource("v1", "ConfigMap")
    assert cluster.requests == before + 2


def test_crd_created_after_the_cluster_was_built(
    cluster: Cluster, group: str, make_crd: Callable[..., dict[str, Any]]
) -> None:
    with pytest.raises(UnknownKind):
        cluster.resource(f"{group}/v1", "Widget")  # group not served yet: cached as empty
    make_crd(group, "Widget")
    widget = cluster.resource(f"{group}/v1", "Widget")
    assert (widget.plural, widget.namespaced, widget.subresources) == (
        "widgets", True, frozenset({"status"}))
    # A second CRD in the group-version now cached: the miss refreshes that document once.
    make_crd(group, "Gadget", status=False)
    before = cluster.requests
    gadget = cluster.resource(f"{group}/v1", "Gadget")
    assert gadget.plural == "gadgets" and gadget.subresources == frozenset()
    assert cluster.requests == before + 1
    by_group = cluster.resource_by_group_kind(group, "Gadget")
    assert by_group == gadget


def test_unknown_kind_refreshes_once(cluster: Cluster) -> None:
    cluster.resource("v1", "ConfigMap")
    before = cluster.requests
    with pytest.raises(UnknownKind) as info:
        cluster.resource("v1", "Bogus")
    assert cluster.requests == before + 1
    assert "no kind 'Bogus' in apiVersion 'v1'" in str(info.value)
    assert "install its CRD" in str(info.value)
    assert info.value.resource is not None and info.value.resource.kind == "Bogus"
    with pytest.raises(UnknownKind):
        cluster.resource("nowhere.example.com/v1", "Thing")
    with pytest.raises(UnknownKind):
        cluster.resource("apps", "Deployment")  # malformed: no request at all
    with pytest.raises(UnknownKind):
        cluster.resource_by_group_kind("nowhere.example.com", "Thing")


def test_parse_resource_list_attaches_subresources() -> None:
    doc = {"resources": [
        {"name": "pods", "kind": "Pod", "namespaced": True, "verbs": ["get"]},
        {"name": "pods/status", "kind": "Pod", "namespaced": True, "verbs": ["patch"]},
        {"name": "pods/log", "kind": "Pod", "namespaced": True, "verbs": ["get"]},
    ]}
    kinds = parse_resource_list("", "v1", doc)
    assert list(kinds) == ["Pod"]
    assert kinds["Pod"].subresources == frozenset({"status", "log"})
    assert kinds["Pod"].verbs == frozenset({"get"})
    assert group_version_path("v1") == "/api/v1"
    assert group_version_path("apps/v1") == "/apis/apps/v1"
    assert group_version_path("v2") is None
    assert group_version_path("a/b/c") is None
