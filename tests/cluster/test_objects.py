"""Reads and writes through Cluster against the shared kubesim: get, list with paging, server-
side apply (create, update, no-op, conflicts, force, dry-run), create, replace, delete, patch
and patch_status."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from gitops_tasks.cluster import ApiConflict, ApiInvalid, Cluster
from kubesim.server import KubeSim


def configmap(namespace: str, name: str = "cm", **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace}, "data": data}


def managers(obj: dict[str, Any]) -> set[str]:
    return {m["manager"] for m in obj["metadata"].get("managedFields") or []}


def test_get(cluster: Cluster, namespace: str) -> None:
    assert cluster.get("v1", "ConfigMap", "cm", namespace) is None
    cluster.apply(configmap(namespace, a="1"))
    live = cluster.get("v1", "ConfigMap", "cm", namespace)
    assert live is not None and live["data"] == {"a": "1"}
    assert cluster.get("v1", "ConfigMap", "cm", "no-such-namespace") is None
    ns = cluster.get("v1", "Namespace", namespace)
    assert ns is not None and ns["metadata"]["name"] == namespace


def test_list_pages_and_selects(cluster: Cluster, namespace: str, kubesim: KubeSim) -> None:
    for i in range(25):
        obj = configmap(namespace, f"cm-{i:02d}", i=str(i))
        obj["metadata"]["labels"] = {"parity": "even" if i % 2 == 0 else "odd"}
        cluster.apply(obj)
    cluster.page_size = 10
    kubesim.request_log.clear()
    items = cluster.list("v1", "ConfigMap", namespace=namespace)
    assert [i["metadata"]["name"] for i in items] == [f"cm-{i:02d}" for i in range(25)]
    assert {(i["apiVersion"], i["kind"]) for i in items} == {("v1", "ConfigMap")}
    lists = [r for r in kubesim.request_log if r.verb == "list"]
    assert [r.query.get("limit") for r in lists] == ["10", "10", "10"]
    assert "continue" not in lists[0].query and "continue" in lists[2].query

    odd = cluster.list("v1", "ConfigMap", namespace=namespace, label_selector="parity=odd")
    assert len(odd) == 12
    everywhere = cluster.list("v1", "ConfigMap", label_selector="parity=odd")
    assert {i["metadata"]["name"] for i in everywhere} >= {i["metadata"]["name"] for i in odd}
    # A cluster-scoped kind ignores the namespace.
    names = {n["metadata"]["name"] for n in cluster.list("v1", "Namespace", namespace="x")}
    assert namespace in names


def test_apply_create_update_noop(cluster: Cluster, namespace: str) -> None:
    created = cluster.apply(configmap(namespace, a="1"))
    rv = created["metadata"]["resourceVersion"]
    assert created["data"] == {"a": "1"} and managers(created) == {"gitops-tasks"}
    same = cluster.apply(configmap(namespace, a="1"))
    assert same["metadata"]["resourceVersion"] == rv  # identical re-apply changes nothing
    updated = cluster.apply(configmap(namespace, a="2", b="3"))
    assert updated["data"] == {"a": "2", "b": "3"}
    assert updated["metadata"]["resourceVersion"] != rv
    # A field no longer applied (and owned by nobody else) is removed.
    assert cluster.apply(configmap(namespace, b="3"))["data"] == {"b": "3"}


def test_apply_does_not_modify_the_callers_dict(cluster: Cluster, namespace: str) -> None:
    ns: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": f"{namespace}-x", "namespace": "ignored"}}
    cluster.apply(ns)
    assert ns["metadata"]["namespace"] == "ignored"  # stripped on the wire only
    assert cluster.get("v1", "Namespace", f"{namespace}-x") is not None
    cluster.delete("v1", "Namespace", f"{namespace}-x")


def test_apply_conflict_then_force(cluster: Cluster, namespace: str) -> None:
    cluster.apply(configmap(namespace, a="1"), field_manager="kubectl-edit")
    with pytest.raises(ApiConflict) as info:
        cluster.apply(configmap(namespace, a="2"))
    err = info.value
    assert err.fields == [("kubectl-edit", ".data.a")]
    assert err.status == 409 and err.resource is not None and err.resource.name == "cm"
    assert "owned by kubectl-edit" in str(err) and "force" in str(err)
    forced = cluster.apply(configmap(namespace, a="2"), force=True)
    assert forced["data"] == {"a": "2"}
    owners = {m["manager"]: m for m in forced["metadata"]["managedFields"]}
    assert "f:a" in owners["gitops-tasks"]["fieldsV1"]["f:data"]


def test_apply_dry_run_stores_nothing(cluster: Cluster, namespace: str) -> None:
    result = cluster.apply(configmap(namespace, a="1"), dry_run=True)
    assert result["data"] == {"a": "1"}
    assert cluster.get("v1", "ConfigMap", "cm", namespace) is None
    live = cluster.apply(configmap(namespace, a="1"))
    would = cluster.apply(configmap(namespace, a="2"), dry_run=True)
    assert would["data"] == {"a": "2"}
    assert cluster.get("v1", "ConfigMap", "cm", namespace) == live


def test_namespaced_kind_needs_a_namespace(cluster: Cluster) -> None:
    before = cluster.requests
    with pytest.raises(ApiInvalid, match="namespaced"):
        cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    with pytest.raises(ApiInvalid, match=r"metadata\.name"):
        cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"namespace": "default"}})
    assert cluster.requests - before <= 1  # at most discovery; nothing sent


def test_create_and_replace(cluster: Cluster, namespace: str) -> None:
    created = cluster.create(configmap(namespace, a="1", b="2"))
    assert created["data"] == {"a": "1", "b": "2"}
    with pytest.raises(ApiConflict) as info:
        cluster.create(configmap(namespace, a="1"))
    assert info.value.reason == "AlreadyExists" and info.value.fields == []
    assert cluster.create(configmap(namespace, "dry"), dry_run=True)["metadata"]["name"] == "dry"
    assert cluster.get("v1", "ConfigMap", "dry", namespace) is None

    replaced = cluster.replace(configmap(namespace, c="3"))
    assert replaced["data"] == {"c": "3"}  # PUT: the whole object, other keys gone
    stale = configmap(namespace, d="4")
    stale["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    with pytest.raises(ApiConflict) as conflict:
        cluster.replace(stale)
    assert conflict.value.reason == "Conflict"
    # Replace of a missing object creates it (the Replace=true sync option on first sync).
    assert cluster.replace(configmap(namespace, "new", e="5"))["data"] == {"e": "5"}


def test_delete_propagation_and_already_gone(cluster: Cluster, namespace: str) -> None:
    def with_owner(name: str, owner: dict[str, Any]) -> dict[str, Any]:
        obj = configmap(namespace, name)
        obj["metadata"]["ownerReferences"] = [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"]}]
        return obj

    parent = cluster.apply(configmap(namespace, "parent"))
    cluster.apply(with_owner("child", parent))
    assert cluster.delete("v1", "ConfigMap", "parent", namespace, dry_run=True) is True
    assert cluster.get("v1", "ConfigMap", "parent", namespace) is not None
    assert cluster.delete("v1", "ConfigMap", "parent", namespace, propagation="Orphan") is True
    child = cluster.get("v1", "ConfigMap", "child", namespace)
    assert child is not None and not child["metadata"].get("ownerReferences")

    parent = cluster.apply(configmap(namespace, "parent"))
    cluster.apply(with_owner("child2", parent))
    assert cluster.delete("v1", "ConfigMap", "parent", namespace,
                          propagation="Background") is True
    assert cluster.get("v1", "ConfigMap", "parent", namespace) is None
    deadline = time.monotonic() + 5  # the garbage collector works in the background
    while cluster.get("v1", "ConfigMap", "child2", namespace) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert cluster.get("v1", "ConfigMap", "child2", namespace) is None
    assert cluster.delete("v1", "ConfigMap", "parent", namespace) is False
    with pytest.raises(ApiInvalid, match="propagation"):
        cluster.delete("v1", "ConfigMap", "x", namespace, propagation="Eventually")


def test_patch(cluster: Cluster, namespace: str) -> None:
    cluster.apply(configmap(namespace, a="1"))
    merged = cluster.patch("v1", "ConfigMap", "cm", namespace, {"data": {"b": "2"}})
    assert merged["data"] == {"a": "1", "b": "2"}
    jsonp = cluster.patch("v1", "ConfigMap", "cm", namespace,
                          [{"op": "remove", "path": "/data/a"}], patch_type="json")
    assert jsonp["data"] == {"b": "2"}
    with pytest.raises(ApiInvalid, match="patch type"):
        cluster.patch("v1", "ConfigMap", "cm", namespace, {}, patch_type="yaml")


def test_patch_status(cluster: Cluster, namespace: str, group: str,
                      make_crd: Callable[..., dict[str, Any]]) -> None:
    make_crd(group, "Widget")
    make_crd(group, "Gadget", status=False)
    api_version = f"{group}/v1"
    cluster.apply({"apiVersion": api_version, "kind": "Widget",
                   "metadata": {"name": "w", "namespace": namespace}, "spec": {"size": 1}})
    patched = cluster.patch_status(api_version, "Widget", "w", namespace,
                                   {"phase": "Ready", "conditions": [{"type": "Ready"}]})
    assert patched["status"]["phase"] == "Ready" and patched["spec"] == {"size": 1}
    again = cluster.patch_status(api_version, "Widget", "w", namespace, {"observed": 2})
    assert again["status"] == {"phase": "Ready", "conditions": [{"type": "Ready"}],
                               "observed": 2}
    # Without a status subresource, status is written through the object itself.
    cluster.apply({"apiVersion": api_version, "kind": "Gadget",
                   "metadata": {"name": "g", "namespace": namespace}, "spec": {}})
    gadget = cluster.patch_status(api_version, "Gadget", "g", namespace, {"phase": "Done"})
    assert gadget["status"] == {"phase": "Done"}
    live = cluster.get(api_version, "Gadget", "g", namespace)
    assert live is not None and live["status"] == {"phase": "Done"}
