"""Tests for kubesim.protobuf: the wire reader, the schema tables, and real kubectl's bodies.

The ground truth is kubectl itself. A tiny fake API server (discovery documents, two objects to
GET, and a recorder for POST bodies) stands in for a cluster; kubectl sends its typed create
requests there as `application/vnd.kubernetes.protobuf`, and each recorded body must decode to
what `kubectl ... --dry-run=client -o json` prints for the same command, modulo the nulls and
empty values that JSON carries and protobuf cannot. One served CronJob has a job template that
uses most PodSpec and JobSpec fields: `kubectl create job --from` copies it through kubectl's Go
types into protobuf, which checks those field numbers against kubectl too.
"""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kubesim.protobuf import (
    BOOL,
    I32,
    I64,
    KINDS,
    MAGIC,
    MESSAGES,
    MSG,
    STR,
    Field,
    ProtobufError,
    decode,
    decode_message,
    iter_fields,
    read_varint,
)

KUBECTL = Path(sys.executable).parent / "kubectl"
PROTOBUF = "application/vnd.kubernetes.protobuf"

# ------------------------------------------------------------------------------ encoding helpers


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative numbers go on the wire as 64-bit two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def vint(number: int, value: int) -> bytes:
    return tag(number, 0) + varint(value)


def ld(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return tag(number, 2) + varint(len(data)) + data


def entry(number: int, key: str, value: bytes | str) -> bytes:
    """One map entry: a message {key = 1; value = 2}."""
    return ld(number, ld(1, key) + ld(2, value))


def envelope(api_version: str, kind: str, raw: bytes, **extra: bytes) -> bytes:
    type_meta = ld(1, api_version) + ld(2, kind)
    return MAGIC + ld(1, type_meta) + ld(2, raw) + b"".join(extra.values())


# ------------------------------------------------------------------------------ wire reader


def test_read_varint_single_and_multi_byte() -> None:
    assert read_varint(b"\x00", 0) == (0, 1)
    assert read_varint(b"\x96\x01", 0) == (150, 2)
    assert read_varint(b"xx\xac\x02", 2) == (300, 4)
    assert read_varint(varint(2**64 - 1), 0) == (2**64 - 1, 10)


def test_read_varint_truncated_and_overlong() -> None:
    with pytest.raises(ProtobufError) as err:
        read_varint(b"\x96", 0)
    assert not err.value.unsupported
    with pytest.raises(ProtobufError, match="longer than 10 bytes"):
        read_varint(b"\xff" * 11 + b"\x01", 0)


def test_negative_varints_are_twos_complement() -> None:
    # int32 -1 is written as ten bytes (sign-extended to 64 bits), like every negative int.
    assert len(varint(-1)) == 10
    spec = decode_message(vint(1, -1) + vint(6, -7), "DeploymentSpec")
    assert spec == {"replicas": -1, "revisionHistoryLimit": -7}
    meta = decode_message(vint(7, -(2**40)) + vint(10, -30), "ObjectMeta")
    assert meta == {"generation": -(2**40), "deletionGracePeriodSeconds": -30}
    # An int32 field keeps only the low 32 bits, as Go does.
    assert decode_message(vint(1, 2**32 + 5), "DeploymentSpec") == {"replicas": 5}


def test_iter_fields_all_wire_types() -> None:
    buf = (
        vint(1, 150)
        + tag(2, 1) + struct.pack("<Q", 2**63)
        + ld(3, "hi")
        + tag(4, 5) + struct.pack("<I", 7)
    )
    assert list(iter_fields(buf)) == [(1, 0, 150), (2, 1, 2**63), (3, 2, b"hi"), (4, 5, 7)]


def test_packed_and_unpacked_repeated_numbers() -> None:
    packed = ld(4, varint(1000) + varint(2000) + varint(-1))
    unpacked = vint(4, 3000) + vint(4, 4000)
    ctx = decode_message(packed + unpacked + vint(2, 0), "PodSecurityContext")
    # runAsUser (2) is a pointer: an explicit 0 (root) must survive.
    assert ctx == {"runAsUser": 0, "supplementalGroups": [1000, 2000, -1, 3000, 4000]}
    rule = decode_message(ld(1, "In") + ld(2, varint(1) + varint(42)),
                          "ContainerRestartRuleOnExitCodes")
    assert rule == {"operator": "In", "values": [1, 42]}


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    group = tag(90, 3) + vint(1, 5) + ld(2, "nested") + tag(90, 4)
    noise = (
        vint(99, 1) + tag(98, 1) + b"\0" * 8 + ld(97, b"\xff\xfe") + tag(96, 5) + b"\0" * 4
        + group
    )
    body = noise + ld(1, "web") + noise + ld(3, "prod")
    assert decode_message(body, "ObjectMeta") == {"name": "web", "namespace": "prod"}


@pytest.mark.parametrize("buf", [
    vint(1, 1)[:-1] + b"\x80",  # varint cut short
    ld(1, "abcdef")[:-2],  # length-delimited value longer than the data
    tag(2, 1) + b"\0" * 7,  # fixed64 cut short
    tag(2, 5) + b"\0\0",  # fixed32 cut short
    tag(5, 3) + vint(1, 1),  # group never ended
    tag(5, 4),  # end of a group never started
    tag(5, 6) + b"\0",  # wire type 6 does not exist
    b"\x00\x01",  # field number 0
])
def test_malformed_bytes_raise(buf: bytes) -> None:
    with pytest.raises(ProtobufError) as err:
        decode_message(buf, "ObjectMeta")
    assert not err.value.unsupported


def test_wrong_wire_type_for_known_field_raises() -> None:
    with pytest.raises(ProtobufError, match="wrong wire type"):
        decode_message(vint(1, 5), "ObjectMeta")  # name is a string, not a varint
    with pytest.raises(ProtobufError, match="wrong wire type"):
        decode_message(ld(7, "x"), "ObjectMeta")  # generation is a varint


# ------------------------------------------------------------------------------ envelope


def test_wrong_magic_and_empty_bodies() -> None:
    for raw in (b"", b"{\"kind\": \"Namespace\"}", b"k8s\x01" + b"\x0a\x00", MAGIC):
        with pytest.raises(ProtobufError) as err:
            decode(raw)
        assert not err.value.unsupported


def test_truncated_envelope_is_malformed() -> None:
    raw = envelope("v1", "Namespace", ld(1, ld(1, "x")))
    with pytest.raises(ProtobufError) as err:
        decode(raw[:-3])
    assert not err.value.unsupported


def test_unknown_kind_is_unsupported() -> None:
    raw = envelope("scheduling.k8s.io/v1", "PriorityClass", ld(1, ld(1, "high")) + vint(2, 1000))
    with pytest.raises(ProtobufError) as err:
        decode(raw)
    assert err.value.unsupported
    assert "PriorityClass" in err.value.message


def test_content_encoding_is_unsupported() -> None:
    raw = envelope("v1", "Namespace", b"", enc=ld(3, "gzip"))
    with pytest.raises(ProtobufError) as err:
        decode(raw)
    assert err.value.unsupported


def test_missing_type_meta_uses_defaults_or_fails() -> None:
    raw = MAGIC + ld(2, ld(1, ld(1, "x")))
    with pytest.raises(ProtobufError, match="Kind"):
        decode(raw)
    assert decode(raw, default_api_version="v1", default_kind="Namespace") == {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"},
    }


def test_empty_object_has_only_type() -> None:
    assert decode(envelope("v1", "ConfigMap", b"")) == {"apiVersion": "v1", "kind": "ConfigMap"}


# ------------------------------------------------------------------------------ value mapping


def test_go_zero_values_of_non_pointer_fields_are_dropped() -> None:
    # What Go's marshaller writes for an ObjectMeta with only a name: every string, the
    # generation and an empty creationTimestamp.
    meta = (
        ld(1, "x") + ld(2, "") + ld(3, "") + ld(4, "") + ld(5, "") + ld(6, "") + vint(7, 0)
        + ld(8, b"")
    )
    assert decode_message(meta, "ObjectMeta") == {"name": "x"}
    port = ld(1, "") + vint(2, 0) + vint(3, 80) + ld(4, "") + ld(5, "")
    assert decode_message(port, "ContainerPort") == {"containerPort": 80}
    mount = ld(1, "data") + vint(2, 0) + ld(3, "/data")
    assert decode_message(mount, "VolumeMount") == {"name": "data", "mountPath": "/data"}


def test_pointer_fields_keep_zero_values() -> None:
    spec = vint(1, 0) + vint(6, 0) + vint(7, 0) + ld(10, "")
    assert decode_message(spec, "DeploymentSpec") == {
        "replicas": 0, "revisionHistoryLimit": 0, "podReplacementPolicy": "",
    }
    assert decode_message(vint(4, 0) + vint(5, 0), "ConfigMap") == {"immutable": False}


def test_values_json_always_writes_keep_their_zero() -> None:
    # Their Go JSON tags have no omitempty, so kubectl's JSON carries the zeros as well.
    status = vint(1, 0) + vint(3, 0) + vint(4, 0) + vint(5, 0) + vint(6, 0)
    assert decode_message(status, "PodDisruptionBudgetStatus") == {
        "disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0,
    }
    assert decode_message(vint(3, 0), "ContainerPort") == {"containerPort": 0}
    pattern = ld(1, "DisruptionTarget") + ld(2, "")
    assert decode_message(pattern, "PodFailurePolicyOnPodConditionsPattern") == {
        "type": "DisruptionTarget", "status": "",
    }


def test_non_pointer_structs_are_kept_when_empty() -> None:
    # Go's JSON encoder writes these too ("strategy": {}, "status": {}); pointers like emptyDir
    # mean something by merely being there.
    assert decode_message(ld(4, b""), "DeploymentSpec") == {"strategy": {}}
    volume = ld(1, "scratch") + ld(2, ld(2, b""))
    assert decode_message(volume, "Volume") == {"name": "scratch", "emptyDir": {}}


def test_inline_structs_merge_into_parent() -> None:
    selector = ld(1, ld(1, "cfg")) + ld(2, "key") + vint(3, 1)
    assert decode_message(selector, "ConfigMapKeySelector") == {
        "name": "cfg", "key": "key", "optional": True,
    }
    probe = ld(1, ld(2, ld(1, "/healthz") + ld(2, vint(1, 0) + vint(2, 8080)))) + vint(4, 5)
    assert decode_message(probe, "Probe") == {
        "httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5,
    }


def test_int_or_string() -> None:
    def port(payload: bytes) -> Any:
        return decode_message(ld(4, payload), "ServicePort").get("targetPort")

    assert port(vint(1, 0) + vint(2, 8080) + ld(3, "")) == 8080
    assert port(vint(1, 1) + vint(2, 0) + ld(3, "http")) == "http"
    assert port(vint(1, 0) + vint(2, 0) + ld(3, "")) is None  # unset, written as zero
    surge = decode_message(ld(2, vint(1, 0) + vint(2, 0) + ld(3, "")), "RollingUpdateDeployment")
    assert surge == {"maxSurge": 0}  # a pointer: explicit zero surge
    with pytest.raises(ProtobufError, match="IntOrString"):
        port(vint(1, 7))


def test_quantities() -> None:
    resources = entry(1, "cpu", ld(1, "500m")) + entry(2, "memory", ld(1, "128Mi"))
    assert decode_message(resources, "ResourceRequirements") == {
        "limits": {"cpu": "500m"}, "requests": {"memory": "128Mi"},
    }
    assert decode_message(ld(2, ld(1, "1Gi")), "EmptyDirVolumeSource") == {"sizeLimit": "1Gi"}
    # ResourceFieldSelector.divisor is a non-pointer Quantity: its zero means "not set".
    assert decode_message(ld(2, "limits.cpu") + ld(3, ld(1, "0")), "ResourceFieldSelector") == {
        "resource": "limits.cpu",
    }


def test_maps_and_bytes() -> None:
    data = entry(2, "a.txt", "hello") + entry(2, "empty", "") + entry(2, "a.txt", "again")
    binary = entry(3, "blob", b"\x00\xff\x10")
    assert decode_message(data + binary, "ConfigMap") == {
        "data": {"a.txt": "again", "empty": ""},  # a repeated key keeps its last value
        "binaryData": {"blob": base64.b64encode(b"\x00\xff\x10").decode()},
    }
    secret = entry(2, "password", b"s3cr\xe9t") + ld(3, "Opaque")
    assert decode_message(secret, "Secret") == {
        "data": {"password": base64.b64encode(b"s3cr\xe9t").decode()}, "type": "Opaque",
    }


def test_map_entries_with_missing_key_or_value() -> None:
    labels = ld(11, ld(1, "only-key")) + ld(11, ld(2, "only-value"))
    assert decode_message(labels, "ObjectMeta") == {"labels": {"only-key": "", "": "only-value"}}
    requests = ld(2, ld(1, "cpu"))  # a Quantity value left out is Go's zero Quantity
    assert decode_message(requests, "ResourceRequirements") == {"requests": {"cpu": "0"}}


def test_times() -> None:
    cond = ld(1, "Ready") + ld(3, vint(1, 1_700_000_000) + vint(2, 999_999_999))
    assert decode_message(cond, "JobCondition") == {
        "type": "Ready", "lastProbeTime": "2023-11-14T22:13:20Z",  # metav1.Time drops nanos
    }
    lease = ld(3, vint(1, 1_700_000_000) + vint(2, 123_456_789)) + ld(4, b"")
    assert decode_message(lease, "LeaseSpec") == {"acquireTime": "2023-11-14T22:13:20.123456Z"}
    assert decode_message(ld(8, vint(1, 0)), "ObjectMeta") == {
        "creationTimestamp": "1970-01-01T00:00:00Z",  # the epoch is not the zero time
    }
    year_one = -62135596800  # 0001-01-01T00:00:00Z, the earliest time Go's RFC 3339 writes
    assert decode_message(ld(8, vint(1, year_one)), "ObjectMeta") == {
        "creationTimestamp": "0001-01-01T00:00:00Z",
    }
    with pytest.raises(ProtobufError, match="out of range"):
        decode_message(ld(8, vint(1, year_one - 1)), "ObjectMeta")
    with pytest.raises(ProtobufError, match="nanos"):
        decode_message(ld(3, vint(1, 0) + vint(2, -1)), "LeaseSpec")


def test_managed_fields_json() -> None:
    fields_v1 = ld(1, b'{"f:metadata":{"f:labels":{}}}')
    mfe = ld(1, "kubectl") + ld(2, "Update") + ld(6, "FieldsV1") + ld(7, fields_v1)
    meta = decode_message(ld(17, mfe), "ObjectMeta")
    assert meta == {"managedFields": [{
        "manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {}}},
    }]}


def test_repeated_message_fields_merge() -> None:
    # Protobuf merges a non-repeated message that occurs twice.
    body = ld(1, ld(1, "a") + ld(3, "ns")) + ld(1, ld(1, "b"))
    assert decode_message(body, "ConfigMap") == {"metadata": {"name": "b", "namespace": "ns"}}


def test_invalid_utf8_is_replaced_like_go_json() -> None:
    assert decode_message(ld(1, b"ab\xffc"), "ObjectMeta") == {"name": "ab\ufffdc"}


# ------------------------------------------------------------------------------ schema integrity


def _message_refs() -> Iterator[tuple[str, Field]]:
    for name, schema in MESSAGES.items():
        for fld in schema.values():
            yield name, fld


def test_every_referenced_message_exists() -> None:
    for owner, fld in _message_refs():
        if fld.kind == MSG:
            assert fld.msg in MESSAGES, f"{owner}.{fld.name} -> {fld.msg}"
        else:
            assert not fld.msg, f"{owner}.{fld.name}"
        assert not (fld.inline and (fld.repeated or fld.kind != MSG)), f"{owner}.{fld.name}"
        assert not (fld.repeated and fld.ptr), f"{owner}.{fld.name}"
        assert not (fld.always and (fld.ptr or fld.repeated or fld.kind not in (I32, STR))), (
            f"{owner}.{fld.name}"
        )
    for message in KINDS.values():
        assert message in MESSAGES


def _json_names(message: str) -> list[str]:
    names = []
    for fld in MESSAGES[message].values():
        names.extend(_json_names(fld.msg) if fld.inline else [fld.name])
    return names


def test_json_names_are_unique_and_schema_is_acyclic() -> None:
    def walk(message: str, path: tuple[str, ...]) -> None:
        assert message not in path, " -> ".join((*path, message))
        for fld in MESSAGES[message].values():
            if fld.kind == MSG:
                walk(fld.msg, (*path, message))

    for message in MESSAGES:
        names = _json_names(message)
        assert len(names) == len(set(names)), message
        walk(message, ())


def test_repeated_number_fields_are_the_known_ones() -> None:
    repeated_numbers = {
        (owner, fld.name) for owner, fld in _message_refs()
        if fld.repeated and fld.kind in (I32, I64, BOOL)
    }
    assert repeated_numbers == {
        ("PodSecurityContext", "supplementalGroups"),
        ("ContainerRestartRuleOnExitCodes", "values"),
        ("PodFailurePolicyOnExitCodesRequirement", "values"),
    }


# ------------------------------------------------------------------------------ real kubectl


def _resource_list(group_version: str, *resources: tuple[str, str, bool]) -> dict[str, Any]:
    return {
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
        "resources": [
            {"name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
             "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
            for name, kind, namespaced in resources
        ],
    }


_GROUPS = {
    "apps": "v1", "batch": "v1", "rbac.authorization.k8s.io": "v1", "networking.k8s.io": "v1",
    "policy": "v1", "autoscaling": "v2", "scheduling.k8s.io": "v1",
}
_RESOURCES = {
    "/api/v1": _resource_list(
        "v1", ("namespaces", "Namespace", False), ("configmaps", "ConfigMap", True),
        ("secrets", "Secret", True), ("serviceaccounts", "ServiceAccount", True),
        ("services", "Service", True), ("pods", "Pod", True),
        ("resourcequotas", "ResourceQuota", True),
    ),
    "/apis/apps/v1": _resource_list(
        "apps/v1", ("deployments", "Deployment", True), ("statefulsets", "StatefulSet", True),
        ("replicasets", "ReplicaSet", True), ("daemonsets", "DaemonSet", True),
    ),
    "/apis/batch/v1": _resource_list(
        "batch/v1", ("jobs", "Job", True), ("cronjobs", "CronJob", True),
    ),
    "/apis/rbac.authorization.k8s.io/v1": _resource_list(
        "rbac.authorization.k8s.io/v1", ("roles", "Role", True),
        ("rolebindings", "RoleBinding", True), ("clusterroles", "ClusterRole", False),
        ("clusterrolebindings", "ClusterRoleBinding", False),
    ),
    "/apis/networking.k8s.io/v1": _resource_list(
        "networking.k8s.io/v1", ("ingresses", "Ingress", True),
    ),
    "/apis/policy/v1": _resource_list(
        "policy/v1", ("poddisruptionbudgets", "PodDisruptionBudget", True),
    ),
    "/apis/autoscaling/v2": _resource_list(
        "autoscaling/v2", ("horizontalpodautoscalers", "HorizontalPodAutoscaler", True),
    ),
    "/apis/scheduling.k8s.io/v1": _resource_list(
        "scheduling.k8s.io/v1", ("priorityclasses", "PriorityClass", False),
    ),
}
# kubectl autoscale looks for the scale subresource in discovery before it builds the HPA.
_RESOURCES["/apis/apps/v1"]["resources"].append({
    "name": "deployments/scale", "singularName": "", "namespaced": True, "group": "autoscaling",
    "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"],
})
_DISCOVERY: dict[str, Any] = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": group, "versions": [{"groupVersion": f"{group}/{v}", "version": v}],
         "preferredVersion": {"groupVersion": f"{group}/{v}", "version": v}}
        for group, v in _GROUPS.items()
    ]},
    **_RESOURCES,
}
# A pod template using most PodSpec fields. `kubectl create job --from=cronjob/rich` reads it
# into Go types and sends it back as protobuf, so the decoding of nearly every field in the
# PodSpec and JobSpec tables is checked against kubectl's own JSON.
_PROBE = {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP",
                      "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
          "initialDelaySeconds": 3, "timeoutSeconds": 2, "periodSeconds": 10,
          "successThreshold": 1, "failureThreshold": 4, "terminationGracePeriodSeconds": 0}
_RICH_POD_SPEC: dict[str, Any] = {
    "volumes": [
        {"name": "scratch", "emptyDir": {}},
        {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        {"name": "cfg", "configMap": {"name": "app", "defaultMode": 420, "optional": False,
                                      "items": [{"key": "a", "path": "a.txt", "mode": 256}]}},
        {"name": "sec", "secret": {"secretName": "creds", "defaultMode": 0}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "pvc", "readOnly": True}},
        {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
        {"name": "nfs", "nfs": {"server": "nfs.example", "path": "/export"}},
        {"name": "dapi", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}},
            {"path": "cpu", "resourceFieldRef": {"containerName": "main",
                                                 "resource": "limits.cpu", "divisor": "1m"}}]}},
        {"name": "proj", "projected": {"defaultMode": 288, "sources": [
            {"serviceAccountToken": {"audience": "vault", "expirationSeconds": 3600,
                                     "path": "token"}},
            {"configMap": {"name": "app", "items": [{"key": "b", "path": "b"}]}},
            {"secret": {"name": "creds", "optional": True}},
            {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {
                "fieldPath": "metadata.namespace"}}]}}]}},
        {"name": "csi", "csi": {"driver": "csi.example", "readOnly": True,
                                "volumeAttributes": {"k": "v"},
                                "nodePublishSecretRef": {"name": "csi-secret"}}},
        {"name": "eph", "ephemeral": {"volumeClaimTemplate": {
            "metadata": {"labels": {"tier": "cache"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                     "resources": {"requests": {"storage": "1Gi"}}}}}},
        {"name": "img", "image": {"reference": "registry.example/data:1", "pullPolicy": "Always"}},
        {"name": "git", "gitRepo": {"repository": "https://example/repo", "revision": "main"}},
    ],
    "initContainers": [{
        "name": "init", "image": "busybox", "command": ["sh", "-c"], "args": ["true"],
        "restartPolicy": "Always",
        "startupProbe": {"exec": {"command": ["cat", "/ready"]}, "periodSeconds": 1},
    }],
    "containers": [{
        "name": "main", "image": "nginx:1.27", "workingDir": "/srv",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                  {"containerPort": 53, "hostPort": 5353, "protocol": "UDP", "hostIP": "0.0.0.0"}],
        "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "app", "optional": True}},
                    {"secretRef": {"name": "creds"}}],
        "env": [
            {"name": "PLAIN", "value": "x"}, {"name": "EMPTY", "value": ""},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                               "divisor": "1Mi"}}},
            {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "app", "key": "a",
                                                             "optional": False}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "pw"}}},
        ],
        "resources": {"limits": {"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": "1"},
                      "requests": {"cpu": "250m", "memory": "128Mi"}},
        "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
        "volumeMounts": [
            {"name": "scratch", "mountPath": "/tmp"},
            {"name": "cfg", "mountPath": "/etc/app", "readOnly": True, "subPath": "a.txt"},
            {"name": "data", "mountPath": "/data", "mountPropagation": "HostToContainer",
             "subPathExpr": "$(POD)"},
        ],
        "livenessProbe": _PROBE,
        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 5},
        "lifecycle": {"postStart": {"exec": {"command": ["echo", "hi"]}},
                      "preStop": {"sleep": {"seconds": 5}}},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError", "imagePullPolicy": "IfNotPresent",
        "securityContext": {
            "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}, "privileged": False,
            "runAsUser": 0, "runAsGroup": 3000, "runAsNonRoot": False,
            "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
            "seccompProfile": {"type": "RuntimeDefault"},
            "seLinuxOptions": {"level": "s0:c123,c456"},
        },
        "stdin": True, "tty": True,
    }, {
        "name": "grpc", "image": "grpc:1",
        "readinessProbe": {"grpc": {"port": 9090, "service": ""}},
        "livenessProbe": {"exec": {"command": ["true"]}},
    }],
    "restartPolicy": "OnFailure", "terminationGracePeriodSeconds": 0,
    "activeDeadlineSeconds": 600, "dnsPolicy": "None",
    "nodeSelector": {"disktype": "ssd"}, "serviceAccountName": "runner",
    "automountServiceAccountToken": False, "hostNetwork": True, "hostPID": True,
    "shareProcessNamespace": True,
    "securityContext": {"runAsUser": 1000, "runAsNonRoot": True, "fsGroup": 2000,
                        "supplementalGroups": [4000, 5000], "fsGroupChangePolicy": "OnRootMismatch",
                        "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}],
                        "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"},
                        "appArmorProfile": {"type": "RuntimeDefault"}},
    "imagePullSecrets": [{"name": "regcred"}], "hostname": "worker", "subdomain": "jobs",
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "preference": {
                "matchFields": [{"key": "metadata.name", "operator": "NotIn",
                                 "values": ["bad"]}]}}]},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {
                "labelSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
                "topologyKey": "kubernetes.io/hostname", "namespaces": ["ns"],
                "matchLabelKeys": ["pod-template-hash"]}}]},
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone",
             "namespaceSelector": {}}]},
    },
    "schedulerName": "custom",
    "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"},
                    {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                     "effect": "NoExecute", "tolerationSeconds": 0}],
    "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["a.local", "b.local"]}],
    "priorityClassName": "high", "priority": 0,
    "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["svc.local"],
                  "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]},
    "readinessGates": [{"conditionType": "example.com/ready"}],
    "runtimeClassName": "gvisor", "enableServiceLinks": False,
    "preemptionPolicy": "Never", "overhead": {"cpu": "100m"},
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                                   "whenUnsatisfiable": "DoNotSchedule",
                                   "labelSelector": {"matchLabels": {"app": "x"}},
                                   "minDomains": 2, "nodeAffinityPolicy": "Honor",
                                   "matchLabelKeys": ["rev"]}],
    "setHostnameAsFQDN": False, "os": {"name": "linux"}, "hostUsers": False,
    "schedulingGates": [{"name": "wait"}],
}
_RICH_JOB_SPEC: dict[str, Any] = {
    "parallelism": 0, "completions": 3, "activeDeadlineSeconds": 3600, "backoffLimit": 0,
    "backoffLimitPerIndex": 1, "maxFailedIndexes": 2, "ttlSecondsAfterFinished": 0,
    "completionMode": "Indexed", "suspend": True, "podReplacementPolicy": "Failed",
    "managedBy": "example.com/ctl",
    "podFailurePolicy": {"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In",
                                              "values": [42, 43]}},
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
    "successPolicy": {"rules": [{"succeededIndexes": "0-1", "succeededCount": 1}]},
    "template": {"metadata": {"labels": {"job": "rich"}, "annotations": {"a": "b"}},
                 "spec": _RICH_POD_SPEC},
}

# Objects that `autoscale` and `create job --from` read before they create anything.
_OBJECTS: dict[str, Any] = {
    "/apis/apps/v1/namespaces/ns/deployments/d": {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "ns", "uid": "uid-d", "labels": {"app": "d"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}}, "template": {
            "metadata": {"labels": {"app": "d"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
    },
    "/apis/batch/v1/namespaces/ns/cronjobs/cj": {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "cj", "namespace": "ns", "uid": "uid-cj"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {
            "metadata": {"labels": {"team": "a"}, "annotations": {"note": "n"}},
            "spec": {"backoffLimit": 0, "template": {"spec": {
                "restartPolicy": "OnFailure",
                "containers": [{"name": "c", "image": "busybox", "args": ["date"],
                                "resources": {"limits": {"cpu": "100m"}}}]}}}}},
    },
    "/apis/batch/v1/namespaces/ns/cronjobs/rich": {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "rich", "namespace": "ns", "uid": "uid-rich"},
        "spec": {"schedule": "@hourly", "jobTemplate": {
            "metadata": {"labels": {"team": "b"}}, "spec": _RICH_JOB_SPEC}},
    },
}


@dataclass
class Recorded:
    path: str
    content_type: str
    body: bytes


@dataclass
class FakeAPIServer:
    url: str
    posts: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _kind_for(path: str) -> tuple[str, str]:
    # /api/v1/namespaces/ns/configmaps -> ("v1", "ConfigMap"), from the discovery documents.
    parts = path.split("?")[0].strip("/").split("/")
    prefix = "/" + "/".join(parts[:2] if parts[0] == "api" else parts[:3])
    plural = parts[-1]
    doc = _RESOURCES.get(prefix, {"groupVersion": "v1", "resources": []})
    for res in doc["resources"]:
        if res["name"] == plural:
            return doc["groupVersion"], res["kind"]
    return doc["groupVersion"], "Status"


@pytest.fixture(scope="module")
def fake_api() -> Iterator[FakeAPIServer]:
    state = FakeAPIServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, code: int, doc: Any) -> None:
            data = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            doc = _DISCOVERY.get(path) or _OBJECTS.get(path)
            if doc is None:
                self._reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "reason": "NotFound", "code": 404, "message": "not found"})
            else:
                self._reply(200, doc)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                state.posts.append(Recorded(self.path, self.headers.get("Content-Type", ""),
                                            body))
            api_version, kind = _kind_for(self.path)
            self._reply(201, {"apiVersion": api_version, "kind": kind,
                              "metadata": {"name": "created", "uid": "uid-new"}})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class KubectlRunner:
    kubeconfig: Path
    cache_dir: Path
    workdir: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(KUBECTL), "--kubeconfig", str(self.kubeconfig), "--cache-dir",
               str(self.cache_dir), *args]
        return subprocess.run(cmd, text=True, capture_output=True, timeout=60,
                              cwd=self.workdir, check=False)


@pytest.fixture(scope="module")
def kubectl_fake(fake_api: FakeAPIServer,
                 tmp_path_factory: pytest.TempPathFactory) -> KubectlRunner:
    if not KUBECTL.exists():
        pytest.skip("kubectl is not installed next to the interpreter")
    tmp = tmp_path_factory.mktemp("kubectl-protobuf")
    kubeconfig = tmp / "config"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": fake_api.url}}],
        "users": [{"name": "fake", "user": {}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
    }))
    # A non-UTF-8 file, which `create configmap --from-file` must put in binaryData.
    (tmp / "blob.bin").write_bytes(bytes(range(256)))
    (tmp / "app.conf").write_text("listen 80;\n")
    return KubectlRunner(kubeconfig, tmp / "cache", tmp)


def _dry_run_args(args: tuple[str, ...]) -> list[str]:
    # The flags must go before `--`, after which everything is the container's command.
    extra = ["--dry-run=client", "-o", "json"]
    if "--" in args:
        at = args.index("--")
        return [*args[:at], *extra, *args[at:]]
    return [*args, *extra]


def normalise(value: Any) -> Any:
    """Drop nulls and empty maps/lists (`creationTimestamp: null`, `status: {}`, ...)."""
    if isinstance(value, dict):
        items = {key: normalise(item) for key, item in value.items()}
        return {key: item for key, item in items.items() if item not in (None, {}, [])}
    if isinstance(value, list):
        return [normalise(item) for item in value]
    return value


def _capture(kubectl: KubectlRunner, fake_api: FakeAPIServer, args: tuple[str, ...]) -> Recorded:
    with fake_api.lock:
        before = len(fake_api.posts)
    result = kubectl.run(*args)
    with fake_api.lock:
        posts = fake_api.posts[before:]
    assert len(posts) == 1, f"kubectl {' '.join(args)} sent {len(posts)} bodies:\n{result.stderr}"
    return posts[0]


# Each case: (id, kubectl arguments). Every one of them is a typed kubectl command that sends
# protobuf; the expected decoding is kubectl's own --dry-run=client -o json.
KUBECTL_CASES: list[tuple[str, tuple[str, ...]]] = [
    ("namespace", ("create", "namespace", "team-a")),
    ("configmap", ("create", "configmap", "c", "-n", "ns", "--from-literal=a=b",
                   "--from-literal=empty=", "--from-file=app.conf", "--from-file=blob=blob.bin")),
    ("secret-generic", ("create", "secret", "generic", "s", "-n", "ns", "--from-literal=a=b",
                        "--from-literal=password=s3cr3t", "--type=Opaque")),
    ("secret-docker-registry", ("create", "secret", "docker-registry", "dr", "-n", "ns",
                                "--docker-server=r.example", "--docker-username=u",
                                "--docker-password=p", "--docker-email=u@example.com")),
    ("serviceaccount", ("create", "serviceaccount", "sa", "-n", "ns")),
    ("deployment", ("create", "deployment", "d", "--image=nginx:1.27", "--replicas=2",
                    "--port=80", "-n", "ns")),
    ("deployment-zero-replicas", ("create", "deployment", "z", "--image=nginx",
                                  "--replicas=0", "-n", "ns")),
    ("deployment-command", ("create", "deployment", "cmd", "--image=busybox", "-n", "ns", "--",
                            "sh", "-c", "sleep 3600")),
    ("service-clusterip", ("create", "service", "clusterip", "s", "--tcp=80:8080",
                           "--tcp=5678:http", "-n", "ns")),
    ("service-headless", ("create", "service", "clusterip", "h", "--clusterip=None",
                          "-n", "ns")),
    ("service-nodeport", ("create", "service", "nodeport", "np", "--tcp=80:8080",
                          "--node-port=30080", "-n", "ns")),
    ("service-loadbalancer", ("create", "service", "loadbalancer", "lb", "--tcp=443:8443",
                              "-n", "ns")),
    ("service-externalname", ("create", "service", "externalname", "en",
                              "--external-name=example.com", "-n", "ns")),
    ("job", ("create", "job", "j", "--image=busybox", "-n", "ns", "--", "echo", "hi")),
    ("job-from-cronjob", ("create", "job", "j2", "--from=cronjob/cj", "-n", "ns")),
    ("job-from-rich-cronjob", ("create", "job", "j3", "--from=cronjob/rich", "-n", "ns")),
    ("cronjob", ("create", "cronjob", "cj", "--image=busybox", "--schedule=*/5 * * * *",
                 "--restart=Never", "-n", "ns", "--", "date")),
    ("role", ("create", "role", "r", "--verb=get,list", "--resource=pods,deployments.apps",
              "--resource-name=x", "-n", "ns")),
    ("rolebinding", ("create", "rolebinding", "rb", "--role=r", "--user=alice",
                     "--serviceaccount=ns:sa", "--group=devs", "-n", "ns")),
    ("clusterrole", ("create", "clusterrole", "cr", "--verb=get",
                     "--non-resource-url=/logs/*")),
    ("clusterrole-aggregation", ("create", "clusterrole", "agg",
                                 "--aggregation-rule=rbac.example.com/aggregate=true")),
    ("clusterrolebinding", ("create", "clusterrolebinding", "crb", "--clusterrole=cr",
                            "--user=bob")),
    ("ingress", ("create", "ingress", "ing", "-n", "ns", "--class=nginx",
                 "--rule=foo.com/bar*=svc1:8080,tls=my-cert", "--rule=/exact=svc2:http",
                 "--default-backend=defsvc:80", "--annotation=team=a")),
    ("pdb-min-available", ("create", "pdb", "p", "-n", "ns", "--selector=app=x",
                           "--min-available=1")),
    ("pdb-max-unavailable", ("create", "pdb", "p2", "-n", "ns", "--selector=app=x",
                             "--max-unavailable=50%")),
    ("quota", ("create", "quota", "q", "-n", "ns", "--hard=pods=2,requests.cpu=500m",
               "--scopes=NotTerminating")),
    ("autoscale", ("autoscale", "deployment", "d", "-n", "ns", "--min=2", "--max=5",
                   "--cpu=80%")),
]


@pytest.mark.parametrize(("case", "args"), KUBECTL_CASES, ids=[c for c, _ in KUBECTL_CASES])
def test_kubectl_body_matches_its_json(kubectl_fake: KubectlRunner, fake_api: FakeAPIServer,
                                       case: str, args: tuple[str, ...]) -> None:
    recorded = _capture(kubectl_fake, fake_api, args)
    assert recorded.content_type == PROTOBUF, case
    assert recorded.body.startswith(MAGIC)
    decoded = decode(recorded.body)

    dry = kubectl_fake.run(*_dry_run_args(args))
    assert dry.returncode == 0, dry.stderr
    assert normalise(decoded) == normalise(json.loads(dry.stdout))


def test_kubectl_deployment_exact(kubectl_fake: KubectlRunner, fake_api: FakeAPIServer) -> None:
    recorded = _capture(kubectl_fake, fake_api, (
        "create", "deployment", "web", "--image=nginx:1.27", "--replicas=2", "--port=80",
        "-n", "ns"))
    assert "/apis/apps/v1/namespaces/ns/deployments" in recorded.path
    assert decode(recorded.body) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
                    "resources": {},
                }]},
            },
            "strategy": {},
        },
        "status": {},
    }


def test_kubectl_namespace_exact(kubectl_fake: KubectlRunner, fake_api: FakeAPIServer) -> None:
    recorded = _capture(kubectl_fake, fake_api, ("create", "namespace", "exact"))
    # No empty generateName/resourceVersion/generation/creationTimestamp leak through.
    assert decode(recorded.body) == {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "exact"},
        "spec": {}, "status": {},
    }


def test_kubectl_job_from_cronjob_keeps_owner(kubectl_fake: KubectlRunner,
                                              fake_api: FakeAPIServer) -> None:
    recorded = _capture(kubectl_fake, fake_api, ("create", "job", "manual", "--from=cronjob/cj",
                                                 "-n", "ns"))
    job = decode(recorded.body)
    assert job["metadata"]["ownerReferences"] == [{
        "apiVersion": "batch/v1", "kind": "CronJob", "name": "cj", "uid": "uid-cj",
        "controller": True,
    }]
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["spec"]["backoffLimit"] == 0  # a pointer: zero retries is not "unset"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {"limits": {"cpu": "100m"}}


def test_kubectl_unsupported_kind_is_flagged(kubectl_fake: KubectlRunner,
                                             fake_api: FakeAPIServer) -> None:
    recorded = _capture(kubectl_fake, fake_api, ("create", "priorityclass", "high",
                                                 "--value=1000"))
    assert recorded.content_type == PROTOBUF
    with pytest.raises(ProtobufError) as err:
        decode(recorded.body)
    assert err.value.unsupported
