"""kubesim through the official Python client: typed APIs and the DynamicClient.

Every test talks HTTP to a real kubesim server (the shared session one, or a private one where a
test needs a small watch history), exactly as the controller does in production.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from kubesim.server import KubeSim

from .http import call

T = TypeVar("T")
MERGE = "application/merge-patch+json"


# --------------------------------------------------------------------------- helpers


def wait_for(fn: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.05) -> T:
    """Poll `fn` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


def body_of(exc: ApiException) -> dict[str, Any]:
    assert exc.body, f"ApiException without a body: {exc}"
    parsed = json.loads(exc.body)
    assert parsed["kind"] == "Status" and parsed["status"] == "Failure"
    assert parsed["code"] == exc.status
    return dict(parsed)


def raises_api(status: int, fn: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(ApiException) as info:
        fn()
    assert info.value.status == status, info.value.body
    return body_of(info.value)


def deployment(name: str, *, replicas: int | None = None, image: str = "nginx:1.25",
               env: dict[str, str] | None = None, sidecar: bool = False,
               labels: dict[str, str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": image}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    containers = [container]
    if sidecar:
        containers.append({"name": "sidecar", "image": "busybox:1.36"})
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": containers}},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


def configmap(name: str, data: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta},
            "data": data}


def managers_of(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """manager name -> fieldsV1 of its Apply/Update entry (at most one of each per test)."""
    out: dict[str, dict[str, Any]] = {}
    for entry in obj["metadata"].get("managedFields") or []:
        assert entry["fieldsType"] == "FieldsV1"
        assert entry["operation"] in ("Apply", "Update")
        out[entry["manager"]] = entry["fieldsV1"]
    return out


def owns(obj: dict[str, Any], manager: str, *path: str) -> bool:
    node: Any = managers_of(obj).get(manager)
    for elem in path:
        if not isinstance(node, dict) or elem not in node:
            return False
        node = node[elem]
    return node is not None


class Apply:
    """Server-side apply through the DynamicClient, returning plain dicts."""

    def __init__(self, dynamic: DynamicClient, namespace: str) -> None:
        self.dynamic = dynamic
        self.namespace = namespace

    def resource(self, body: dict[str, Any]) -> Any:
        return self.dynamic.resources.get(api_version=body["apiVersion"], kind=body["kind"])

    def __call__(self, body: dict[str, Any], manager: str, force: bool = False,
                 **kwargs: Any) -> dict[str, Any]:
        res = self.resource(body)
        out = res.server_side_apply(body=body, namespace=self.namespace, field_manager=manager,
                                    force_conflicts=force or None, **kwargs)
        return dict(out.to_dict())

    def get(self, body: dict[str, Any]) -> dict[str, Any]:
        res = self.resource(body)
        return dict(res.get(name=body["metadata"]["name"], namespace=self.namespace).to_dict())


@pytest.fixture
def apply(dynamic: DynamicClient, namespace: str) -> Apply:
    return Apply(dynamic, namespace)


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


def widget_crd(group: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                      "shortNames": ["wdg"]},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "properties": {
                            "size": {"type": "integer"},
                            "color": {"type": "string", "default": "blue"},
                            "tags": {"type": "array", "items": {"type": "string"}},
                        }},
                        "status": {"type": "object",
                                   "x-kubernetes-preserve-unknown-fields": True},
                    }}},
            }],
        },
    }


@pytest.fixture
def crd_group(api_client: client.ApiClient) -> Iterator[str]:
    """A CRD `widgets.<unique group>` that is Established; deleted afterwards."""
    group = f"w{uuid.uuid4().hex[:8]}.example.com"
    ext = client.ApiextensionsV1Api(api_client)
    ext.create_custom_resource_definition(widget_crd(group))

    def established() -> bool:
        crd = ext.read_custom_resource_definition(f"widgets.{group}")
        conds = {c.type: c.status for c in (crd.status.conditions or [])}
        return conds.get("Established") == "True" and conds.get("NamesAccepted") == "True"

    wait_for(established, timeout=5)
    yield group
    ext.delete_custom_resource_definition(f"widgets.{group}")


# --------------------------------------------------------------------------- server-side apply


def test_identical_reapply_keeps_resource_version(apply: Apply) -> None:
    cm = apply(configmap("same-cm", {"a": "1"}, labels={"x": "y"}), "mgr-a")
    again_cm = apply(configmap("same-cm", {"a": "1"}, labels={"x": "y"}), "mgr-a")
    assert again_cm["metadata"]["resourceVersion"] == cm["metadata"]["resourceVersion"]
    assert again_cm["metadata"]["managedFields"] == cm["metadata"]["managedFields"]

    first = apply(deployment("same", replicas=2), "mgr-a")
    assert first["metadata"]["generation"] == 1
    assert first["spec"]["replicas"] == 2
    entry = first["metadata"]["managedFields"][0]
    assert (entry["manager"], entry["operation"], entry["apiVersion"]) == (
        "mgr-a", "Apply", "apps/v1")
    assert owns(first, "mgr-a", "f:spec", "f:replicas")
    # The simulated deployment controller writes status (a new resourceVersion, as in a real
    # cluster); once it has settled, an identical apply (defaults included) changes nothing.
    settled = wait_for(lambda: (lambda d: d if d.get("status", {}).get("availableReplicas") == 2
                                else None)(apply.get(first)))
    again = apply(deployment("same", replicas=2), "mgr-a")
    assert again["metadata"]["resourceVersion"] == settled["metadata"]["resourceVersion"]
    assert again["metadata"]["generation"] == 1
    # A real change does move it.
    changed = apply(deployment("same", replicas=4), "mgr-a")
    assert int(changed["metadata"]["resourceVersion"]) > int(again["metadata"]["resourceVersion"])
    assert changed["metadata"]["generation"] == 2


def test_apply_conflict_between_managers_and_force(apply: Apply) -> None:
    apply(deployment("conflict", replicas=2), "mgr-a")
    status = raises_api(409, lambda: apply(deployment("conflict", replicas=3), "mgr-b"))
    assert status["reason"] == "Conflict"
    causes = status["details"]["causes"]
    assert [(c["reason"], c["field"]) for c in causes] == [
        ("FieldManagerConflict", ".spec.replicas")]
    assert "mgr-a" in causes[0]["message"]
    assert "mgr-a" in status["message"] and ".spec.replicas" in status["message"]
    # Nothing changed.
    assert apply.get(deployment("conflict"))["spec"]["replicas"] == 2

    forced = apply(deployment("conflict", replicas=3), "mgr-b", force=True)
    assert forced["spec"]["replicas"] == 3
    assert owns(forced, "mgr-b", "f:spec", "f:replicas")
    assert not owns(forced, "mgr-a", "f:spec", "f:replicas")
    # A still owns the rest of what it applied.
    assert owns(forced, "mgr-a", "f:spec", "f:template", "f:spec", "f:containers")


def test_shared_ownership_and_release(apply: Apply) -> None:
    cm_a = configmap("shared", {"mine": "a", "shared": "same"})
    cm_b = configmap("shared", {"shared": "same"})
    apply(cm_a, "mgr-a")
    both = apply(cm_b, "mgr-b")  # same value: no conflict, shared ownership
    assert owns(both, "mgr-a", "f:data", "f:shared")
    assert owns(both, "mgr-b", "f:data", "f:shared")
    # A stops applying it: B still owns it, so it stays.
    a_dropped = apply(configmap("shared", {"mine": "a"}), "mgr-a")
    assert a_dropped["data"] == {"mine": "a", "shared": "same"}
    assert not owns(a_dropped, "mgr-a", "f:data", "f:shared")
    assert owns(a_dropped, "mgr-b", "f:data", "f:shared")
    # B stops applying it too: nobody owns it, so it is removed.
    b_dropped = apply(configmap("shared", {}), "mgr-b")
    assert b_dropped["data"] == {"mine": "a"}


def test_shared_replicas_fall_back_to_default_when_released(apply: Apply) -> None:
    apply(deployment("rel", replicas=3), "mgr-a")
    apply(deployment("rel", replicas=3), "mgr-b")
    assert apply(deployment("rel"), "mgr-a")["spec"]["replicas"] == 3
    # Removed once no manager owns it; the API server then defaults it again, as a real one does.
    released = apply(deployment("rel"), "mgr-b")
    assert released["spec"]["replicas"] == 1
    assert not owns(released, "mgr-a", "f:spec", "f:replicas")
    assert not owns(released, "mgr-b", "f:spec", "f:replicas")


def test_update_then_reapply_conflicts_with_updater(apply: Apply, core: client.CoreV1Api,
                                                    namespace: str) -> None:
    apply(configmap("edited", {"k": "applied", "other": "x"}), "mgr-a")
    # kubectl edit style: a merge patch under its own field manager.
    core.patch_namespaced_config_map("edited", namespace, {"data": {"k": "edited"}},
                                     field_manager="kubectl-edit", _content_type=MERGE)
    live = apply.get(configmap("edited", {}))
    assert live["data"]["k"] == "edited"
    edit_entry = next(e for e in live["metadata"]["managedFields"]
                      if e["manager"] == "kubectl-edit")
    assert edit_entry["operation"] == "Update"
    assert "f:k" in edit_entry["fieldsV1"]["f:data"]
    assert not owns(live, "mgr-a", "f:data", "f:k")

    status = raises_api(409, lambda: apply(configmap("edited", {"k": "applied", "other": "x"}),
                                           "mgr-a"))
    cause = status["details"]["causes"][0]
    assert cause["reason"] == "FieldManagerConflict" and cause["field"] == ".data.k"
    assert "kubectl-edit" in cause["message"]
    forced = apply(configmap("edited", {"k": "applied", "other": "x"}), "mgr-a", force=True)
    assert forced["data"]["k"] == "applied"
    assert owns(forced, "mgr-a", "f:data", "f:k")
    assert not owns(forced, "kubectl-edit", "f:data", "f:k")


def test_put_update_then_reapply_conflicts_with_updater(apply: Apply, apps: client.AppsV1Api,
                                                        namespace: str) -> None:
    apply(deployment("put", replicas=2), "mgr-a")
    live = apps.read_namespaced_deployment("put", namespace)
    live.spec.replicas = 5
    apps.replace_namespaced_deployment("put", namespace, live, field_manager="editor")
    status = raises_api(409, lambda: apply(deployment("put", replicas=2), "mgr-a"))
    assert status["details"]["causes"][0]["field"] == ".spec.replicas"
    assert "editor" in status["message"]
    assert apply(deployment("put", replicas=2), "mgr-a", force=True)["spec"]["replicas"] == 2


def test_apply_without_field_manager_is_422(dynamic: DynamicClient, namespace: str) -> None:
    res = dynamic.resources.get(api_version="v1", kind="ConfigMap")
    status = raises_api(422, lambda: res.server_side_apply(
        body=configmap("nofm", {"a": "1"}), namespace=namespace))
    assert status["reason"] == "Invalid"
    assert "fieldManager" in status["message"]
    raises_api(404, lambda: res.get(name="nofm", namespace=namespace))


def test_removed_fields_disappear(apply: Apply) -> None:
    full = deployment("prune", replicas=1, env={"KEEP": "1", "DROP": "2"}, sidecar=True,
                      labels={"team": "a", "tier": "web"})
    created = apply(full, "mgr-a")
    containers = created["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app", "sidecar"]
    assert created["metadata"]["labels"] == {"team": "a", "tier": "web"}

    smaller = deployment("prune", replicas=1, env={"KEEP": "1"}, labels={"team": "a"})
    out = apply(smaller, "mgr-a")
    assert out["metadata"]["labels"] == {"team": "a"}
    containers = out["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app"]
    assert containers[0]["env"] == [{"name": "KEEP", "value": "1"}]
    assert out["metadata"]["generation"] == 2
    assert apply.get(full)["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "KEEP", "value": "1"}]


def test_hpa_style_replicas_owned_by_another_manager(apply: Apply, dynamic: DynamicClient,
                                                    namespace: str) -> None:
    apply(deployment("hpa", env={"V": "1"}), "mgr-a")
    res = dynamic.resources.get(api_version="apps/v1", kind="Deployment")
    res.patch(name="hpa", namespace=namespace, body={"spec": {"replicas": 4}},
              content_type=MERGE, field_manager="hpa")
    live = apply.get(deployment("hpa"))
    assert live["spec"]["replicas"] == 4 and owns(live, "hpa", "f:spec", "f:replicas")
    # A keeps applying without replicas: no conflict, replicas untouched, its change lands.
    out = apply(deployment("hpa", env={"V": "2"}), "mgr-a")
    assert out["spec"]["replicas"] == 4
    assert out["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "V", "value": "2"}]
    assert owns(out, "hpa", "f:spec", "f:replicas")
    assert not owns(out, "mgr-a", "f:spec", "f:replicas")


def test_managed_fields_written_by_clients(apply: Apply, dynamic: DynamicClient,
                                          namespace: str) -> None:
    """Updates may rewrite metadata.managedFields (kubectl's client-side to server-side apply
    migration does, with a JSON patch); `[{}]` clears them; a resourceVersion in a patch is a
    precondition."""
    live = apply(configmap("mf", {"a": "1"}), "mgr-a")
    res = apply.resource(live)
    entries = live["metadata"]["managedFields"]
    renamed = [dict(e, manager="mgr-z") for e in entries]
    patched = res.patch(name="mf", namespace=namespace, content_type="application/json-patch+json",
                        body=[{"op": "replace", "path": "/metadata/managedFields",
                               "value": renamed},
                              {"op": "replace", "path": "/metadata/resourceVersion",
                               "value": live["metadata"]["resourceVersion"]}]).to_dict()
    assert [(e["manager"], e["operation"]) for e in patched["metadata"]["managedFields"]] == [
        ("mgr-z", "Apply")]
    # mgr-z now owns data.a, so mgr-a applying a new value conflicts with it.
    status = raises_api(409, lambda: apply(configmap("mf", {"a": "2"}), "mgr-a"))
    assert 'conflict with "mgr-z"' in status["details"]["causes"][0]["message"]
    stale = raises_api(409, lambda: res.patch(
        name="mf", namespace=namespace, content_type=MERGE,
        body={"metadata": {"resourceVersion": live["metadata"]["resourceVersion"]},
              "data": {"a": "3"}}))
    assert stale["reason"] == "Conflict"
    cleared = res.patch(name="mf", namespace=namespace, content_type=MERGE,
                        body={"metadata": {"managedFields": [{}]}}).to_dict()
    assert "managedFields" not in cleared["metadata"]
    assert cleared["data"] == {"a": "1"}


def test_empty_managed_fields_list_in_an_update_resets_tracking(
        apply: Apply, core: client.CoreV1Api, namespace: str) -> None:
    """`managedFields: []` in a PUT resets ownership like `[{}]`; leaving it out keeps it."""
    apply(configmap("reset", {"a": "1", "b": "1"}), "mgr-a")
    live = core.read_namespaced_config_map("reset", namespace)
    live.data = {"a": "2", "b": "1"}
    live.metadata.managed_fields = None  # left out: the stored entries stay, plus the writer
    kept = core.replace_namespaced_config_map("reset", namespace, live, field_manager="editor")
    assert [(m.manager, m.operation) for m in kept.metadata.managed_fields] == [
        ("mgr-a", "Apply"), ("editor", "Update")]
    kept.data = {"a": "3", "b": "1"}
    kept.metadata.managed_fields = []
    reset = core.replace_namespaced_config_map("reset", namespace, kept, field_manager="editor")
    assert reset.metadata.managed_fields is None and reset.data == {"a": "3", "b": "1"}
    # Untracked now: updates record nothing until the next apply, which then conflicts with
    # nobody but before-first-apply.
    reset.data = {"a": "4", "b": "1"}
    later = core.replace_namespaced_config_map("reset", namespace, reset, field_manager="editor")
    assert later.metadata.managed_fields is None
    status = raises_api(409, lambda: apply(configmap("reset", {"a": "5", "b": "1"}), "mgr-a"))
    assert status["details"]["causes"][0]["message"] == (
        'conflict with "before-first-apply" using v1')


def test_status_apply_keeps_and_owns_the_labels_and_annotations_it_sets(
        apply: Apply, dynamic: DynamicClient, namespace: str) -> None:
    """A /status apply strips only spec (the status strategies' reset fields): the applier owns
    the metadata it sets, which the object keeps unless the kind's status strategy takes it
    back (a Deployment's labels)."""
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "st"},
           "spec": {"serviceName": "st", "replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}},
                                 "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}}
    apply(sts, "creator")
    res = apply.resource(sts)
    status_apply = {"apiVersion": "apps/v1", "kind": "StatefulSet",
                    "metadata": {"name": "st", "labels": {"tier": "db"},
                                 "annotations": {"note": "from-status"}},
                    "spec": {"replicas": 9}, "status": {"replicas": 1, "availableReplicas": 1}}
    out = res.status.server_side_apply(body=status_apply, name="st", namespace=namespace,
                                       field_manager="status-applier",
                                       force_conflicts=True).to_dict()
    assert out["metadata"]["labels"] == {"tier": "db"}
    assert out["metadata"]["annotations"] == {"note": "from-status"}
    assert out["spec"]["replicas"] == 1
    entry = next(e for e in out["metadata"]["managedFields"] if e["manager"] == "status-applier")
    assert entry["subresource"] == "status" and entry["operation"] == "Apply"
    assert entry["fieldsV1"]["f:metadata"] == {"f:labels": {"f:tier": {}},
                                               "f:annotations": {"f:note": {}}}
    assert "f:spec" not in entry["fieldsV1"]
    # A Deployment's status strategy resets labels: owned all the same, as on a real server.
    apply(deployment("dep"), "creator")
    dres = apply.resource(deployment("dep"))
    body = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "dep", "labels": {"tier": "web"},
                         "annotations": {"note": "from-status"}},
            "status": {"observedGeneration": 1}}
    out = dres.status.server_side_apply(body=body, name="dep", namespace=namespace,
                                        field_manager="status-applier",
                                        force_conflicts=True).to_dict()
    assert "labels" not in out["metadata"]
    assert out["metadata"]["annotations"]["note"] == "from-status"
    entry = next(e for e in out["metadata"]["managedFields"] if e["manager"] == "status-applier")
    assert entry["fieldsV1"]["f:metadata"] == {"f:labels": {"f:tier": {}},
                                               "f:annotations": {"f:note": {}}}


def test_scale_writes_record_the_scale_subresource_and_take_replicas(
        apps: client.AppsV1Api, apply: Apply, namespace: str) -> None:
    apply(deployment("sc", replicas=1), "mgr-a")

    def owners() -> list[tuple[str, str, str | None, str]]:
        dep = apps.read_namespaced_deployment("sc", namespace)
        return [(m.manager, m.operation, m.subresource, m.api_version)
                for m in dep.metadata.managed_fields
                if "f:replicas" in (m.fields_v1 or {}).get("f:spec", {})]

    apps.patch_namespaced_deployment_scale("sc", namespace, {"spec": {"replicas": 2}},
                                           field_manager="patcher", _content_type=MERGE)
    assert owners() == [("patcher", "Update", "scale", "apps/v1")]
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale",
             "metadata": {"name": "sc", "namespace": namespace}, "spec": {"replicas": 3}}
    apps.replace_namespaced_deployment_scale("sc", namespace, scale, field_manager="putter")
    assert owners() == [("putter", "Update", "scale", "apps/v1")]
    apps.patch_namespaced_deployment_scale("sc", namespace, [
        {"op": "replace", "path": "/spec/replicas", "value": 4}], field_manager="jsonpatcher",
        _content_type="application/json-patch+json")
    assert owners() == [("jsonpatcher", "Update", "scale", "apps/v1")]
    scale["spec"]["replicas"] = 5
    status = raises_api(409, lambda: apps.patch_namespaced_deployment_scale(
        "sc", namespace, scale, field_manager="applier",
        _content_type="application/apply-patch+yaml"))
    assert status["details"]["causes"][0]["field"] == ".spec.replicas"
    out = apps.patch_namespaced_deployment_scale(
        "sc", namespace, scale, field_manager="applier", force=True,
        _content_type="application/apply-patch+yaml")
    assert out.spec.replicas == 5
    assert owners() == [("applier", "Apply", "scale", "apps/v1")]
    assert apps.read_namespaced_deployment("sc", namespace).spec.replicas == 5
    # An update of /scale without spec.replicas is accepted: the Scale decodes as 0 replicas.
    apps.replace_namespaced_deployment_scale("sc", namespace, {
        "apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": "sc", "namespace": namespace}})
    assert apps.read_namespaced_deployment("sc", namespace).spec.replicas == 0
    assert owners() == []


# --------------------------------------------------------------------------- errors


def test_stale_put_is_409(core: client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_config_map(namespace, configmap("stale", {"a": "1"}))
    fresh = core.read_namespaced_config_map("stale", namespace)
    fresh.data = {"a": "2"}
    core.replace_namespaced_config_map("stale", namespace, fresh)
    created.data = {"a": "3"}
    status = raises_api(409, lambda: core.replace_namespaced_config_map(
        "stale", namespace, created))
    assert status["reason"] == "Conflict"
    assert "the object has been modified" in status["message"]
    assert core.read_namespaced_config_map("stale", namespace).data == {"a": "2"}


def test_missing_namespace_is_404(core: client.CoreV1Api, apply: Apply) -> None:
    missing = f"missing-{uuid.uuid4().hex[:6]}"
    status = raises_api(404, lambda: core.create_namespaced_config_map(
        missing, configmap("x", {"a": "1"})))
    assert status["reason"] == "NotFound"
    assert status["message"] == f'namespaces "{missing}" not found'
    # Server-side apply into a missing namespace too.
    res = apply.resource(configmap("x", {}))
    raises_api(404, lambda: res.server_side_apply(body=configmap("x", {"a": "1"}),
                                                  namespace=missing, field_manager="m"))
    status = raises_api(404, lambda: core.read_namespaced_config_map("nope", "default"))
    assert status["details"] == {"name": "nope", "kind": "configmaps"}


def test_strategic_merge_patch_on_custom_resource_is_415(
        dynamic: DynamicClient, crd_group: str, namespace: str,
        api_client: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api_client)
    custom.create_namespaced_custom_object(crd_group, "v1", namespace, "widgets", {
        "apiVersion": f"{crd_group}/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": 1}})
    res = dynamic.resources.get(api_version=f"{crd_group}/v1", kind="Widget")
    # The DynamicClient's default patch type is strategic merge.
    status = raises_api(415, lambda: res.patch(name="w", namespace=namespace,
                                               body={"spec": {"size": 2}}))
    assert status["reason"] == "UnsupportedMediaType"
    assert "strategic-merge-patch" not in status["message"].split("include:")[1]
    merged = res.patch(name="w", namespace=namespace, body={"spec": {"size": 2}},
                       content_type=MERGE)
    assert merged.spec.size == 2 and merged.spec.color == "blue"
    # CustomObjectsApi patches with a JSON merge patch for dict bodies, which works.
    patched = custom.patch_namespaced_custom_object(crd_group, "v1", namespace, "widgets", "w",
                                                    {"spec": {"size": 3}})
    assert patched["spec"]["size"] == 3


# --------------------------------------------------------------------------- dry run, watch


def test_dry_run_changes_nothing_and_emits_no_event(core: client.CoreV1Api, apply: Apply,
                                                    namespace: str) -> None:
    created = core.create_namespaced_config_map(namespace, configmap("dry", {"a": "1"}))
    rv = created.metadata.resource_version
    events: list[dict[str, Any]] = []
    w = watch.Watch()
    done = threading.Event()

    def consume() -> None:
        try:
            for ev in w.stream(core.list_namespaced_config_map, namespace=namespace,
                               resource_version=rv, timeout_seconds=10):
                events.append(ev)
                w.stop()
        finally:
            done.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()

    # Dry-run patch, apply, create and delete: each answers as if done.
    patched = core.patch_namespaced_config_map("dry", namespace, {"data": {"a": "2"}},
                                               dry_run="All", _content_type=MERGE)
    assert patched.data == {"a": "2"}
    applied = apply(configmap("dry", {"a": "3"}), "mgr-a", dry_run="All", force=True)
    assert applied["data"] == {"a": "3"}
    new = core.create_namespaced_config_map(namespace, configmap("dry-new", {"b": "1"}),
                                            dry_run="All")
    assert new.metadata.name == "dry-new" and new.metadata.uid
    core.delete_namespaced_config_map("dry", namespace, dry_run="All")
    # ... but nothing was stored.
    live = core.read_namespaced_config_map("dry", namespace)
    assert live.data == {"a": "1"} and live.metadata.resource_version == rv
    assert [c.metadata.name for c in core.list_namespaced_config_map(namespace).items] == ["dry"]

    core.patch_namespaced_config_map("dry", namespace, {"data": {"a": "real"}},
                                     _content_type=MERGE)
    assert done.wait(10)
    thread.join(5)
    assert len(events) == 1
    assert events[0]["type"] == "MODIFIED"
    assert events[0]["object"].data == {"a": "real"}


def test_typed_watch_streams_changes(core: client.CoreV1Api, namespace: str) -> None:
    start_rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, configmap("w1", {"a": "1"},
                                                           labels={"app": "x"}))
    core.create_namespaced_config_map(namespace, configmap("other", {"a": "1"}))
    core.patch_namespaced_config_map("w1", namespace, {"data": {"a": "2"}},
                                     _content_type=MERGE)
    core.delete_namespaced_config_map("w1", namespace)
    seen = []
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_config_map, namespace=namespace,
                       label_selector="app=x", resource_version=start_rv, timeout_seconds=3):
        seen.append((ev["type"], ev["object"].metadata.name, dict(ev["object"].data or {})))
        if len(seen) == 3:
            w.stop()
    assert seen == [("ADDED", "w1", {"a": "1"}), ("MODIFIED", "w1", {"a": "2"}),
                    ("DELETED", "w1", {"a": "2"})]


def test_dynamic_watch_initial_and_live_events(dynamic: DynamicClient, core: client.CoreV1Api,
                                               namespace: str) -> None:
    core.create_namespaced_config_map(namespace, configmap("a-pre", {"a": "1"}))
    res = dynamic.resources.get(api_version="v1", kind="ConfigMap")
    seen: list[tuple[str, str]] = []
    w = watch.Watch()

    def later() -> None:
        time.sleep(0.2)
        core.create_namespaced_config_map(namespace, configmap("b-post", {"a": "1"}))

    threading.Thread(target=later, daemon=True).start()
    for ev in res.watch(namespace=namespace, timeout=5, watcher=w):
        seen.append((ev["type"], ev["object"].metadata.name))
        assert ev["raw_object"]["kind"] == "ConfigMap"
        if len(seen) == 2:
            w.stop()
    assert seen == [("ADDED", "a-pre"), ("ADDED", "b-post")]


def test_watch_from_too_old_resource_version_is_410() -> None:
    with KubeSim(history_size=5, simulate=False) as sim:
        config = client.Configuration()
        config.host = sim.url
        with client.ApiClient(config) as api:
            core = client.CoreV1Api(api)
            first = core.create_namespaced_config_map("default", configmap("c0", {"a": "0"}))
            for i in range(1, 10):
                core.create_namespaced_config_map("default", configmap(f"c{i}", {"a": "1"}))
            old_rv = first.metadata.resource_version
            # With timeout_seconds the Watch does not retry: it raises the ERROR event's 410.
            with pytest.raises(ApiException) as info:
                for _ in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                              resource_version=old_rv, timeout_seconds=5):
                    pass
            assert info.value.status == 410
            assert "Expired" in str(info.value.reason)
            # The raw event, as the DynamicClient's watcher sees it.
            dyn = DynamicClient(api, cache_file=None)
            res = dyn.resources.get(api_version="v1", kind="ConfigMap")
            with pytest.raises(ApiException) as info:
                list(res.watch(namespace="default", resource_version=old_rv, timeout=5))
            assert info.value.status == 410
            # A current resourceVersion still works.
            now_rv = core.list_namespaced_config_map("default").metadata.resource_version
            events = list(watch.Watch().stream(core.list_namespaced_config_map, "default",
                                               resource_version=now_rv, timeout_seconds=1))
            assert events == []


# --------------------------------------------------------------------------- delete


def test_finalizer_keeps_object_until_removed(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, configmap(
        "fin", {"a": "1"}, finalizers=["example.com/hold"]))
    core.delete_namespaced_config_map("fin", namespace)
    held = core.read_namespaced_config_map("fin", namespace)
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.finalizers == ["example.com/hold"]
    core.patch_namespaced_config_map("fin", namespace, {"metadata": {"finalizers": None}},
                                     _content_type=MERGE)
    raises_api(404, lambda: core.read_namespaced_config_map("fin", namespace))


def test_namespace_deletion_cascades(core: client.CoreV1Api, apps: client.AppsV1Api,
                                     apply: Apply) -> None:
    ns = f"cascade-{uuid.uuid4().hex[:8]}"
    created = core.create_namespace({"metadata": {"name": ns}})
    assert created.metadata.labels["kubernetes.io/metadata.name"] == ns
    assert created.status.phase == "Active"
    core.create_namespaced_config_map(ns, configmap("cm", {"a": "1"}))
    core.create_namespaced_secret(ns, {"metadata": {"name": "s"}, "stringData": {"p": "x"}})
    apps.create_namespaced_deployment(ns, deployment("d"))
    deleted = core.delete_namespace(ns)
    # A real server answers with the Namespace, now Terminating (the client leaves it a dict).
    assert deleted["kind"] == "Namespace" and deleted["status"]["phase"] == "Terminating"

    def gone() -> bool:
        try:
            core.read_namespace(ns)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(gone, timeout=10)
    assert not [c for c in core.list_config_map_for_all_namespaces().items
                if c.metadata.namespace == ns]
    assert not [d for d in apps.list_deployment_for_all_namespaces().items
                if d.metadata.namespace == ns]
    raises_api(404, lambda: core.read_namespaced_secret("s", ns))


# --------------------------------------------------------------------------- CRDs


def test_new_crd_is_discovered_and_served(api_client: client.ApiClient, namespace: str,
                                          tmp_path: Path) -> None:
    group = f"n{uuid.uuid4().hex[:8]}.example.com"
    before = DynamicClient(api_client, cache_file=str(tmp_path / "before.json"))
    before.resources.get(api_version="v1", kind="ConfigMap")  # fills the cache
    ext = client.ApiextensionsV1Api(api_client)
    ext.create_custom_resource_definition(widget_crd(group))
    try:
        wait_for(lambda: any(c.type == "Established" and c.status == "True" for c in (
            ext.read_custom_resource_definition(f"widgets.{group}").status.conditions or [])),
            timeout=5)
        groups = client.ApisApi(api_client).get_api_versions().groups
        mine = next(g for g in groups if g.name == group)
        assert [v.version for v in mine.versions] == ["v1"]
        assert mine.preferred_version.group_version == f"{group}/v1"

        dyn = DynamicClient(api_client, cache_file=str(tmp_path / "after.json"))
        res = dyn.resources.get(api_version=f"{group}/v1", kind="Widget")
        assert res.namespaced and res.name == "widgets" and res.short_names == ["wdg"]
        assert set(res.subresources) == {"status"}
        created = res.create(namespace=namespace, body={
            "apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "one"},
            "spec": {"size": 3, "bogus": True}})
        assert created.spec.size == 3
        assert created.spec.color == "blue"  # schema default
        assert "bogus" not in created.spec.to_dict()  # pruned
        applied = res.server_side_apply(namespace=namespace, field_manager="mgr-a", body={
            "apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "two"},
            "spec": {"size": 1, "tags": ["a", "b"]}})
        assert applied.spec.tags == ["a", "b"]
        # A list whose schema gives no list type is atomic: applying a shorter one replaces it.
        applied = res.server_side_apply(namespace=namespace, field_manager="mgr-a", body={
            "apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "two"},
            "spec": {"size": 1, "tags": ["c"]}})
        assert applied.spec.tags == ["c"]
        status = res.status.patch(namespace=namespace, name="two", content_type=MERGE,
                                  body={"status": {"phase": "Ready"}})
        assert status.status.phase == "Ready"
        listed = client.CustomObjectsApi(api_client).list_namespaced_custom_object(
            group, "v1", namespace, "widgets")
        assert [i["metadata"]["name"] for i in listed["items"]] == ["one", "two"]
        assert listed["kind"] == "WidgetList"
        got = res.get(name="one", namespace=namespace)
        assert got.metadata.uid == created.metadata.uid
        deleted = res.delete(name="one", namespace=namespace)
        assert deleted.status == "Success" or deleted.metadata.name == "one"
        raises_api(404, lambda: res.get(name="one", namespace=namespace))
        # The client whose cache predates the CRD finds it after invalidating.
        before.resources.invalidate_cache()
        assert before.resources.get(api_version=f"{group}/v1", kind="Widget").name == "widgets"
    finally:
        ext.delete_custom_resource_definition(f"widgets.{group}")
    raises_api(404, lambda: client.CustomObjectsApi(api_client).list_namespaced_custom_object(
        group, "v1", namespace, "widgets"))


def route_crd(group: str) -> dict[str, Any]:
    """A CRD whose schema declares list and map types, as operators' CRDs commonly do."""
    def keyed(keys: list[str], **props: Any) -> dict[str, Any]:
        return {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": keys,
                "items": {"type": "object", "required": keys, "properties": props}}

    string = {"type": "string"}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"routes.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "routes", "singular": "route", "kind": "Route"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
                    "type": "object",
                    "properties": {
                        # protocol has a default, so an item may leave that key out
                        "ports": keyed(["name", "protocol"], name=string,
                                       protocol={"type": "string", "default": "TCP"},
                                       port={"type": "integer"}),
                        "hosts": {"type": "array", "x-kubernetes-list-type": "set",
                                  "items": string},
                        "rules": keyed(["host"], host=string,
                                       paths=keyed(["path"], path=string, backend=string)),
                        "selector": {"type": "object", "additionalProperties": string,
                                     "x-kubernetes-map-type": "atomic"},
                        "labels": {"type": "object", "additionalProperties": string},
                        "tags": {"type": "array", "items": string},
                    },
                }}}},
            }],
        },
    }


@pytest.fixture
def route_group(api_client: client.ApiClient) -> Iterator[str]:
    group = f"r{uuid.uuid4().hex[:8]}.example.com"
    ext = client.ApiextensionsV1Api(api_client)
    ext.create_custom_resource_definition(route_crd(group))
    yield group
    ext.delete_custom_resource_definition(f"routes.{group}")


def route(group: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{group}/v1", "kind": "Route", "metadata": {"name": "r"},
            "spec": spec}


def test_custom_resource_list_map_items_belong_to_their_appliers(apply: Apply,
                                                                 route_group: str) -> None:
    apply(route(route_group, ports=[{"name": "http", "port": 80}]), "team-a")
    both = apply(route(route_group, ports=[{"name": "metrics", "port": 9090}]), "team-b")
    assert both["spec"]["ports"] == [{"name": "http", "port": 80, "protocol": "TCP"},
                                     {"name": "metrics", "port": 9090, "protocol": "TCP"}]
    http = 'k:{"name":"http","protocol":"TCP"}'
    metrics = 'k:{"name":"metrics","protocol":"TCP"}'
    assert owns(both, "team-a", "f:spec", "f:ports", http, "f:port")
    assert owns(both, "team-b", "f:spec", "f:ports", metrics, "f:port")
    assert not owns(both, "team-a", "f:spec", "f:ports", metrics)
    # Changing another manager's item conflicts on that item's field only.
    status = raises_api(409, lambda: apply(
        route(route_group, ports=[{"name": "http", "port": 8080}]), "team-b"))
    assert [c["field"] for c in status["details"]["causes"]] == [
        '.spec.ports[name="http",protocol="TCP"].port']
    # team-a dropping its item removes that item, not team-b's.
    left = apply(route(route_group, hosts=["a.example.com"]), "team-a")
    assert left["spec"]["ports"] == [{"name": "metrics", "port": 9090, "protocol": "TCP"}]


def test_custom_resource_sets_nested_list_maps_and_atomic_maps_follow_the_schema(
        apply: Apply, route_group: str) -> None:
    apply(route(route_group, hosts=["a.example.com"], labels={"team": "a"}, selector={"app": "a"},
                rules=[{"host": "h", "paths": [{"path": "/a", "backend": "svc-a"}]}]), "team-a")
    merged = apply(route(route_group, hosts=["b.example.com"], labels={"tier": "web"},
                         rules=[{"host": "h", "paths": [{"path": "/b", "backend": "svc-b"}]}]),
                   "team-b")
    assert merged["spec"]["hosts"] == ["a.example.com", "b.example.com"]
    assert merged["spec"]["labels"] == {"team": "a", "tier": "web"}
    assert merged["spec"]["rules"] == [{"host": "h", "paths": [
        {"path": "/a", "backend": "svc-a"}, {"path": "/b", "backend": "svc-b"}]}]
    assert owns(merged, "team-b", "f:spec", "f:rules", 'k:{"host":"h"}', "f:paths",
                'k:{"path":"/b"}', "f:backend")
    assert owns(merged, "team-a", "f:spec", "f:hosts", 'v:"a.example.com"')
    # x-kubernetes-map-type: atomic: the map is one field, owned and replaced whole.
    assert owns(merged, "team-a", "f:spec", "f:selector")
    assert not owns(merged, "team-a", "f:spec", "f:selector", "f:app")
    status = raises_api(409, lambda: apply(route(route_group, selector={"tier": "web"}),
                                           "team-b"))
    assert [c["field"] for c in status["details"]["causes"]] == [".spec.selector"]
    forced = apply(route(route_group, selector={"tier": "web"}), "team-b", force=True)
    assert forced["spec"]["selector"] == {"tier": "web"}
    # A list without x-kubernetes-list-type in a structural schema stays atomic.
    apply(route(route_group, tags=["a"]), "team-a")
    status = raises_api(409, lambda: apply(route(route_group, tags=["b"]), "team-b"))
    assert [c["field"] for c in status["details"]["causes"]] == [".spec.tags"]


def test_crd_writes_keep_status_conditions_other_managers_set(api_client: client.ApiClient,
                                                              crd_group: str) -> None:
    ext = client.ApiextensionsV1Api(api_client)
    name = f"widgets.{crd_group}"
    audited = {"type": "Audited", "status": "True", "reason": "Reviewed",
               "message": "schema reviewed", "lastTransitionTime": "2024-05-01T10:00:00Z"}
    ext.patch_custom_resource_definition_status(name, {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": name}, "status": {"conditions": [audited]},
    }, field_manager="auditor", _content_type="application/apply-patch+yaml")
    # A spec write makes the server's controllers revisit the status; they reset only the
    # conditions they maintain.
    ext.patch_custom_resource_definition(name, {"metadata": {"labels": {"team": "a"}}},
                                         field_manager="labeler", _content_type=MERGE)
    crd = api_client.sanitize_for_serialization(ext.read_custom_resource_definition(name))
    conditions = {c["type"]: c for c in crd["status"]["conditions"]}
    kept = conditions["Audited"]
    # The client parses the time, so it comes back as +00:00.
    assert kept.pop("lastTransitionTime").startswith("2024-05-01T10:00:00")
    assert kept == {k: v for k, v in audited.items() if k != "lastTransitionTime"}
    assert conditions["Established"]["status"] == "True"
    assert conditions["NamesAccepted"]["status"] == "True"
    assert owns(crd, "auditor", "f:status", "f:conditions", 'k:{"type":"Audited"}', "f:reason")


# --------------------------------------------------------------------------- typed APIs


def test_list_with_label_selectors(core: client.CoreV1Api, namespace: str) -> None:
    for name, labels in [("a", {"tier": "web", "env": "prod"}), ("b", {"tier": "db"}),
                         ("c", {"tier": "web", "env": "dev"}), ("d", {})]:
        core.create_namespaced_config_map(namespace, configmap(name, {"x": "1"},
                                                               labels=labels))

    def names(**kw: Any) -> list[str]:
        return [c.metadata.name for c in core.list_namespaced_config_map(namespace, **kw).items]

    assert names() == ["a", "b", "c", "d"]
    assert names(label_selector="tier=web") == ["a", "c"]
    assert names(label_selector="tier=web,env!=prod") == ["c"]
    assert names(label_selector="env in (prod,dev)") == ["a", "c"]
    assert names(label_selector="!tier") == ["d"]
    assert names(label_selector="tier notin (web)") == ["b", "d"]
    assert names(field_selector="metadata.name=b") == ["b"]
    page = core.list_namespaced_config_map(namespace, limit=3)
    assert len(page.items) == 3 and page.metadata._continue
    rest = core.list_namespaced_config_map(namespace, limit=3, _continue=page.metadata._continue)
    assert [c.metadata.name for c in rest.items] == ["d"]
    status = raises_api(400, lambda: core.list_namespaced_config_map(
        namespace, label_selector="tier in (web"))
    assert status["reason"] == "BadRequest"


def test_scale_subresource(apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, deployment("scaled", replicas=2))
    scale = apps.read_namespaced_deployment_scale("scaled", namespace)
    assert scale.kind == "Scale" and scale.api_version == "autoscaling/v1"
    assert scale.spec.replicas == 2
    assert scale.status.selector == "app=scaled"
    patched = apps.patch_namespaced_deployment_scale(
        "scaled", namespace, {"spec": {"replicas": 5}}, _content_type=MERGE)
    assert patched.spec.replicas == 5
    dep = apps.read_namespaced_deployment("scaled", namespace)
    assert dep.spec.replicas == 5 and dep.metadata.generation == 2
    replaced = apps.replace_namespaced_deployment_scale("scaled", namespace, {
        "apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": "scaled", "namespace": namespace}, "spec": {"replicas": 1}})
    assert replaced.spec.replicas == 1
    assert apps.read_namespaced_deployment("scaled", namespace).spec.replicas == 1
    wait_for(lambda: apps.read_namespaced_deployment_scale(
        "scaled", namespace).status.replicas == 1)
    raises_api(422, lambda: apps.patch_namespaced_deployment_scale(
        "scaled", namespace, {"spec": {"replicas": -1}}, _content_type=MERGE))


def test_typed_create_read_replace_delete(core: client.CoreV1Api, apps: client.AppsV1Api,
                                          namespace: str) -> None:
    svc = core.create_namespaced_service(namespace, {
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    assert svc.spec.type == "ClusterIP" and svc.spec.cluster_ip
    assert svc.spec.ports[0].target_port == 80 and svc.spec.ports[0].protocol == "TCP"
    secret = core.create_namespaced_secret(namespace, {
        "metadata": {"name": "s"}, "stringData": {"user": "admin"}})
    assert secret.type == "Opaque" and secret.data == {"user": "YWRtaW4="}
    assert secret.string_data is None
    dep = apps.create_namespaced_deployment(namespace, deployment("typed"))
    assert dep.spec.replicas == 1
    assert dep.spec.strategy.type == "RollingUpdate"
    assert dep.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"
    status = raises_api(409, lambda: apps.create_namespaced_deployment(
        namespace, deployment("typed")))
    assert status["reason"] == "AlreadyExists"
    deleted = apps.delete_namespaced_deployment("typed", namespace,
                                                propagation_policy="Foreground")
    assert deleted is not None
    wait_for(lambda: not apps.list_namespaced_deployment(namespace).items)


# --------------------------------------------------------------------------- simulation


def _condition(obj: Any, ctype: str) -> Any:
    for cond in (obj.status.conditions or []) if obj.status else []:
        if cond.type == ctype:
            return cond
    return None


def test_deployment_becomes_available(apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, deployment("ok", replicas=2))

    def available() -> Any:
        dep = apps.read_namespaced_deployment_status("ok", namespace)
        cond = _condition(dep, "Available")
        return dep if cond is not None and cond.status == "True" else None

    dep = wait_for(available, timeout=10)
    assert dep.status.available_replicas == 2 and dep.status.ready_replicas == 2
    assert dep.status.observed_generation == dep.metadata.generation
    assert _condition(dep, "Progressing").reason == "NewReplicaSetAvailable"


def test_failing_image_exceeds_progress_deadline(apps: client.AppsV1Api,
                                                 namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, deployment(
        "bad", image="registry.example/app:kubesim-fail"))

    def failed() -> Any:
        cond = _condition(apps.read_namespaced_deployment("bad", namespace), "Progressing")
        return cond if cond is not None and cond.status == "False" else None

    cond = wait_for(failed, timeout=10)
    assert cond.reason == "ProgressDeadlineExceeded"
    dep = apps.read_namespaced_deployment("bad", namespace)
    assert not dep.status.available_replicas
    assert _condition(dep, "Available").status == "False"


def _job(name: str, image: str) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": 2, "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": image}]}}}}


def test_jobs_complete_or_fail(api_client: client.ApiClient, namespace: str) -> None:
    batch = client.BatchV1Api(api_client)
    batch.create_namespaced_job(namespace, _job("good", "busybox:1.36"))
    batch.create_namespaced_job(namespace, _job("bad", "busybox:kubesim-fail"))

    def finished(name: str) -> Any:
        job = batch.read_namespaced_job_status(name, namespace)
        conds = [c for c in (job.status.conditions or []) if c.status == "True"
                 and c.type in ("Complete", "Failed")]
        return job if conds else None

    good = wait_for(lambda: finished("good"), timeout=10)
    assert _condition(good, "Complete").status == "True"
    assert good.status.succeeded == 1 and good.status.completion_time is not None
    bad = wait_for(lambda: finished("bad"), timeout=10)
    failed = _condition(bad, "Failed")
    assert failed.status == "True" and failed.reason == "BackoffLimitExceeded"
    assert bad.status.failed == 3 and _condition(bad, "Complete") is None


def test_load_balancer_gets_ingress(core: client.CoreV1Api, namespace: str) -> None:
    svc = core.create_namespaced_service(namespace, {
        "metadata": {"name": "lb"},
        "spec": {"type": "LoadBalancer", "selector": {"app": "x"},
                 "ports": [{"port": 443, "targetPort": 8443}]}})
    assert svc.spec.ports[0].node_port  # allocated for a LoadBalancer

    def ingress() -> Any:
        lb = core.read_namespaced_service_status("lb", namespace).status.load_balancer
        return lb.ingress if lb is not None else None

    ing = wait_for(ingress, timeout=10)
    assert len(ing) == 1 and ing[0].ip.startswith("172.18.255.")


def test_persistent_volumes_are_served_cluster_scoped_and_become_available(
        kubesim: KubeSim, core: client.CoreV1Api) -> None:
    resources = {r.name: r for r in core.get_api_resources().resources}
    assert resources["persistentvolumes"].namespaced is False
    assert resources["persistentvolumes"].short_names == ["pv"]
    assert "persistentvolumes/status" in resources
    name = f"pv-{uuid.uuid4().hex[:8]}"
    body = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "hostPath": {"path": "/data/x"}},
            "status": {"phase": "Bound"}}
    w = watch.Watch()
    events: list[tuple[str, str]] = []
    rv = core.list_persistent_volume().metadata.resource_version

    def follow() -> None:
        for ev in w.stream(core.list_persistent_volume, resource_version=rv,
                           timeout_seconds=5):
            if ev["object"].metadata.name == name:
                events.append((ev["type"], ev["object"].status.phase))
            if len(events) >= 2:
                w.stop()

    watcher = threading.Thread(target=follow)
    watcher.start()
    created = core.create_persistent_volume(body)
    # The strategy drops the request's status; defaults as a real server sets them.
    assert created.status.phase == "Pending"
    assert created.status.last_phase_transition_time is not None
    assert created.spec.persistent_volume_reclaim_policy == "Retain"
    assert created.spec.volume_mode == "Filesystem"
    assert created.metadata.namespace is None
    available = wait_for(lambda: (pv := core.read_persistent_volume(name)).status.phase
                         == "Available" and pv)
    assert available.status.last_phase_transition_time is not None
    watcher.join(timeout=10)
    assert events == [("ADDED", "Pending"), ("MODIFIED", "Available")]
    assert name in {p.metadata.name for p in core.list_persistent_volume().items}
    patched = core.patch_persistent_volume_status(
        name, {"status": {"phase": "Released", "message": "claim gone"}})
    assert patched.status.phase == "Released" and patched.spec.capacity == {"storage": "1Gi"}
    # Writes to the main resource keep the status.
    relabelled = core.patch_persistent_volume(
        name, {"metadata": {"labels": {"tier": "x"}}, "status": {"phase": "Failed"}})
    assert relabelled.status.phase == "Released"
    # Cluster-scoped: no namespaced path.
    assert call(kubesim.url, "GET",
                f"/api/v1/namespaces/default/persistentvolumes/{name}").status == 404
    core.delete_persistent_volume(name)
    raises_api(404, lambda: core.read_persistent_volume(name))


def daemonset(name: str, image: str = "fluentd:1.16") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "agent", "image": image}]}}}}


TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"


def test_daemonset_template_generation_annotation_follows_the_pod_template(
        apps: client.AppsV1Api, apply: Apply, namespace: str) -> None:
    def annotation(obj: dict[str, Any]) -> str:
        return str(obj["metadata"]["annotations"][TEMPLATE_GENERATION])

    serialize = apps.api_client.sanitize_for_serialization
    created = serialize(apps.create_namespaced_daemon_set(namespace, daemonset("logs")))
    assert annotation(created) == "1" and created["metadata"]["generation"] == 1
    # A create by POST: the creator's manager owns it (a real server's field manager sees the
    # versioned object, where the annotation already is).
    creator = created["metadata"]["managedFields"][0]["manager"]
    assert owns(created, creator, "f:metadata", "f:annotations", f"f:{TEMPLATE_GENERATION}")

    new_template = serialize(apps.patch_namespaced_daemon_set(
        "logs", namespace, {"spec": {"template": {"spec": {"containers": [
            {"name": "agent", "image": "fluentd:1.17"}]}}}}))
    assert annotation(new_template) == "2" and new_template["metadata"]["generation"] == 2
    other_spec = serialize(apps.patch_namespaced_daemon_set(
        "logs", namespace, {"spec": {"minReadySeconds": 5}}))
    assert annotation(other_spec) == "2" and other_spec["metadata"]["generation"] == 3
    # No request sets it: the stored value stays.
    forced = serialize(apps.patch_namespaced_daemon_set(
        "logs", namespace, {"metadata": {"annotations": {TEMPLATE_GENERATION: "9"}}}))
    assert annotation(forced) == "2"

    # A PUT without it: the stored value stays, and the updater takes the field over, since
    # the versioned request reads as templateGeneration 0.
    body = daemonset("logs", "fluentd:1.17")
    body["spec"]["minReadySeconds"] = 5
    body["metadata"]["resourceVersion"] = forced["metadata"]["resourceVersion"]
    replaced = serialize(apps.replace_namespaced_daemon_set(
        "logs", namespace, body, field_manager="replacer"))
    assert annotation(replaced) == "2" and replaced["metadata"]["generation"] == 3
    assert owns(replaced, "replacer", "f:metadata", "f:annotations",
                f"f:{TEMPLATE_GENERATION}")

    # Server-side apply: set on create, owned by no manager, bumped by a template change.
    applied = apply(daemonset("agents"), "applier")
    assert annotation(applied) == "1"
    assert [e["manager"] for e in applied["metadata"]["managedFields"]] == ["applier"]
    assert not owns(applied, "applier", "f:metadata", "f:annotations")
    reapplied = apply(daemonset("agents", "fluentd:1.17"), "applier")
    assert annotation(reapplied) == "2"
    assert not owns(reapplied, "applier", "f:metadata", "f:annotations")
    same = apply(daemonset("agents", "fluentd:1.17"), "applier")
    assert annotation(same) == "2" and same["metadata"]["generation"] == 2


# --------------------------------------------------------------------------- more built-in kinds


def test_replication_controllers_are_served_with_status_and_scale(
        core: client.CoreV1Api, namespace: str) -> None:
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "legacy"},
          "spec": {"template": {"metadata": {"labels": {"app": "legacy"}},
                                "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}}
    created = core.create_namespaced_replication_controller(namespace, rc)
    # SetDefaults_ReplicationController: one replica, the selector from the template's labels.
    assert created.spec.replicas == 1 and created.spec.selector == {"app": "legacy"}
    assert created.metadata.generation == 1
    scale = core.patch_namespaced_replication_controller_scale(
        "legacy", namespace, {"spec": {"replicas": 3}})
    assert scale.spec.replicas == 3 and scale.status.selector == "app=legacy"
    assert core.read_namespaced_replication_controller("legacy", namespace).spec.replicas == 3
    status = core.patch_namespaced_replication_controller_status(
        "legacy", namespace, {"status": {"replicas": 3, "readyReplicas": 2}})
    assert status.status.ready_replicas == 2
    names = [r.metadata.name for r in core.list_namespaced_replication_controller(namespace).items]
    assert names == ["legacy"]
    core.delete_namespaced_replication_controller("legacy", namespace)
    raises_api(404, lambda: core.read_namespaced_replication_controller("legacy", namespace))


def test_nodes_are_served_cluster_scoped(core: client.CoreV1Api) -> None:
    name = f"node-{uuid.uuid4().hex[:8]}"
    assert all(n.metadata.name != name for n in core.list_node().items)
    node = core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                             "spec": {"unschedulable": True}})
    assert node.metadata.namespace is None and node.spec.unschedulable is True
    patched = core.patch_node_status(name, {"status": {"nodeInfo": {
        "kubeletVersion": "v1.32.0", "machineID": "", "systemUUID": "", "bootID": "",
        "kernelVersion": "", "osImage": "", "containerRuntimeVersion": "",
        "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"}}})
    assert patched.status.node_info.kubelet_version == "v1.32.0"
    assert name in [n.metadata.name for n in core.list_node().items]
    core.delete_node(name)
    raises_api(404, lambda: core.read_node(name))


def test_apiservices_are_served_and_discovered(api_client: client.ApiClient,
                                               dynamic: DynamicClient) -> None:
    reg = client.ApiregistrationV1Api(api_client)
    name = f"v1.{uuid.uuid4().hex[:8]}.example.com"
    svc = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
           "metadata": {"name": name},
           "spec": {"group": name.split(".", 1)[1], "version": "v1", "groupPriorityMinimum": 100,
                    "versionPriority": 10, "service": {"namespace": "default", "name": "ext"}}}
    created = reg.create_api_service(svc)
    assert created.spec.service.name == "ext"
    assert name in [a.metadata.name for a in reg.list_api_service().items]
    res = dynamic.resources.get(api_version="apiregistration.k8s.io/v1", kind="APIService")
    assert res.namespaced is False and res.name == "apiservices"
    assert reg.get_api_resources().resources[0].name == "apiservices"
    reg.delete_api_service(name)
    raises_api(404, lambda: reg.read_api_service(name))


def test_delete_returns_the_object_for_services_and_claims_and_a_status_otherwise(
        core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_service(namespace, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80}]}})
    core.create_namespaced_persistent_volume_claim(namespace, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}}})
    core.create_namespaced_config_map(namespace, configmap("cfg", {"a": "1"}))

    def raw(resp: Any) -> dict[str, Any]:
        return dict(json.loads(resp.data))

    svc = raw(core.delete_namespaced_service("web", namespace, _preload_content=False))
    assert svc["kind"] == "Service" and svc["metadata"]["name"] == "web"
    assert svc["spec"]["ports"][0]["targetPort"] == 80
    pvc = raw(core.delete_namespaced_persistent_volume_claim("data", namespace,
                                                             _preload_content=False))
    assert pvc["kind"] == "PersistentVolumeClaim" and pvc["metadata"]["name"] == "data"
    cm = raw(core.delete_namespaced_config_map("cfg", namespace, _preload_content=False))
    assert cm["kind"] == "Status" and cm["status"] == "Success"
    assert cm["details"] == {"name": "cfg", "kind": "configmaps", "uid": cm["details"]["uid"]}


def _pod(name: str, *containers: dict[str, Any], init: list[dict[str, Any]] | None = None
         ) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}", "image": "nginx:1.25", **c}
                                           for i, c in enumerate(containers)]}
    if init:
        spec["initContainers"] = [{"name": f"i{i}", "image": "busybox:1.36", **c}
                                  for i, c in enumerate(init)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def test_pod_create_response_is_pending_with_its_qos_class(
        core: client.CoreV1Api, namespace: str) -> None:
    both = {"cpu": "500m", "memory": "128Mi"}
    cases = {
        "besteffort": (_pod("besteffort", {}, {"resources": {"requests": {"cpu": "0"}}}),
                       "BestEffort"),
        "burstable": (_pod("burstable", {"resources": {"requests": {"memory": "64Mi"}}}),
                      "Burstable"),
        # Limits alone: requests default to them, which makes the Pod Guaranteed.
        "limits": (_pod("limits", {"resources": {"limits": both}}), "Guaranteed"),
        "equal": (_pod("equal", {"resources": {"limits": {"cpu": "0.5", "memory": "128Mi"},
                                               "requests": both}}), "Guaranteed"),
        "unequal": (_pod("unequal", {"resources": {"limits": both,
                                                   "requests": {"cpu": "250m"}}}),
                    "Burstable"),
        "init-counts": (_pod("init-counts", {"resources": {"limits": both}},
                             init=[{"resources": {"limits": {"cpu": "1"}}}]), "Burstable"),
    }
    for name, (body, qos_class) in cases.items():
        created = core.create_namespaced_pod(namespace, body)
        assert created.status.phase == "Pending", name
        assert created.status.qos_class == qos_class, name
    # The simulated kubelet keeps the class while it moves the Pod on.
    running = wait_for(lambda: (p := core.read_namespaced_pod("limits", namespace))
                       and p.status.phase == "Running" and p)
    assert running.status.qos_class == "Guaranteed"


def test_every_namespace_gets_a_default_service_account(core: client.CoreV1Api) -> None:
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert core.read_namespaced_service_account("default", ns).metadata.name == "default"
    name = f"sa-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        sa = wait_for(lambda: next(iter(core.list_namespaced_service_account(name).items),
                                   None))
        assert sa.metadata.name == "default"
        # It sets no field beyond its name, so no manager owns anything in it.
        assert sa.metadata.managed_fields is None
        # The controller makes it again when it is deleted.
        core.delete_namespaced_service_account("default", name)
        again = wait_for(lambda: next(iter(core.list_namespaced_service_account(name).items),
                                      None))
        assert again.metadata.uid != sa.metadata.uid
    finally:
        core.delete_namespace(name)


def test_no_default_service_account_without_simulation() -> None:
    with KubeSim(simulate=False) as sim:
        time.sleep(0.3)
        listed = call(sim.url, "GET", "/api/v1/serviceaccounts").body
        assert listed["items"] == []
