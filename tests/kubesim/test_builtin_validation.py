"""Unknown fields in built-in kinds (kubesim.builtin_schema): a real API server decodes built-in
objects into typed structs, so a field the type does not declare is an error with
fieldValidation=Strict, a dropped field plus a `Warning` header with Warn (the default) and a
silently dropped field with Ignore; server-side apply fails the typed conversion of the patch."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest
import yaml

from kubesim import builtin_schema
from kubesim.registry import BUILTIN_TYPES
from kubesim.server import KubeSim

from ..conftest import Kubectl
from .http import Reply, call

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def deployment(name: str, **extra_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name, "anything.example.com/x": "v"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name},
                             "annotations": {"whatever": "goes"}},
                "spec": {"containers": [
                    {"name": "app", "image": "nginx:1.25",
                     "ports": [{"containerPort": 80}],
                     "env": [{"name": "MODE", "value": "x"}],
                     "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}},
                    {"name": "sidecar", "image": "envoy:1"},
                ]},
            },
            **extra_spec,
        },
    }


def with_typos(obj: dict[str, Any]) -> dict[str, Any]:
    bad = copy.deepcopy(obj)
    bad["spec"]["replcas"] = 3
    bad["spec"]["template"]["spec"]["containers"][1]["imagee"] = "envoy:2"
    return bad


# In document order: with_typos adds replcas after the template.
TYPOS = ['unknown field "spec.template.spec.containers[1].imagee"',
         'unknown field "spec.replcas"']


def deploy_path(namespace: str, name: str = "") -> str:
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    return f"{base}/{name}" if name else base


def warnings_of(reply: Reply) -> list[str]:
    """The texts of the Warning header, unquoted as kubectl prints them."""
    header = reply.headers.get("Warning")
    if not header:
        return []
    out = []
    for part in header.split(', 299 - '):
        text = part.removeprefix("299 - ")
        out.append(json.loads(text))
    return out


def spec_has_no_typos(obj: dict[str, Any]) -> bool:
    spec = obj["spec"]
    return ("replcas" not in spec
            and all("imagee" not in c for c in spec["template"]["spec"]["containers"]))


# --------------------------------------------------------------------------- schema


def test_every_builtin_kind_has_a_schema() -> None:
    for rt in BUILTIN_TYPES:
        assert builtin_schema.known_kind(rt.group, rt.version, rt.kind), rt.kind
    assert not builtin_schema.known_kind("example.com", "v1", "Gadget")


def test_unknown_fields_nested_metadata_and_maps() -> None:
    obj = with_typos(deployment("web"))
    obj["metadata"]["bogus"] = 1
    obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["contanerPort"] = 81
    paths = builtin_schema.unknown_fields(obj, "apps", "v1", "Deployment")
    # Document order; labels, annotations and resource limits are maps: any key goes.
    assert paths == [".metadata.bogus", ".spec.template.spec.containers[0].ports[0].contanerPort",
                     ".spec.template.spec.containers[1].imagee", ".spec.replcas"]
    found = builtin_schema.find_unknown(obj, "apps", "v1", "Deployment")
    assert [builtin_schema.apply_path(obj, p) for p in found] == [
        ".metadata.bogus",
        '.spec.template.spec.containers[name="app"].ports[containerPort=80,protocol="TCP"]'
        ".contanerPort",
        '.spec.template.spec.containers[name="sidecar"].imagee',
        ".spec.replcas",
    ]
    pruned = builtin_schema.prune_unknown(obj, "apps", "v1", "Deployment")
    assert pruned == paths
    assert obj == deployment("web")
    assert builtin_schema.unknown_fields(obj, "apps", "v1", "Deployment") == []


def test_opaque_and_map_fields_are_not_flagged() -> None:
    hpa = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "h"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
                 "minReplicas": 1, "maxReplicas": 3,
                 "metrics": [{"type": "Resource", "resource": {
                     "name": "memory", "target": {"type": "AverageValue",
                                                  "averageValue": "500Mi"}}}]},
    }
    assert builtin_schema.unknown_fields(hpa, "autoscaling", "v2",
                                         "HorizontalPodAutoscaler") == []
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"selector": {"any": "key"},
                    "ports": [{"port": 80, "targetPort": "http"}, {"port": 81,
                                                                    "targetPort": 8081}]}}
    assert builtin_schema.unknown_fields(svc, "", "v1", "Service") == []
    # managedFields' fieldsV1 is opaque.
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"},
          "metadata": {"name": "c", "managedFields": [
              {"manager": "m", "operation": "Apply", "fieldsType": "FieldsV1",
               "fieldsV1": {"f:data": {"f:k": {}}}}]}}
    assert builtin_schema.unknown_fields(cm, "", "v1", "ConfigMap") == []
    # A ConfigMap has no status at all.
    assert builtin_schema.unknown_fields({**cm, "status": {}}, "", "v1",
                                         "ConfigMap") == [".status"]


def crd_with_rich_schema(group: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"things.{group}"},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "subresources": {"status": {}, "scale": {
                    "specReplicasPath": ".spec.replicas",
                    "statusReplicasPath": ".status.replicas"}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["size"],
                            "properties": {
                                "size": {"type": "integer", "default": 1, "minimum": 0},
                                "mode": {"type": "string", "enum": ["a", "b"]},
                                "port": {"x-kubernetes-int-or-string": True},
                                "tags": {"type": "array", "items": {"type": "string"},
                                         "x-kubernetes-list-type": "set"},
                                "extra": {"type": "object",
                                          "x-kubernetes-preserve-unknown-fields": True},
                                "limits": {"type": "object",
                                           "additionalProperties": {"type": "integer"}},
                                "nested": {"type": "object", "default": {"a": 1},
                                           "properties": {"a": {"type": "integer"}},
                                           "x-kubernetes-validations": [
                                               {"rule": "self.a >= 0"}]},
                            },
                        },
                        "status": {"type": "object",
                                   "properties": {"replicas": {"type": "integer"}}},
                    },
                }},
            }],
        },
    }


def test_crd_schema_is_not_flagged(kubesim: KubeSim) -> None:
    group = f"v{uuid.uuid4().hex[:8]}.example.com"
    crd = crd_with_rich_schema(group)
    assert builtin_schema.unknown_fields(crd, "apiextensions.k8s.io", "v1",
                                         "CustomResourceDefinition") == []
    r = call(kubesim.url, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
             crd, fieldValidation="Strict")
    assert r.status == 201, r.body
    assert r.body["spec"]["versions"][0]["schema"] == crd["spec"]["versions"][0]["schema"]
    # A typo in the CRD itself (outside the schema's maps) is still caught.
    bad = crd_with_rich_schema(f"w{group}")
    bad["spec"]["versions"][0]["servd"] = True
    r = call(kubesim.url, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
             bad, fieldValidation="Strict")
    assert r.status == 400 and 'unknown field "spec.versions[0].servd"' in r.body["message"]
    call(kubesim.url, "DELETE",
         f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/things.{group}")


# --------------------------------------------------------------------------- create / update


def test_create_strict_is_a_bad_request(kubesim: KubeSim, namespace: str) -> None:
    r = call(kubesim.url, "POST", deploy_path(namespace), with_typos(deployment("web")),
             fieldValidation="Strict")
    assert r.status == 400 and r.reason == "BadRequest"
    assert r.body["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        + ", ".join(TYPOS))
    assert call(kubesim.url, "GET", deploy_path(namespace, "web")).status == 404
    # Dry run validates the same way.
    r = call(kubesim.url, "POST", deploy_path(namespace), with_typos(deployment("web")),
             fieldValidation="Strict", dryRun="All")
    assert r.status == 400


def test_unknown_metadata_field(kubesim: KubeSim, namespace: str) -> None:
    body = deployment("meta")
    body["metadata"]["lables"] = {"a": "b"}
    r = call(kubesim.url, "POST", deploy_path(namespace), body, fieldValidation="Strict")
    assert r.status == 400
    assert r.body["message"].endswith('strict decoding error: unknown field "metadata.lables"')
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "c", "namespce": "x"}, "data": {"k": "v"}}
    r = call(kubesim.url, "POST", f"/api/v1/namespaces/{namespace}/configmaps", cm)
    assert r.status == 201 and "namespce" not in r.body["metadata"]
    assert warnings_of(r) == ['unknown field "metadata.namespce"']


def test_create_warn_is_the_default_and_drops_the_fields(kubesim: KubeSim,
                                                         namespace: str) -> None:
    for query in ({}, {"fieldValidation": "Warn"}):
        name = f"warn-{len(query)}"
        r = call(kubesim.url, "POST", deploy_path(namespace), with_typos(deployment(name)),
                 **query)
        assert r.status == 201
        assert warnings_of(r) == TYPOS
        assert spec_has_no_typos(r.body)
        stored = call(kubesim.url, "GET", deploy_path(namespace, name)).body
        assert spec_has_no_typos(stored) and stored["spec"]["replicas"] == 2
        # Nobody owns what was dropped.
        assert "replcas" not in json.dumps(stored["metadata"]["managedFields"])


def test_create_ignore_drops_silently(kubesim: KubeSim, namespace: str) -> None:
    r = call(kubesim.url, "POST", deploy_path(namespace), with_typos(deployment("quiet")),
             fieldValidation="Ignore")
    assert r.status == 201 and "Warning" not in r.headers
    assert spec_has_no_typos(r.body)


def test_clean_objects_pass_strict(kubesim: KubeSim, namespace: str) -> None:
    ns = f"/api/v1/namespaces/{namespace}"
    objs = [
        (deploy_path(namespace), deployment("clean")),
        (f"{ns}/services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                            "spec": {"selector": {"app": "clean"},
                                     "ports": [{"port": 80, "targetPort": "http"}]}}),
        (f"{ns}/secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                           "stringData": {"password": "x"}, "type": "Opaque"}),
        (f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers", {
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": "clean"},
                     "maxReplicas": 3,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "AverageValue",
                                                   "averageValue": "250m"}}}]}}),
        (f"{ns}/events", {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
                          "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "R",
                          "message": "m", "type": "Normal", "count": 1,
                          "source": {"component": "c"}}),
    ]
    for path, body in objs:
        r = call(kubesim.url, "POST", path, body, fieldValidation="Strict")
        assert r.status == 201, (path, r.body)
        assert "Warning" not in r.headers


def test_update_strict_warn_ignore(kubesim: KubeSim, namespace: str) -> None:
    call(kubesim.url, "POST", deploy_path(namespace), deployment("upd"))
    live = call(kubesim.url, "GET", deploy_path(namespace, "upd")).body
    # Unconditional updates: the simulated controller writes the status meanwhile.
    del live["metadata"]["resourceVersion"]
    bad = with_typos(live)
    r = call(kubesim.url, "PUT", deploy_path(namespace, "upd"), bad, fieldValidation="Strict")
    assert r.status == 400
    assert r.body["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        + ", ".join(TYPOS))
    r = call(kubesim.url, "PUT", deploy_path(namespace, "upd"), bad)
    assert r.status == 200 and warnings_of(r) == TYPOS and spec_has_no_typos(r.body)
    # Nothing but the typos changed: the spec did not change.
    assert r.body["metadata"]["generation"] == 1 and r.body["spec"] == live["spec"]
    bad["spec"]["replicas"] = 4
    r = call(kubesim.url, "PUT", deploy_path(namespace, "upd"), bad, fieldValidation="Ignore")
    assert r.status == 200 and "Warning" not in r.headers
    assert r.body["spec"]["replicas"] == 4 and spec_has_no_typos(r.body)


def test_status_on_main_resource_writes(kubesim: KubeSim, namespace: str) -> None:
    """The main resource keeps the stored status whatever the body says, but the body is decoded
    whole: known status fields pass, unknown ones are unknown fields like any other."""
    body = deployment("st")
    body["status"] = {"replicas": 7, "conditions": [{"type": "Available", "status": "True"}]}
    r = call(kubesim.url, "POST", deploy_path(namespace), body, fieldValidation="Strict")
    assert r.status == 201 and "status" not in r.body
    live = call(kubesim.url, "GET", deploy_path(namespace, "st")).body
    del live["metadata"]["resourceVersion"]
    live["status"] = {"replicas": 9, "observedGeneration": 5}
    r = call(kubesim.url, "PUT", deploy_path(namespace, "st"), live, fieldValidation="Strict")
    assert r.status == 200 and r.body.get("status", {}).get("replicas") != 9
    r = call(kubesim.url, "PATCH", deploy_path(namespace, "st"),
             {"status": {"replicas": 9}}, content_type=MERGE, fieldValidation="Strict")
    assert r.status == 200 and r.body.get("status", {}).get("replicas") != 9
    live = call(kubesim.url, "GET", deploy_path(namespace, "st")).body
    del live["metadata"]["resourceVersion"]
    live["status"] = {"replicas": 1, "bogus": True}
    r = call(kubesim.url, "PUT", deploy_path(namespace, "st"), live, fieldValidation="Strict")
    assert r.status == 400 and r.body["message"].endswith('unknown field "status.bogus"')
    r = call(kubesim.url, "PUT", deploy_path(namespace, "st"), live)
    assert r.status == 200 and warnings_of(r) == ['unknown field "status.bogus"']


def test_status_subresource_writes(kubesim: KubeSim, namespace: str) -> None:
    call(kubesim.url, "POST", deploy_path(namespace), deployment("sub"))
    path = deploy_path(namespace, "sub") + "/status"
    live = call(kubesim.url, "GET", deploy_path(namespace, "sub")).body
    del live["metadata"]["resourceVersion"]
    live["status"] = {"replicas": 2, "readyReplics": 2}
    r = call(kubesim.url, "PUT", path, live, fieldValidation="Strict")
    assert r.status == 400
    assert r.body["message"].endswith('unknown field "status.readyReplics"')
    r = call(kubesim.url, "PUT", path, live)
    assert r.status == 200 and r.body["status"] == {"replicas": 2}
    assert warnings_of(r) == ['unknown field "status.readyReplics"']
    r = call(kubesim.url, "PATCH", path, {"status": {"avilable": 1}}, content_type=MERGE,
             fieldValidation="Strict")
    assert r.status == 400 and r.body["message"] == (
        'strict decoding error: unknown field "status.avilable"')


# --------------------------------------------------------------------------- patches


@pytest.mark.parametrize("content_type", [MERGE, STRATEGIC, JSON_PATCH])
def test_patches(kubesim: KubeSim, namespace: str, content_type: str) -> None:
    name = f"p-{content_type.split('/')[1].split('-')[0]}"
    call(kubesim.url, "POST", deploy_path(namespace), deployment(name))
    patch: Any
    if content_type == JSON_PATCH:
        patch = [{"op": "add", "path": "/spec/replcas", "value": 3},
                 {"op": "add", "path": "/spec/template/spec/containers/1/imagee",
                  "value": "envoy:2"}]
    elif content_type == STRATEGIC:
        patch = {"spec": {"replcas": 3, "template": {"spec": {"containers": [
            {"name": "sidecar", "imagee": "envoy:2"}]}}}}
    else:
        live = call(kubesim.url, "GET", deploy_path(namespace, name)).body
        containers = live["spec"]["template"]["spec"]["containers"]
        containers[1]["imagee"] = "envoy:2"
        patch = {"spec": {"replcas": 3, "template": {"spec": {"containers": containers}}}}
    r = call(kubesim.url, "PATCH", deploy_path(namespace, name), patch,
             content_type=content_type, fieldValidation="Strict")
    assert r.status == 400 and r.reason == "BadRequest"
    # Patches report the strict decoding error bare, as a real server does.
    assert r.body["message"] == "strict decoding error: " + ", ".join(TYPOS)
    r = call(kubesim.url, "PATCH", deploy_path(namespace, name), patch,
             content_type=content_type)
    assert r.status == 200 and sorted(warnings_of(r)) == sorted(TYPOS)
    assert spec_has_no_typos(r.body)


# --------------------------------------------------------------------------- server-side apply


def test_apply_strict_fails_the_typed_conversion(kubesim: KubeSim, namespace: str) -> None:
    path = deploy_path(namespace, "ssa")
    body = deployment("ssa")
    body["metadata"]["namespace"] = namespace
    bad = copy.deepcopy(body)
    bad["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    r = call(kubesim.url, "PATCH", path, yaml.safe_dump(bad), content_type=APPLY,
             fieldManager="me", fieldValidation="Strict")
    assert r.status == 400 and r.reason == "BadRequest"
    assert r.body["message"] == (
        f"failed to create typed patch object ({namespace}/ssa; apps/v1, Kind=Deployment): "
        '.spec.template.spec.containers[name="app"].imagee: field not declared in schema')
    assert call(kubesim.url, "GET", path).status == 404
    # Several unknown fields: structured-merge-diff lists them all.
    r = call(kubesim.url, "PATCH", path, json.dumps(with_typos(body)), content_type=APPLY,
             fieldManager="me", fieldValidation="Strict")
    assert r.status == 400
    assert r.body["message"] == (
        f"failed to create typed patch object ({namespace}/ssa; apps/v1, Kind=Deployment): "
        "errors:\n"
        '  .spec.template.spec.containers[name="sidecar"].imagee: field not declared in schema\n'
        "  .spec.replcas: field not declared in schema")
    # On an existing object too; core kinds have an empty group.
    assert call(kubesim.url, "PATCH", path, json.dumps(body), content_type=APPLY,
                fieldManager="me", fieldValidation="Strict").status == 201
    r = call(kubesim.url, "PATCH", path, json.dumps(with_typos(body)), content_type=APPLY,
             fieldManager="me", fieldValidation="Strict")
    assert r.status == 400 and "field not declared in schema" in r.body["message"]
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
          "data": {"k": "v"}, "dataa": {}}
    r = call(kubesim.url, "PATCH", f"/api/v1/namespaces/{namespace}/configmaps/c",
             json.dumps(cm), content_type=APPLY, fieldManager="me", fieldValidation="Strict")
    assert r.status == 400 and r.body["message"] == (
        "failed to create typed patch object (/c; /v1, Kind=ConfigMap): "
        ".dataa: field not declared in schema")


def test_apply_warn_and_ignore_drop_the_fields(kubesim: KubeSim, namespace: str) -> None:
    path = deploy_path(namespace, "ssa-warn")
    bad = with_typos(deployment("ssa-warn"))
    r = call(kubesim.url, "PATCH", path, yaml.safe_dump(bad, sort_keys=False),
             content_type=APPLY, fieldManager="me")
    assert r.status == 201 and warnings_of(r) == TYPOS and spec_has_no_typos(r.body)
    owned = json.dumps(r.body["metadata"]["managedFields"])
    assert "replcas" not in owned and "imagee" not in owned
    first = r.body
    r = call(kubesim.url, "PATCH", path, yaml.safe_dump(bad), content_type=APPLY,
             fieldManager="me", fieldValidation="Ignore")
    assert r.status == 200 and "Warning" not in r.headers
    # Re-applying the same (pruned) configuration changes nothing (the simulated controller
    # may have written the status meanwhile).
    assert r.body["spec"] == first["spec"] and r.body["metadata"]["generation"] == 1
    def mine(obj: dict[str, Any]) -> list[dict[str, Any]]:
        return [e for e in obj["metadata"]["managedFields"] if e["manager"] == "me"]

    assert mine(r.body) == mine(first)


def test_apply_with_a_status_to_the_main_resource(kubesim: KubeSim, namespace: str) -> None:
    body = deployment("ssa-status")
    body["status"] = {"replicas": 3}
    r = call(kubesim.url, "PATCH", deploy_path(namespace, "ssa-status"), json.dumps(body),
             content_type=APPLY, fieldManager="me", fieldValidation="Strict")
    assert r.status == 201 and "replicas" not in r.body.get("status", {})


# --------------------------------------------------------------------------- kubectl


def dump(obj: dict[str, Any]) -> str:
    return yaml.safe_dump(obj, sort_keys=False)


def test_kubectl_apply_validates_builtin_kinds(kubectl: Kubectl, namespace: str) -> None:
    bad = deployment("typo")
    bad["spec"]["replcas"] = 3
    created = kubectl.run("-n", namespace, "apply", "-f", "-", stdin=dump(bad), check=False)
    assert created.returncode == 1
    assert created.stderr.strip() == (
        'Error from server (BadRequest): error when creating "STDIN": Deployment in version '
        '"v1" cannot be handled as a Deployment: strict decoding error: unknown field '
        '"spec.replcas"')
    assert kubectl.run("-n", namespace, "get", "deployment", "typo",
                       check=False).returncode == 1
    # On an existing object the error comes from the strategic merge patch.
    kubectl.run("-n", namespace, "apply", "-f", "-", stdin=dump(deployment("typo")))
    patched = kubectl.run("-n", namespace, "apply", "-f", "-", stdin=dump(bad), check=False)
    assert patched.returncode == 1 and "error when applying patch" in patched.stderr
    assert patched.stderr.rstrip().endswith(
        'strict decoding error: unknown field "spec.replcas"')
    ssa = kubectl.run("-n", namespace, "apply", "--server-side", "-f", "-", stdin=dump(bad),
                      check=False)
    assert ssa.returncode == 1
    assert ".spec.replcas: field not declared in schema" in ssa.stderr
    # Without validation the field is dropped.
    loose = kubectl.run("-n", namespace, "apply", "--validate=false", "-f", "-",
                        stdin=dump({**bad, "metadata": {"name": "loose"}}))
    assert loose.returncode == 0 and loose.stdout.strip() == "deployment.apps/loose created"
    live = json.loads(kubectl.run("-n", namespace, "get", "deployment", "loose", "-o",
                                  "json").stdout)
    assert "replcas" not in live["spec"] and live["spec"]["replicas"] == 2
    warned = kubectl.run("-n", namespace, "apply", "--validate=warn", "-f", "-",
                         stdin=dump({**bad, "metadata": {"name": "warned"}}))
    assert warned.returncode == 0
    assert warned.stderr.strip() == 'Warning: unknown field "spec.replcas"'
    nested = deployment("nested")
    nested["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    out = kubectl.run("-n", namespace, "apply", "-f", "-", stdin=dump(nested), check=False)
    assert out.returncode == 1 and out.stderr.rstrip().endswith(
        'unknown field "spec.template.spec.containers[0].imagePullPolicyy"')
