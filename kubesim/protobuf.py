"""Decode Kubernetes protobuf request bodies into the dicts a JSON body would have parsed to.

kubectl (v1.3x) sends typed requests (`kubectl create namespace|configmap|secret|deployment|...`,
`kubectl autoscale`, `kubectl create job --from`) as `application/vnd.kubernetes.protobuf` and
never falls back to JSON, so `kubesim.server` calls `decode()` from `_read_body` for that content
type and then treats the result exactly like a parsed JSON body. Responses stay JSON, which every
client accepts.

The wire format (k8s.io/apimachinery/pkg/runtime/serializer/protobuf): the 4-byte magic
`k8s\\x00`, then a proto2 `runtime.Unknown` {typeMeta(1) {apiVersion(1), kind(2)}, raw(2),
contentEncoding(3), contentType(4)} whose `raw` is the typed object's own protobuf. The object
messages are the `generated.proto` files of k8s.io/api and k8s.io/apimachinery; `MESSAGES` below
maps their field numbers to JSON names and value kinds. Field numbers come from those files; the
order of each table is the Go struct order, which is also the order kubectl's JSON uses.

What "absent" means: Go's generated marshaller writes every non-pointer field, even when it is
"" / 0 / false, while pointer fields are written only when set. JSON clients send those non-pointer
zeros as omitted (`omitempty`), so a non-pointer scalar that decodes to its zero value is dropped
and only pointer fields (`ptr=True`) and the few values whose JSON tag lacks `omitempty`
(`always=True`, e.g. `containerPort`, a PDB's `disruptionsAllowed`) keep explicit zeros. Non-pointer
structs are kept even when empty, as Go's JSON encoder also always writes them (`strategy: {}`,
`status: {}`).

Fields this table does not know are skipped, as the API server's own decoder skips them; a kind it
does not know raises `ProtobufError` with `unsupported=True` (the server answers 415), and bytes
that are not valid protobuf raise it with `unsupported=False` (400).
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

__all__ = [
    "CONTENT_TYPE",
    "KINDS",
    "MAGIC",
    "MESSAGES",
    "Field",
    "ProtobufError",
    "decode",
    "decode_message",
    "iter_fields",
    "read_varint",
]

CONTENT_TYPE: Final = "application/vnd.kubernetes.protobuf"
MAGIC: Final = b"k8s\x00"

# Wire types (https://protobuf.dev/programming-guides/encoding/).
VARINT: Final = 0
FIXED64: Final = 1
LEN: Final = 2
START_GROUP: Final = 3
END_GROUP: Final = 4
FIXED32: Final = 5

_U64: Final = 1 << 64
_U32: Final = 1 << 32


class ProtobufError(ValueError):
    """A protobuf body kubesim cannot turn into an object.

    `unsupported` is True when the bytes are fine but kubesim does not model the kind (or an
    encoding of it): the server answers 415 so the client knows to try JSON. Otherwise the body
    is malformed and the server answers 400.
    """

    def __init__(self, message: str, *, unsupported: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.unsupported = unsupported


# ------------------------------------------------------------------------------ wire reader


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Read an unsigned base-128 varint at `pos`; return (value, position after it)."""
    result = 0
    # At most 10 bytes carry 64 bits; Go rejects longer varints as an integer overflow.
    for shift in range(0, 70, 7):
        if pos >= len(buf):
            raise ProtobufError("unexpected end of data inside a varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & (_U64 - 1), pos
    raise ProtobufError("varint longer than 10 bytes")


def _skip_group(buf: bytes, pos: int, number: int) -> int:
    # Groups are a deprecated proto2 feature no Kubernetes type uses, but a well-formed unknown
    # group must still be skipped like any other unknown field.
    while True:
        if pos >= len(buf):
            raise ProtobufError(f"unterminated group for field {number}")
        key, pos = read_varint(buf, pos)
        field_number, wire_type = key >> 3, key & 7
        if wire_type == END_GROUP:
            if field_number != number:
                raise ProtobufError(f"mismatched end of group {field_number} in group {number}")
            return pos
        pos = _skip_value(buf, pos, field_number, wire_type)


def _skip_value(buf: bytes, pos: int, number: int, wire_type: int) -> int:
    if wire_type == START_GROUP:
        return _skip_group(buf, pos, number)
    _, pos = _read_value(buf, pos, number, wire_type)
    return pos


def _read_value(buf: bytes, pos: int, number: int, wire_type: int) -> tuple[int | bytes, int]:
    if wire_type == VARINT:
        return read_varint(buf, pos)
    if wire_type == FIXED64:
        if pos + 8 > len(buf):
            raise ProtobufError(f"unexpected end of data in 64-bit field {number}")
        return int(struct.unpack_from("<Q", buf, pos)[0]), pos + 8
    if wire_type == LEN:
        length, pos = read_varint(buf, pos)
        end = pos + length
        if end > len(buf):
            raise ProtobufError(
                f"field {number} claims {length} bytes but only {len(buf) - pos} remain"
            )
        return bytes(buf[pos:end]), end
    if wire_type == FIXED32:
        if pos + 4 > len(buf):
            raise ProtobufError(f"unexpected end of data in 32-bit field {number}")
        return int(struct.unpack_from("<I", buf, pos)[0]), pos + 4
    raise ProtobufError(f"illegal wire type {wire_type} for field {number}")


def iter_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) for each field of one message, in wire order.

    Varint and fixed-width values come back as unsigned ints (callers reinterpret sign), length-
    delimited ones as bytes. Groups are skipped whole: nothing Kubernetes sends contains one.
    """
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("illegal field number 0")
        if wire_type == START_GROUP:
            pos = _skip_group(buf, pos, number)
            continue
        if wire_type == END_GROUP:
            raise ProtobufError(f"unexpected end of group {number}")
        value, pos = _read_value(buf, pos, number, wire_type)
        yield number, wire_type, value


def _signed64(value: int) -> int:
    return value - _U64 if value >= 1 << 63 else value


def _signed32(value: int) -> int:
    # Go truncates a varint decoded into an int32 field to its low 32 bits.
    value &= _U32 - 1
    return value - _U32 if value >= 1 << 31 else value


# ------------------------------------------------------------------------------ schema

# Value kinds of a field.
STR: Final = "string"
BYTES: Final = "bytes"  # base64 in JSON, like Go's []byte
I32: Final = "int32"
I64: Final = "int64"
BOOL: Final = "bool"
MSG: Final = "message"
MAP_STR: Final = "map<string,string>"
MAP_BYTES: Final = "map<string,bytes>"
MAP_QTY: Final = "map<string,Quantity>"
INTSTR: Final = "IntOrString"  # intstr.IntOrString {type(1), intVal(2), strVal(3)}
QTY: Final = "Quantity"  # resource.Quantity {string(1)}
TIME: Final = "Time"  # metav1.Time {seconds(1), nanos(2)}, second precision
MICROTIME: Final = "MicroTime"  # metav1.MicroTime, microsecond precision
RAWJSON: Final = "RawJSON"  # metav1.FieldsV1 / runtime.RawExtension {raw(1)} holding JSON

_SCALARS: Final = frozenset({STR, BYTES, I32, I64, BOOL})
_NUMERIC: Final = frozenset({I32, I64, BOOL})


@dataclass(frozen=True)
class Field:
    """How one protobuf field maps onto JSON."""

    name: str
    kind: str
    # For MSG: the name of the nested message in MESSAGES.
    msg: str = ""
    repeated: bool = False
    # A Go pointer: presence matters, so zero values are kept.
    ptr: bool = False
    # A non-pointer value whose JSON tag has no omitempty: JSON writes its zero, so keep it too.
    always: bool = False
    # An embedded struct (`json:",inline"`): its fields are merged into the parent object.
    inline: bool = False


def _s(name: str, *, ptr: bool = False, always: bool = False) -> Field:
    return Field(name, STR, ptr=ptr, always=always)


def _ss(name: str) -> Field:
    return Field(name, STR, repeated=True)


def _i32(name: str, *, ptr: bool = False, repeated: bool = False, always: bool = False) -> Field:
    return Field(name, I32, ptr=ptr, repeated=repeated, always=always)


def _i64(name: str, *, ptr: bool = False, repeated: bool = False) -> Field:
    return Field(name, I64, ptr=ptr, repeated=repeated)


def _b(name: str, *, ptr: bool = False) -> Field:
    return Field(name, BOOL, ptr=ptr)


def _m(name: str, msg: str, *, ptr: bool = False, inline: bool = False) -> Field:
    return Field(name, MSG, msg=msg, ptr=ptr, inline=inline)


def _ms(name: str, msg: str) -> Field:
    return Field(name, MSG, msg=msg, repeated=True)


def _smap(name: str) -> Field:
    return Field(name, MAP_STR)


def _bmap(name: str) -> Field:
    return Field(name, MAP_BYTES)


def _qmap(name: str) -> Field:
    return Field(name, MAP_QTY)


def _ios(name: str, *, ptr: bool = False) -> Field:
    return Field(name, INTSTR, ptr=ptr)


def _q(name: str, *, ptr: bool = False) -> Field:
    return Field(name, QTY, ptr=ptr)


def _t(name: str) -> Field:
    return Field(name, TIME)


def _mt(name: str) -> Field:
    return Field(name, MICROTIME)


def _meta() -> Field:
    return _m("metadata", "ObjectMeta")


Message = dict[int, Field]

# A condition shape shared by several workload status types (type, status, lastTransitionTime,
# reason, message at 1..5).
_WORKLOAD_CONDITION: Message = {
    1: _s("type"), 2: _s("status"), 3: _t("lastTransitionTime"), 4: _s("reason"),
    5: _s("message"),
}
_LOCAL_REF_INLINE: Final = _m("localObjectReference", "LocalObjectReference", inline=True)

MESSAGES: dict[str, Message] = {
    # ---------------------------------------------- k8s.io/apimachinery/pkg/apis/meta/v1
    "ObjectMeta": {
        1: _s("name"), 2: _s("generateName"), 3: _s("namespace"), 4: _s("selfLink"),
        5: _s("uid"), 6: _s("resourceVersion"), 7: _i64("generation"),
        8: _t("creationTimestamp"), 9: _t("deletionTimestamp"),
        10: _i64("deletionGracePeriodSeconds", ptr=True), 11: _smap("labels"),
        12: _smap("annotations"), 13: _ms("ownerReferences", "OwnerReference"),
        14: _ss("finalizers"), 17: _ms("managedFields", "ManagedFieldsEntry"),
    },
    "OwnerReference": {
        5: _s("apiVersion"), 1: _s("kind"), 3: _s("name"), 4: _s("uid"),
        6: _b("controller", ptr=True), 7: _b("blockOwnerDeletion", ptr=True),
    },
    "ManagedFieldsEntry": {
        1: _s("manager"), 2: _s("operation"), 3: _s("apiVersion"), 4: _t("time"),
        6: _s("fieldsType"), 7: Field("fieldsV1", RAWJSON), 8: _s("subresource"),
    },
    "LabelSelector": {
        1: _smap("matchLabels"), 2: _ms("matchExpressions", "LabelSelectorRequirement"),
    },
    "LabelSelectorRequirement": {1: _s("key"), 2: _s("operator"), 3: _ss("values")},
    "Condition": {
        1: _s("type"), 2: _s("status"), 3: _i64("observedGeneration"),
        4: _t("lastTransitionTime"), 5: _s("reason"), 6: _s("message"),
    },
    "DeleteOptions": {
        1: _i64("gracePeriodSeconds", ptr=True), 2: _m("preconditions", "Preconditions", ptr=True),
        3: _b("orphanDependents", ptr=True), 4: _s("propagationPolicy", ptr=True),
        5: _ss("dryRun"),
    },
    "Preconditions": {1: _s("uid", ptr=True), 2: _s("resourceVersion", ptr=True)},
    # ---------------------------------------------- k8s.io/api/core/v1: objects
    "Namespace": {1: _meta(), 2: _m("spec", "NamespaceSpec"), 3: _m("status", "NamespaceStatus")},
    "NamespaceSpec": {1: _ss("finalizers")},
    "NamespaceStatus": {1: _s("phase"), 2: _ms("conditions", "NamespaceCondition")},
    "NamespaceCondition": {
        1: _s("type"), 2: _s("status"), 4: _t("lastTransitionTime"), 5: _s("reason"),
        6: _s("message"),
    },
    "ConfigMap": {
        1: _meta(), 4: _b("immutable", ptr=True), 2: _smap("data"), 3: _bmap("binaryData"),
    },
    "Secret": {
        1: _meta(), 5: _b("immutable", ptr=True), 2: _bmap("data"), 4: _smap("stringData"),
        3: _s("type"),
    },
    "ServiceAccount": {
        1: _meta(), 2: _ms("secrets", "ObjectReference"),
        3: _ms("imagePullSecrets", "LocalObjectReference"),
        4: _b("automountServiceAccountToken", ptr=True),
    },
    "ObjectReference": {
        1: _s("kind"), 2: _s("namespace"), 3: _s("name"), 4: _s("uid"), 5: _s("apiVersion"),
        6: _s("resourceVersion"), 7: _s("fieldPath"),
    },
    "LocalObjectReference": {1: _s("name")},
    "TypedLocalObjectReference": {1: _s("apiGroup", ptr=True), 2: _s("kind"), 3: _s("name")},
    "TypedObjectReference": {
        1: _s("apiGroup", ptr=True), 2: _s("kind"), 3: _s("name"), 4: _s("namespace", ptr=True),
    },
    "Service": {1: _meta(), 2: _m("spec", "ServiceSpec"), 3: _m("status", "ServiceStatus")},
    "ServiceSpec": {
        1: _ms("ports", "ServicePort"), 2: _smap("selector"), 3: _s("clusterIP"),
        18: _ss("clusterIPs"), 4: _s("type"), 5: _ss("externalIPs"), 7: _s("sessionAffinity"),
        8: _s("loadBalancerIP"), 9: _ss("loadBalancerSourceRanges"), 10: _s("externalName"),
        11: _s("externalTrafficPolicy"), 12: _i32("healthCheckNodePort"),
        13: _b("publishNotReadyAddresses"),
        14: _m("sessionAffinityConfig", "SessionAffinityConfig", ptr=True),
        19: _ss("ipFamilies"), 17: _s("ipFamilyPolicy", ptr=True),
        20: _b("allocateLoadBalancerNodePorts", ptr=True), 21: _s("loadBalancerClass", ptr=True),
        22: _s("internalTrafficPolicy", ptr=True), 23: _s("trafficDistribution", ptr=True),
    },
    "ServicePort": {
        1: _s("name"), 2: _s("protocol"), 6: _s("appProtocol", ptr=True),
        3: _i32("port", always=True), 4: _ios("targetPort"), 5: _i32("nodePort"),
    },
    "SessionAffinityConfig": {1: _m("clientIP", "ClientIPConfig", ptr=True)},
    "ClientIPConfig": {1: _i32("timeoutSeconds", ptr=True)},
    "ServiceStatus": {
        1: _m("loadBalancer", "LoadBalancerStatus"), 2: _ms("conditions", "Condition"),
    },
    "LoadBalancerStatus": {1: _ms("ingress", "LoadBalancerIngress")},
    "LoadBalancerIngress": {
        1: _s("ip"), 2: _s("hostname"), 3: _s("ipMode", ptr=True), 4: _ms("ports", "PortStatus"),
    },
    "PortStatus": {1: _i32("port", always=True), 2: _s("protocol"), 3: _s("error", ptr=True)},
    "Endpoints": {1: _meta(), 2: _ms("subsets", "EndpointSubset")},
    "EndpointSubset": {
        1: _ms("addresses", "EndpointAddress"), 2: _ms("notReadyAddresses", "EndpointAddress"),
        3: _ms("ports", "EndpointPort"),
    },
    "EndpointAddress": {
        1: _s("ip"), 3: _s("hostname"), 4: _s("nodeName", ptr=True),
        2: _m("targetRef", "ObjectReference", ptr=True),
    },
    "EndpointPort": {
        1: _s("name"), 2: _i32("port", always=True), 3: _s("protocol"),
        4: _s("appProtocol", ptr=True),
    },
    "Event": {
        1: _meta(), 2: _m("involvedObject", "ObjectReference"), 3: _s("reason"),
        4: _s("message"), 5: _m("source", "EventSource"), 6: _t("firstTimestamp"),
        7: _t("lastTimestamp"), 8: _i32("count"), 9: _s("type"), 10: _mt("eventTime"),
        11: _m("series", "EventSeries", ptr=True), 12: _s("action"),
        13: _m("related", "ObjectReference", ptr=True), 14: _s("reportingComponent"),
        15: _s("reportingInstance"),
    },
    "EventSeries": {1: _i32("count"), 2: _mt("lastObservedTime")},
    "EventSource": {1: _s("component"), 2: _s("host")},
    "PersistentVolumeClaim": {
        1: _meta(), 2: _m("spec", "PersistentVolumeClaimSpec"),
        3: _m("status", "PersistentVolumeClaimStatus"),
    },
    "PersistentVolumeClaimSpec": {
        1: _ss("accessModes"), 4: _m("selector", "LabelSelector", ptr=True),
        2: _m("resources", "VolumeResourceRequirements"), 3: _s("volumeName"),
        5: _s("storageClassName", ptr=True), 6: _s("volumeMode", ptr=True),
        7: _m("dataSource", "TypedLocalObjectReference", ptr=True),
        8: _m("dataSourceRef", "TypedObjectReference", ptr=True),
        9: _s("volumeAttributesClassName", ptr=True),
    },
    "VolumeResourceRequirements": {1: _qmap("limits"), 2: _qmap("requests")},
    "PersistentVolumeClaimStatus": {
        1: _s("phase"), 2: _ss("accessModes"), 3: _qmap("capacity"),
        4: _ms("conditions", "PersistentVolumeClaimCondition"), 5: _qmap("allocatedResources"),
        7: _smap("allocatedResourceStatuses"),
        8: _s("currentVolumeAttributesClassName", ptr=True),
        9: _m("modifyVolumeStatus", "ModifyVolumeStatus", ptr=True),
    },
    "PersistentVolumeClaimCondition": {
        1: _s("type"), 2: _s("status"), 3: _t("lastProbeTime"), 4: _t("lastTransitionTime"),
        5: _s("reason"), 6: _s("message"),
    },
    "ModifyVolumeStatus": {1: _s("targetVolumeAttributesClassName"), 2: _s("status")},
    "ResourceQuota": {
        1: _meta(), 2: _m("spec", "ResourceQuotaSpec"), 3: _m("status", "ResourceQuotaStatus"),
    },
    "ResourceQuotaSpec": {
        1: _qmap("hard"), 2: _ss("scopes"), 3: _m("scopeSelector", "ScopeSelector", ptr=True),
    },
    "ResourceQuotaStatus": {1: _qmap("hard"), 2: _qmap("used")},
    "ScopeSelector": {1: _ms("matchExpressions", "ScopedResourceSelectorRequirement")},
    "ScopedResourceSelectorRequirement": {
        1: _s("scopeName"), 2: _s("operator"), 3: _ss("values"),
    },
    "Pod": {1: _meta(), 2: _m("spec", "PodSpec"), 3: _m("status", "PodStatus")},
    "PodStatus": {
        17: _i64("observedGeneration"), 1: _s("phase"), 2: _ms("conditions", "PodCondition"),
        3: _s("message"), 4: _s("reason"), 11: _s("nominatedNodeName"), 5: _s("hostIP"),
        16: _ms("hostIPs", "HostIP"), 6: _s("podIP"), 12: _ms("podIPs", "PodIP"),
        7: _t("startTime"), 9: _s("qosClass"),
    },
    "PodCondition": {
        1: _s("type"), 7: _i64("observedGeneration"), 2: _s("status"), 3: _t("lastProbeTime"),
        4: _t("lastTransitionTime"), 5: _s("reason"), 6: _s("message"),
    },
    "HostIP": {1: _s("ip")},
    "PodIP": {1: _s("ip")},
    # ---------------------------------------------- core/v1: pod templates and pod specs
    "PodTemplateSpec": {1: _meta(), 2: _m("spec", "PodSpec")},
    "PodSpec": {
        1: _ms("volumes", "Volume"), 20: _ms("initContainers", "Container"),
        2: _ms("containers", "Container"), 34: _ms("ephemeralContainers", "EphemeralContainer"),
        3: _s("restartPolicy"), 4: _i64("terminationGracePeriodSeconds", ptr=True),
        5: _i64("activeDeadlineSeconds", ptr=True), 6: _s("dnsPolicy"),
        7: _smap("nodeSelector"), 8: _s("serviceAccountName"), 9: _s("serviceAccount"),
        21: _b("automountServiceAccountToken", ptr=True), 10: _s("nodeName"),
        11: _b("hostNetwork"), 12: _b("hostPID"), 13: _b("hostIPC"),
        27: _b("shareProcessNamespace", ptr=True),
        14: _m("securityContext", "PodSecurityContext", ptr=True),
        15: _ms("imagePullSecrets", "LocalObjectReference"), 16: _s("hostname"),
        17: _s("subdomain"), 18: _m("affinity", "Affinity", ptr=True), 19: _s("schedulerName"),
        22: _ms("tolerations", "Toleration"), 23: _ms("hostAliases", "HostAlias"),
        24: _s("priorityClassName"), 25: _i32("priority", ptr=True),
        26: _m("dnsConfig", "PodDNSConfig", ptr=True),
        28: _ms("readinessGates", "PodReadinessGate"), 29: _s("runtimeClassName", ptr=True),
        30: _b("enableServiceLinks", ptr=True), 31: _s("preemptionPolicy", ptr=True),
        32: _qmap("overhead"),
        33: _ms("topologySpreadConstraints", "TopologySpreadConstraint"),
        35: _b("setHostnameAsFQDN", ptr=True), 36: _m("os", "PodOS", ptr=True),
        37: _b("hostUsers", ptr=True), 38: _ms("schedulingGates", "PodSchedulingGate"),
        39: _ms("resourceClaims", "PodResourceClaim"),
        40: _m("resources", "ResourceRequirements", ptr=True),
        41: _s("hostnameOverride", ptr=True), 42: _m("workloadRef", "WorkloadReference", ptr=True),
    },
    # EphemeralContainerCommon repeats Container's fields under the same numbers, so the
    # Container table serves for both.
    "Container": {
        1: _s("name"), 2: _s("image"), 3: _ss("command"), 4: _ss("args"), 5: _s("workingDir"),
        6: _ms("ports", "ContainerPort"), 19: _ms("envFrom", "EnvFromSource"),
        7: _ms("env", "EnvVar"), 8: _m("resources", "ResourceRequirements"),
        23: _ms("resizePolicy", "ContainerResizePolicy"), 24: _s("restartPolicy", ptr=True),
        25: _ms("restartPolicyRules", "ContainerRestartRule"),
        9: _ms("volumeMounts", "VolumeMount"), 21: _ms("volumeDevices", "VolumeDevice"),
        10: _m("livenessProbe", "Probe", ptr=True), 11: _m("readinessProbe", "Probe", ptr=True),
        22: _m("startupProbe", "Probe", ptr=True), 12: _m("lifecycle", "Lifecycle", ptr=True),
        13: _s("terminationMessagePath"), 20: _s("terminationMessagePolicy"),
        14: _s("imagePullPolicy"), 15: _m("securityContext", "SecurityContext", ptr=True),
        16: _b("stdin"), 17: _b("stdinOnce"), 18: _b("tty"),
    },
    "EphemeralContainer": {
        1: _m("ephemeralContainerCommon", "Container", inline=True),
        2: _s("targetContainerName"),
    },
    "ContainerPort": {
        1: _s("name"), 2: _i32("hostPort"), 3: _i32("containerPort", always=True),
        4: _s("protocol"), 5: _s("hostIP"),
    },
    "EnvFromSource": {
        1: _s("prefix"), 2: _m("configMapRef", "ConfigMapEnvSource", ptr=True),
        3: _m("secretRef", "SecretEnvSource", ptr=True),
    },
    "ConfigMapEnvSource": {1: _LOCAL_REF_INLINE, 2: _b("optional", ptr=True)},
    "SecretEnvSource": {1: _LOCAL_REF_INLINE, 2: _b("optional", ptr=True)},
    "EnvVar": {1: _s("name"), 2: _s("value"), 3: _m("valueFrom", "EnvVarSource", ptr=True)},
    "EnvVarSource": {
        1: _m("fieldRef", "ObjectFieldSelector", ptr=True),
        2: _m("resourceFieldRef", "ResourceFieldSelector", ptr=True),
        3: _m("configMapKeyRef", "ConfigMapKeySelector", ptr=True),
        4: _m("secretKeyRef", "SecretKeySelector", ptr=True),
        5: _m("fileKeyRef", "FileKeySelector", ptr=True),
    },
    "ObjectFieldSelector": {1: _s("apiVersion"), 2: _s("fieldPath")},
    "ResourceFieldSelector": {1: _s("containerName"), 2: _s("resource"), 3: _q("divisor")},
    "ConfigMapKeySelector": {1: _LOCAL_REF_INLINE, 2: _s("key"), 3: _b("optional", ptr=True)},
    "SecretKeySelector": {1: _LOCAL_REF_INLINE, 2: _s("key"), 3: _b("optional", ptr=True)},
    "FileKeySelector": {
        1: _s("volumeName"), 2: _s("path"), 3: _s("key"), 4: _b("optional", ptr=True),
    },
    "ResourceRequirements": {
        1: _qmap("limits"), 2: _qmap("requests"), 3: _ms("claims", "ResourceClaim"),
    },
    "ResourceClaim": {1: _s("name"), 2: _s("request")},
    "ContainerResizePolicy": {1: _s("resourceName"), 2: _s("restartPolicy")},
    "ContainerRestartRule": {
        1: _s("action"), 2: _m("exitCodes", "ContainerRestartRuleOnExitCodes", ptr=True),
    },
    "ContainerRestartRuleOnExitCodes": {1: _s("operator"), 2: _i32("values", repeated=True)},
    "VolumeMount": {
        1: _s("name"), 2: _b("readOnly"), 7: _s("recursiveReadOnly", ptr=True),
        3: _s("mountPath"), 4: _s("subPath"), 5: _s("mountPropagation", ptr=True),
        6: _s("subPathExpr"),
    },
    "VolumeDevice": {1: _s("name"), 2: _s("devicePath")},
    "Probe": {
        1: _m("handler", "ProbeHandler", inline=True), 2: _i32("initialDelaySeconds"),
        3: _i32("timeoutSeconds"), 4: _i32("periodSeconds"), 5: _i32("successThreshold"),
        6: _i32("failureThreshold"), 7: _i64("terminationGracePeriodSeconds", ptr=True),
    },
    "ProbeHandler": {
        1: _m("exec", "ExecAction", ptr=True), 2: _m("httpGet", "HTTPGetAction", ptr=True),
        3: _m("tcpSocket", "TCPSocketAction", ptr=True), 4: _m("grpc", "GRPCAction", ptr=True),
    },
    "ExecAction": {1: _ss("command")},
    "HTTPGetAction": {
        1: _s("path"), 2: _ios("port"), 3: _s("host"), 4: _s("scheme"),
        5: _ms("httpHeaders", "HTTPHeader"),
    },
    "HTTPHeader": {1: _s("name"), 2: _s("value")},
    "TCPSocketAction": {1: _ios("port"), 2: _s("host")},
    "GRPCAction": {1: _i32("port", always=True), 2: _s("service", ptr=True)},
    "Lifecycle": {
        1: _m("postStart", "LifecycleHandler", ptr=True),
        2: _m("preStop", "LifecycleHandler", ptr=True), 3: _s("stopSignal", ptr=True),
    },
    "LifecycleHandler": {
        1: _m("exec", "ExecAction", ptr=True), 2: _m("httpGet", "HTTPGetAction", ptr=True),
        3: _m("tcpSocket", "TCPSocketAction", ptr=True), 4: _m("sleep", "SleepAction", ptr=True),
    },
    "SleepAction": {1: _i64("seconds")},
    "SecurityContext": {
        1: _m("capabilities", "Capabilities", ptr=True), 2: _b("privileged", ptr=True),
        3: _m("seLinuxOptions", "SELinuxOptions", ptr=True),
        10: _m("windowsOptions", "WindowsSecurityContextOptions", ptr=True),
        4: _i64("runAsUser", ptr=True), 8: _i64("runAsGroup", ptr=True),
        5: _b("runAsNonRoot", ptr=True), 6: _b("readOnlyRootFilesystem", ptr=True),
        7: _b("allowPrivilegeEscalation", ptr=True), 9: _s("procMount", ptr=True),
        11: _m("seccompProfile", "SeccompProfile", ptr=True),
        12: _m("appArmorProfile", "AppArmorProfile", ptr=True), 13: _ms("ulimits", "Ulimit"),
    },
    "Capabilities": {1: _ss("add"), 2: _ss("drop")},
    "SELinuxOptions": {1: _s("user"), 2: _s("role"), 3: _s("type"), 4: _s("level")},
    "WindowsSecurityContextOptions": {
        1: _s("gmsaCredentialSpecName", ptr=True), 2: _s("gmsaCredentialSpec", ptr=True),
        3: _s("runAsUserName", ptr=True), 4: _b("hostProcess", ptr=True),
    },
    "SeccompProfile": {1: _s("type"), 2: _s("localhostProfile", ptr=True)},
    "AppArmorProfile": {1: _s("type"), 2: _s("localhostProfile", ptr=True)},
    "Ulimit": {1: _s("name"), 2: _i64("hard"), 3: _i64("soft")},
    "PodSecurityContext": {
        1: _m("seLinuxOptions", "SELinuxOptions", ptr=True),
        8: _m("windowsOptions", "WindowsSecurityContextOptions", ptr=True),
        2: _i64("runAsUser", ptr=True), 6: _i64("runAsGroup", ptr=True),
        3: _b("runAsNonRoot", ptr=True), 4: _i64("supplementalGroups", repeated=True),
        12: _s("supplementalGroupsPolicy", ptr=True), 5: _i64("fsGroup", ptr=True),
        7: _ms("sysctls", "Sysctl"), 9: _s("fsGroupChangePolicy", ptr=True),
        10: _m("seccompProfile", "SeccompProfile", ptr=True),
        11: _m("appArmorProfile", "AppArmorProfile", ptr=True),
        13: _s("seLinuxChangePolicy", ptr=True),
    },
    "Sysctl": {1: _s("name"), 2: _s("value")},
    "Affinity": {
        1: _m("nodeAffinity", "NodeAffinity", ptr=True),
        2: _m("podAffinity", "PodAffinity", ptr=True),
        3: _m("podAntiAffinity", "PodAntiAffinity", ptr=True),
    },
    "NodeAffinity": {
        1: _m("requiredDuringSchedulingIgnoredDuringExecution", "NodeSelector", ptr=True),
        2: _ms("preferredDuringSchedulingIgnoredDuringExecution", "PreferredSchedulingTerm"),
    },
    "NodeSelector": {1: _ms("nodeSelectorTerms", "NodeSelectorTerm")},
    "NodeSelectorTerm": {
        1: _ms("matchExpressions", "NodeSelectorRequirement"),
        2: _ms("matchFields", "NodeSelectorRequirement"),
    },
    "NodeSelectorRequirement": {1: _s("key"), 2: _s("operator"), 3: _ss("values")},
    "PreferredSchedulingTerm": {
        1: _i32("weight", always=True), 2: _m("preference", "NodeSelectorTerm"),
    },
    "PodAffinity": {
        1: _ms("requiredDuringSchedulingIgnoredDuringExecution", "PodAffinityTerm"),
        2: _ms("preferredDuringSchedulingIgnoredDuringExecution", "WeightedPodAffinityTerm"),
    },
    "PodAntiAffinity": {
        1: _ms("requiredDuringSchedulingIgnoredDuringExecution", "PodAffinityTerm"),
        2: _ms("preferredDuringSchedulingIgnoredDuringExecution", "WeightedPodAffinityTerm"),
    },
    "PodAffinityTerm": {
        1: _m("labelSelector", "LabelSelector", ptr=True), 2: _ss("namespaces"),
        3: _s("topologyKey"), 4: _m("namespaceSelector", "LabelSelector", ptr=True),
        5: _ss("matchLabelKeys"), 6: _ss("mismatchLabelKeys"),
    },
    "WeightedPodAffinityTerm": {
        1: _i32("weight", always=True), 2: _m("podAffinityTerm", "PodAffinityTerm"),
    },
    "Toleration": {
        1: _s("key"), 2: _s("operator"), 3: _s("value"), 4: _s("effect"),
        5: _i64("tolerationSeconds", ptr=True),
    },
    "HostAlias": {1: _s("ip"), 2: _ss("hostnames")},
    "PodDNSConfig": {
        1: _ss("nameservers"), 2: _ss("searches"), 3: _ms("options", "PodDNSConfigOption"),
    },
    "PodDNSConfigOption": {1: _s("name"), 2: _s("value", ptr=True)},
    "PodReadinessGate": {1: _s("conditionType")},
    "TopologySpreadConstraint": {
        1: _i32("maxSkew", always=True), 2: _s("topologyKey"), 3: _s("whenUnsatisfiable"),
        4: _m("labelSelector", "LabelSelector", ptr=True), 5: _i32("minDomains", ptr=True),
        6: _s("nodeAffinityPolicy", ptr=True), 7: _s("nodeTaintsPolicy", ptr=True),
        8: _ss("matchLabelKeys"),
    },
    "PodOS": {1: _s("name")},
    "PodSchedulingGate": {1: _s("name")},
    "PodResourceClaim": {
        1: _s("name"), 3: _s("resourceClaimName", ptr=True),
        4: _s("resourceClaimTemplateName", ptr=True),
    },
    "WorkloadReference": {1: _s("name"), 2: _s("podGroup"), 3: _s("podGroupReplicaKey")},
    # ---------------------------------------------- core/v1: volumes
    # VolumeSource is embedded in Volume; the in-tree storage drivers long since deprecated or
    # removed (iscsi, rbd, cephfs, cinder, fc, flocker, ...) are not listed and so are skipped.
    "Volume": {1: _s("name"), 2: _m("volumeSource", "VolumeSource", inline=True)},
    "VolumeSource": {
        1: _m("hostPath", "HostPathVolumeSource", ptr=True),
        2: _m("emptyDir", "EmptyDirVolumeSource", ptr=True),
        3: _m("gcePersistentDisk", "GCEPersistentDiskVolumeSource", ptr=True),
        4: _m("awsElasticBlockStore", "AWSElasticBlockStoreVolumeSource", ptr=True),
        5: _m("gitRepo", "GitRepoVolumeSource", ptr=True),
        6: _m("secret", "SecretVolumeSource", ptr=True),
        7: _m("nfs", "NFSVolumeSource", ptr=True),
        10: _m("persistentVolumeClaim", "PersistentVolumeClaimVolumeSource", ptr=True),
        16: _m("downwardAPI", "DownwardAPIVolumeSource", ptr=True),
        18: _m("azureFile", "AzureFileVolumeSource", ptr=True),
        19: _m("configMap", "ConfigMapVolumeSource", ptr=True),
        22: _m("azureDisk", "AzureDiskVolumeSource", ptr=True),
        26: _m("projected", "ProjectedVolumeSource", ptr=True),
        28: _m("csi", "CSIVolumeSource", ptr=True),
        29: _m("ephemeral", "EphemeralVolumeSource", ptr=True),
        30: _m("image", "ImageVolumeSource", ptr=True),
    },
    "HostPathVolumeSource": {1: _s("path"), 2: _s("type", ptr=True)},
    "EmptyDirVolumeSource": {1: _s("medium"), 2: _q("sizeLimit", ptr=True)},
    "GCEPersistentDiskVolumeSource": {
        1: _s("pdName"), 2: _s("fsType"), 3: _i32("partition"), 4: _b("readOnly"),
    },
    "AWSElasticBlockStoreVolumeSource": {
        1: _s("volumeID"), 2: _s("fsType"), 3: _i32("partition"), 4: _b("readOnly"),
    },
    "GitRepoVolumeSource": {1: _s("repository"), 2: _s("revision"), 3: _s("directory")},
    "SecretVolumeSource": {
        1: _s("secretName"), 2: _ms("items", "KeyToPath"), 3: _i32("defaultMode", ptr=True),
        4: _b("optional", ptr=True),
    },
    "NFSVolumeSource": {1: _s("server"), 2: _s("path"), 3: _b("readOnly")},
    "PersistentVolumeClaimVolumeSource": {1: _s("claimName"), 2: _b("readOnly")},
    "DownwardAPIVolumeSource": {
        1: _ms("items", "DownwardAPIVolumeFile"), 2: _i32("defaultMode", ptr=True),
    },
    "DownwardAPIVolumeFile": {
        1: _s("path"), 2: _m("fieldRef", "ObjectFieldSelector", ptr=True),
        3: _m("resourceFieldRef", "ResourceFieldSelector", ptr=True),
        4: _i32("mode", ptr=True),
    },
    "AzureFileVolumeSource": {1: _s("secretName"), 2: _s("shareName"), 3: _b("readOnly")},
    "AzureDiskVolumeSource": {
        1: _s("diskName"), 2: _s("diskURI"), 3: _s("cachingMode", ptr=True),
        4: _s("fsType", ptr=True), 5: _b("readOnly", ptr=True), 6: _s("kind", ptr=True),
    },
    "ConfigMapVolumeSource": {
        1: _LOCAL_REF_INLINE, 2: _ms("items", "KeyToPath"), 3: _i32("defaultMode", ptr=True),
        4: _b("optional", ptr=True),
    },
    "KeyToPath": {1: _s("key"), 2: _s("path"), 3: _i32("mode", ptr=True)},
    "ProjectedVolumeSource": {
        1: _ms("sources", "VolumeProjection"), 2: _i32("defaultMode", ptr=True),
    },
    "VolumeProjection": {
        1: _m("secret", "SecretProjection", ptr=True),
        2: _m("downwardAPI", "DownwardAPIProjection", ptr=True),
        3: _m("configMap", "ConfigMapProjection", ptr=True),
        4: _m("serviceAccountToken", "ServiceAccountTokenProjection", ptr=True),
        5: _m("clusterTrustBundle", "ClusterTrustBundleProjection", ptr=True),
    },
    "SecretProjection": {
        1: _LOCAL_REF_INLINE, 2: _ms("items", "KeyToPath"), 4: _b("optional", ptr=True),
    },
    "ConfigMapProjection": {
        1: _LOCAL_REF_INLINE, 2: _ms("items", "KeyToPath"), 4: _b("optional", ptr=True),
    },
    "DownwardAPIProjection": {1: _ms("items", "DownwardAPIVolumeFile")},
    "ServiceAccountTokenProjection": {
        1: _s("audience"), 2: _i64("expirationSeconds", ptr=True), 3: _s("path"),
    },
    "ClusterTrustBundleProjection": {
        1: _s("name", ptr=True), 2: _s("signerName", ptr=True),
        3: _m("labelSelector", "LabelSelector", ptr=True), 5: _b("optional", ptr=True),
        4: _s("path"),
    },
    "CSIVolumeSource": {
        1: _s("driver"), 2: _b("readOnly", ptr=True), 3: _s("fsType", ptr=True),
        4: _smap("volumeAttributes"),
        5: _m("nodePublishSecretRef", "LocalObjectReference", ptr=True),
    },
    "EphemeralVolumeSource": {
        1: _m("volumeClaimTemplate", "PersistentVolumeClaimTemplate", ptr=True),
    },
    "PersistentVolumeClaimTemplate": {1: _meta(), 2: _m("spec", "PersistentVolumeClaimSpec")},
    "ImageVolumeSource": {1: _s("reference"), 2: _s("pullPolicy")},
    # ---------------------------------------------- k8s.io/api/apps/v1
    "Deployment": {
        1: _meta(), 2: _m("spec", "DeploymentSpec"), 3: _m("status", "DeploymentStatus"),
    },
    "DeploymentSpec": {
        1: _i32("replicas", ptr=True), 2: _m("selector", "LabelSelector", ptr=True),
        3: _m("template", "PodTemplateSpec"), 4: _m("strategy", "DeploymentStrategy"),
        5: _i32("minReadySeconds"), 6: _i32("revisionHistoryLimit", ptr=True),
        7: _b("paused"), 9: _i32("progressDeadlineSeconds", ptr=True),
        10: _s("podReplacementPolicy", ptr=True),
    },
    "DeploymentStrategy": {
        1: _s("type"), 2: _m("rollingUpdate", "RollingUpdateDeployment", ptr=True),
    },
    "RollingUpdateDeployment": {
        1: _ios("maxUnavailable", ptr=True), 2: _ios("maxSurge", ptr=True),
    },
    "DeploymentStatus": {
        1: _i64("observedGeneration"), 2: _i32("replicas"), 3: _i32("updatedReplicas"),
        7: _i32("readyReplicas"), 4: _i32("availableReplicas"), 5: _i32("unavailableReplicas"),
        9: _i32("terminatingReplicas", ptr=True), 6: _ms("conditions", "DeploymentCondition"),
        8: _i32("collisionCount", ptr=True),
    },
    "DeploymentCondition": {
        1: _s("type"), 2: _s("status"), 6: _t("lastUpdateTime"), 7: _t("lastTransitionTime"),
        4: _s("reason"), 5: _s("message"),
    },
    "StatefulSet": {
        1: _meta(), 2: _m("spec", "StatefulSetSpec"), 3: _m("status", "StatefulSetStatus"),
    },
    "StatefulSetSpec": {
        1: _i32("replicas", ptr=True), 2: _m("selector", "LabelSelector", ptr=True),
        3: _m("template", "PodTemplateSpec"),
        4: _ms("volumeClaimTemplates", "PersistentVolumeClaim"), 5: _s("serviceName"),
        6: _s("podManagementPolicy"), 7: _m("updateStrategy", "StatefulSetUpdateStrategy"),
        8: _i32("revisionHistoryLimit", ptr=True), 9: _i32("minReadySeconds"),
        10: _m("persistentVolumeClaimRetentionPolicy",
               "StatefulSetPersistentVolumeClaimRetentionPolicy", ptr=True),
        11: _m("ordinals", "StatefulSetOrdinals", ptr=True),
    },
    "StatefulSetUpdateStrategy": {
        1: _s("type"), 2: _m("rollingUpdate", "RollingUpdateStatefulSetStrategy", ptr=True),
    },
    "RollingUpdateStatefulSetStrategy": {
        1: _i32("partition", ptr=True), 2: _ios("maxUnavailable", ptr=True),
    },
    "StatefulSetPersistentVolumeClaimRetentionPolicy": {
        1: _s("whenDeleted"), 2: _s("whenScaled"),
    },
    "StatefulSetOrdinals": {1: _i32("start")},
    "StatefulSetStatus": {
        1: _i64("observedGeneration"), 2: _i32("replicas", always=True), 3: _i32("readyReplicas"),
        4: _i32("currentReplicas"), 5: _i32("updatedReplicas"), 6: _s("currentRevision"),
        7: _s("updateRevision"), 9: _i32("collisionCount", ptr=True),
        10: _ms("conditions", "StatefulSetCondition"), 11: _i32("availableReplicas"),
    },
    "StatefulSetCondition": _WORKLOAD_CONDITION,
    "DaemonSet": {
        1: _meta(), 2: _m("spec", "DaemonSetSpec"), 3: _m("status", "DaemonSetStatus"),
    },
    "DaemonSetSpec": {
        1: _m("selector", "LabelSelector", ptr=True), 2: _m("template", "PodTemplateSpec"),
        3: _m("updateStrategy", "DaemonSetUpdateStrategy"), 4: _i32("minReadySeconds"),
        6: _i32("revisionHistoryLimit", ptr=True),
    },
    "DaemonSetUpdateStrategy": {
        1: _s("type"), 2: _m("rollingUpdate", "RollingUpdateDaemonSet", ptr=True),
    },
    "RollingUpdateDaemonSet": {
        1: _ios("maxUnavailable", ptr=True), 2: _ios("maxSurge", ptr=True),
    },
    "DaemonSetStatus": {
        1: _i32("currentNumberScheduled", always=True),
        2: _i32("numberMisscheduled", always=True),
        3: _i32("desiredNumberScheduled", always=True), 4: _i32("numberReady", always=True),
        5: _i64("observedGeneration"), 6: _i32("updatedNumberScheduled"),
        7: _i32("numberAvailable"), 8: _i32("numberUnavailable"),
        9: _i32("collisionCount", ptr=True), 10: _ms("conditions", "DaemonSetCondition"),
    },
    "DaemonSetCondition": _WORKLOAD_CONDITION,
    "ReplicaSet": {
        1: _meta(), 2: _m("spec", "ReplicaSetSpec"), 3: _m("status", "ReplicaSetStatus"),
    },
    "ReplicaSetSpec": {
        1: _i32("replicas", ptr=True), 4: _i32("minReadySeconds"),
        2: _m("selector", "LabelSelector", ptr=True), 3: _m("template", "PodTemplateSpec"),
    },
    "ReplicaSetStatus": {
        1: _i32("replicas", always=True), 2: _i32("fullyLabeledReplicas"), 4: _i32("readyReplicas"),
        5: _i32("availableReplicas"), 7: _i32("terminatingReplicas", ptr=True),
        3: _i64("observedGeneration"), 6: _ms("conditions", "ReplicaSetCondition"),
    },
    "ReplicaSetCondition": _WORKLOAD_CONDITION,
    # ---------------------------------------------- k8s.io/api/batch/v1
    "Job": {1: _meta(), 2: _m("spec", "JobSpec"), 3: _m("status", "JobStatus")},
    "JobSpec": {
        1: _i32("parallelism", ptr=True), 2: _i32("completions", ptr=True),
        3: _i64("activeDeadlineSeconds", ptr=True),
        11: _m("podFailurePolicy", "PodFailurePolicy", ptr=True),
        16: _m("successPolicy", "SuccessPolicy", ptr=True), 7: _i32("backoffLimit", ptr=True),
        12: _i32("backoffLimitPerIndex", ptr=True), 13: _i32("maxFailedIndexes", ptr=True),
        4: _m("selector", "LabelSelector", ptr=True), 5: _b("manualSelector", ptr=True),
        6: _m("template", "PodTemplateSpec"), 8: _i32("ttlSecondsAfterFinished", ptr=True),
        9: _s("completionMode", ptr=True), 10: _b("suspend", ptr=True),
        14: _s("podReplacementPolicy", ptr=True), 15: _s("managedBy", ptr=True),
    },
    "PodFailurePolicy": {1: _ms("rules", "PodFailurePolicyRule")},
    "PodFailurePolicyRule": {
        1: _s("action"),
        2: _m("onExitCodes", "PodFailurePolicyOnExitCodesRequirement", ptr=True),
        3: _ms("onPodConditions", "PodFailurePolicyOnPodConditionsPattern"),
    },
    "PodFailurePolicyOnExitCodesRequirement": {
        1: _s("containerName", ptr=True), 2: _s("operator"), 3: _i32("values", repeated=True),
    },
    "PodFailurePolicyOnPodConditionsPattern": {1: _s("type"), 2: _s("status", always=True)},
    "SuccessPolicy": {1: _ms("rules", "SuccessPolicyRule")},
    "SuccessPolicyRule": {
        1: _s("succeededIndexes", ptr=True), 2: _i32("succeededCount", ptr=True),
    },
    "JobStatus": {
        1: _ms("conditions", "JobCondition"), 2: _t("startTime"), 3: _t("completionTime"),
        4: _i32("active"), 5: _i32("succeeded"), 6: _i32("failed"),
        11: _i32("terminating", ptr=True), 7: _s("completedIndexes"),
        10: _s("failedIndexes", ptr=True),
        8: _m("uncountedTerminatedPods", "UncountedTerminatedPods", ptr=True),
        9: _i32("ready", ptr=True),
    },
    "JobCondition": {
        1: _s("type"), 2: _s("status"), 3: _t("lastProbeTime"), 4: _t("lastTransitionTime"),
        5: _s("reason"), 6: _s("message"),
    },
    "UncountedTerminatedPods": {1: _ss("succeeded"), 2: _ss("failed")},
    "CronJob": {1: _meta(), 2: _m("spec", "CronJobSpec"), 3: _m("status", "CronJobStatus")},
    "CronJobSpec": {
        1: _s("schedule"), 8: _s("timeZone", ptr=True),
        2: _i64("startingDeadlineSeconds", ptr=True), 3: _s("concurrencyPolicy"),
        4: _b("suspend", ptr=True), 5: _m("jobTemplate", "JobTemplateSpec"),
        6: _i32("successfulJobsHistoryLimit", ptr=True),
        7: _i32("failedJobsHistoryLimit", ptr=True),
    },
    "JobTemplateSpec": {1: _meta(), 2: _m("spec", "JobSpec")},
    "CronJobStatus": {
        1: _ms("active", "ObjectReference"), 4: _t("lastScheduleTime"),
        5: _t("lastSuccessfulTime"),
    },
    # ---------------------------------------------- k8s.io/api/rbac/v1
    "Role": {1: _meta(), 2: _ms("rules", "PolicyRule")},
    "ClusterRole": {
        1: _meta(), 2: _ms("rules", "PolicyRule"),
        3: _m("aggregationRule", "AggregationRule", ptr=True),
    },
    "AggregationRule": {1: _ms("clusterRoleSelectors", "LabelSelector")},
    "PolicyRule": {
        1: _ss("verbs"), 2: _ss("apiGroups"), 3: _ss("resources"), 4: _ss("resourceNames"),
        5: _ss("nonResourceURLs"),
    },
    "RoleBinding": {1: _meta(), 2: _ms("subjects", "Subject"), 3: _m("roleRef", "RoleRef")},
    "ClusterRoleBinding": {
        1: _meta(), 2: _ms("subjects", "Subject"), 3: _m("roleRef", "RoleRef"),
    },
    "Subject": {1: _s("kind"), 2: _s("apiGroup"), 3: _s("name"), 4: _s("namespace")},
    "RoleRef": {1: _s("apiGroup"), 2: _s("kind"), 3: _s("name")},
    # ---------------------------------------------- k8s.io/api/networking/v1
    "Ingress": {1: _meta(), 2: _m("spec", "IngressSpec"), 3: _m("status", "IngressStatus")},
    "IngressSpec": {
        4: _s("ingressClassName", ptr=True),
        1: _m("defaultBackend", "IngressBackend", ptr=True), 2: _ms("tls", "IngressTLS"),
        3: _ms("rules", "IngressRule"),
    },
    "IngressBackend": {
        4: _m("service", "IngressServiceBackend", ptr=True),
        3: _m("resource", "TypedLocalObjectReference", ptr=True),
    },
    "IngressServiceBackend": {1: _s("name"), 2: _m("port", "ServiceBackendPort")},
    "ServiceBackendPort": {1: _s("name"), 2: _i32("number")},
    "IngressTLS": {1: _ss("hosts"), 2: _s("secretName")},
    "IngressRule": {
        1: _s("host"), 2: _m("ingressRuleValue", "IngressRuleValue", inline=True),
    },
    "IngressRuleValue": {1: _m("http", "HTTPIngressRuleValue", ptr=True)},
    "HTTPIngressRuleValue": {1: _ms("paths", "HTTPIngressPath")},
    "HTTPIngressPath": {
        1: _s("path"), 3: _s("pathType", ptr=True), 2: _m("backend", "IngressBackend"),
    },
    "IngressStatus": {1: _m("loadBalancer", "IngressLoadBalancerStatus")},
    "IngressLoadBalancerStatus": {1: _ms("ingress", "IngressLoadBalancerIngress")},
    "IngressLoadBalancerIngress": {
        1: _s("ip"), 2: _s("hostname"), 4: _ms("ports", "IngressPortStatus"),
    },
    "IngressPortStatus": {1: _i32("port"), 2: _s("protocol"), 3: _s("error", ptr=True)},
    "NetworkPolicy": {1: _meta(), 2: _m("spec", "NetworkPolicySpec")},
    "NetworkPolicySpec": {
        1: _m("podSelector", "LabelSelector"), 2: _ms("ingress", "NetworkPolicyIngressRule"),
        3: _ms("egress", "NetworkPolicyEgressRule"), 4: _ss("policyTypes"),
    },
    "NetworkPolicyIngressRule": {
        1: _ms("ports", "NetworkPolicyPort"), 2: _ms("from", "NetworkPolicyPeer"),
    },
    "NetworkPolicyEgressRule": {
        1: _ms("ports", "NetworkPolicyPort"), 2: _ms("to", "NetworkPolicyPeer"),
    },
    "NetworkPolicyPeer": {
        1: _m("podSelector", "LabelSelector", ptr=True),
        2: _m("namespaceSelector", "LabelSelector", ptr=True),
        3: _m("ipBlock", "IPBlock", ptr=True),
    },
    "IPBlock": {1: _s("cidr"), 2: _ss("except")},
    "NetworkPolicyPort": {
        1: _s("protocol", ptr=True), 2: _ios("port", ptr=True), 3: _i32("endPort", ptr=True),
    },
    # ---------------------------------------------- k8s.io/api/policy/v1
    "PodDisruptionBudget": {
        1: _meta(), 2: _m("spec", "PodDisruptionBudgetSpec"),
        3: _m("status", "PodDisruptionBudgetStatus"),
    },
    "PodDisruptionBudgetSpec": {
        1: _ios("minAvailable", ptr=True), 2: _m("selector", "LabelSelector", ptr=True),
        3: _ios("maxUnavailable", ptr=True), 4: _s("unhealthyPodEvictionPolicy", ptr=True),
    },
    # disruptedPods (2, map<string, Time>) is written by the API server only and is skipped.
    "PodDisruptionBudgetStatus": {
        1: _i64("observedGeneration"), 3: _i32("disruptionsAllowed", always=True),
        4: _i32("currentHealthy", always=True), 5: _i32("desiredHealthy", always=True),
        6: _i32("expectedPods", always=True),
        7: _ms("conditions", "Condition"),
    },
    "Eviction": {1: _meta(), 2: _m("deleteOptions", "DeleteOptions", ptr=True)},
    # ---------------------------------------------- k8s.io/api/autoscaling/v1 and v2
    "Scale": {1: _meta(), 2: _m("spec", "ScaleSpec"), 3: _m("status", "ScaleStatus")},
    "ScaleSpec": {1: _i32("replicas")},
    "ScaleStatus": {1: _i32("replicas", always=True), 2: _s("selector")},
    "HorizontalPodAutoscaler": {
        1: _meta(), 2: _m("spec", "HorizontalPodAutoscalerSpec"),
        3: _m("status", "HorizontalPodAutoscalerStatus"),
    },
    "HorizontalPodAutoscalerSpec": {
        1: _m("scaleTargetRef", "CrossVersionObjectReference"),
        2: _i32("minReplicas", ptr=True), 3: _i32("maxReplicas", always=True),
        4: _ms("metrics", "MetricSpec"),
        5: _m("behavior", "HorizontalPodAutoscalerBehavior", ptr=True),
    },
    "CrossVersionObjectReference": {1: _s("kind"), 2: _s("name"), 3: _s("apiVersion")},
    "MetricSpec": {
        1: _s("type"), 2: _m("object", "ObjectMetricSource", ptr=True),
        3: _m("pods", "PodsMetricSource", ptr=True),
        4: _m("resource", "ResourceMetricSource", ptr=True),
        7: _m("containerResource", "ContainerResourceMetricSource", ptr=True),
        5: _m("external", "ExternalMetricSource", ptr=True),
    },
    "MetricTarget": {
        1: _s("type"), 2: _q("value", ptr=True), 3: _q("averageValue", ptr=True),
        4: _i32("averageUtilization", ptr=True),
    },
    "MetricIdentifier": {1: _s("name"), 2: _m("selector", "LabelSelector", ptr=True)},
    "ObjectMetricSource": {
        1: _m("describedObject", "CrossVersionObjectReference"),
        2: _m("target", "MetricTarget"), 3: _m("metric", "MetricIdentifier"),
    },
    "PodsMetricSource": {1: _m("metric", "MetricIdentifier"), 2: _m("target", "MetricTarget")},
    "ResourceMetricSource": {1: _s("name"), 2: _m("target", "MetricTarget")},
    "ContainerResourceMetricSource": {
        1: _s("name"), 2: _m("target", "MetricTarget"), 3: _s("container"),
    },
    "ExternalMetricSource": {
        1: _m("metric", "MetricIdentifier"), 2: _m("target", "MetricTarget"),
    },
    "HorizontalPodAutoscalerBehavior": {
        1: _m("scaleUp", "HPAScalingRules", ptr=True),
        2: _m("scaleDown", "HPAScalingRules", ptr=True),
    },
    "HPAScalingRules": {
        3: _i32("stabilizationWindowSeconds", ptr=True), 1: _s("selectPolicy", ptr=True),
        2: _ms("policies", "HPAScalingPolicy"), 4: _q("tolerance", ptr=True),
    },
    "HPAScalingPolicy": {
        1: _s("type"), 2: _i32("value", always=True), 3: _i32("periodSeconds", always=True),
    },
    # currentMetrics (5) is written by the HPA controller only and is skipped.
    "HorizontalPodAutoscalerStatus": {
        1: _i64("observedGeneration", ptr=True), 2: _t("lastScaleTime"),
        3: _i32("currentReplicas"), 4: _i32("desiredReplicas", always=True),
        6: _ms("conditions", "HorizontalPodAutoscalerCondition"),
    },
    "HorizontalPodAutoscalerCondition": _WORKLOAD_CONDITION,
    # ---------------------------------------------- k8s.io/api/coordination/v1
    "Lease": {1: _meta(), 2: _m("spec", "LeaseSpec")},
    "LeaseSpec": {
        1: _s("holderIdentity", ptr=True), 2: _i32("leaseDurationSeconds", ptr=True),
        3: _mt("acquireTime"), 4: _mt("renewTime"), 5: _i32("leaseTransitions", ptr=True),
        6: _s("strategy", ptr=True), 7: _s("preferredHolder", ptr=True),
    },
}

# (apiVersion, kind) of a top-level object -> its message in MESSAGES.
KINDS: dict[tuple[str, str], str] = {
    **{("v1", kind): kind for kind in (
        "Namespace", "ConfigMap", "Secret", "ServiceAccount", "Service", "Endpoints", "Event",
        "PersistentVolumeClaim", "ResourceQuota", "Pod",
    )},
    **{("apps/v1", kind): kind for kind in (
        "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
    )},
    ("batch/v1", "Job"): "Job",
    ("batch/v1", "CronJob"): "CronJob",
    **{("rbac.authorization.k8s.io/v1", kind): kind for kind in (
        "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding",
    )},
    ("networking.k8s.io/v1", "Ingress"): "Ingress",
    ("networking.k8s.io/v1", "NetworkPolicy"): "NetworkPolicy",
    ("policy/v1", "PodDisruptionBudget"): "PodDisruptionBudget",
    ("policy/v1", "Eviction"): "Eviction",
    ("autoscaling/v1", "Scale"): "Scale",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "HorizontalPodAutoscaler",
    ("coordination.k8s.io/v1", "Lease"): "Lease",
    # Typed clients send DeleteOptions bodies with the group version of the resource or meta's.
    ("v1", "DeleteOptions"): "DeleteOptions",
    ("meta.k8s.io/v1", "DeleteOptions"): "DeleteOptions",
}


# ------------------------------------------------------------------------------ decoding

Occurrence = tuple[int, int | bytes]  # (wire type, value)


def decode(raw: bytes, *, default_api_version: str = "", default_kind: str = "") -> dict[str, Any]:
    """Decode one `application/vnd.kubernetes.protobuf` request body into a JSON-shaped dict.

    The result carries `apiVersion` and `kind` from the envelope; `default_api_version` and
    `default_kind` fill them in when the envelope leaves them empty, as the API server fills them
    from the request path. Raises ProtobufError (see its `unsupported` flag).
    """
    if not raw:
        raise ProtobufError("empty data")
    if not raw.startswith(MAGIC):
        raise ProtobufError(
            "provided data does not appear to be a protobuf message, expected prefix "
            + MAGIC.hex(" ")
        )
    if len(raw) == len(MAGIC):
        raise ProtobufError("empty body")
    api_version, kind, content_encoding, obj = _read_unknown(raw[len(MAGIC):])
    api_version = api_version or default_api_version
    kind = kind or default_kind
    if not kind:
        raise ProtobufError("Object 'Kind' is missing in the protobuf envelope")
    if not api_version:
        raise ProtobufError("Object 'apiVersion' is missing in the protobuf envelope")
    if content_encoding:
        raise ProtobufError(
            f"protobuf content encoding {content_encoding!r} is not supported", unsupported=True
        )
    message = KINDS.get((api_version, kind))
    if message is None:
        raise ProtobufError(
            f"kubesim cannot decode {kind} ({api_version}) from protobuf; send it as JSON",
            unsupported=True,
        )
    body: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    body.update(decode_message(obj, message))
    return body


def _read_unknown(buf: bytes) -> tuple[str, str, str, bytes]:
    """Return (apiVersion, kind, contentEncoding, raw) of a runtime.Unknown."""
    type_meta = b""
    raw = b""
    content_encoding = ""
    for number, wire_type, value in iter_fields(buf):
        if number == 1:
            type_meta += _expect_bytes(wire_type, value, "typeMeta")
        elif number == 2:
            raw = _expect_bytes(wire_type, value, "raw")
        elif number == 3:
            content_encoding = _text(_expect_bytes(wire_type, value, "contentEncoding"))
        # contentType (4) is ignored, as the API server ignores it: raw is always protobuf here.
    api_version = kind = ""
    for number, wire_type, value in iter_fields(type_meta):
        if number == 1:
            api_version = _text(_expect_bytes(wire_type, value, "apiVersion"))
        elif number == 2:
            kind = _text(_expect_bytes(wire_type, value, "kind"))
    return api_version, kind, content_encoding, raw


def decode_message(buf: bytes, message: str) -> dict[str, Any]:
    """Decode the protobuf of one message named in MESSAGES into its JSON form."""
    schema = MESSAGES[message]
    seen: dict[int, list[Occurrence]] = {}
    for number, wire_type, value in iter_fields(buf):
        # Unknown field numbers are skipped, as Go's generated Unmarshal skips them.
        if number in schema:
            seen.setdefault(number, []).append((wire_type, value))
    out: dict[str, Any] = {}
    # Walk the table, not the wire, so keys come out in Go struct (= kubectl JSON) order.
    for number, field in schema.items():
        occurrences = seen.get(number)
        if occurrences:
            _emit(out, field, occurrences)
    return out


def _emit(out: dict[str, Any], field: Field, occurrences: list[Occurrence]) -> None:
    kind = field.kind
    if field.repeated:
        if kind == MSG:
            out[field.name] = [
                decode_message(_expect_bytes(wt, v, field.name), field.msg)
                for wt, v in occurrences
            ]
        elif kind in _NUMERIC:
            out[field.name] = [_number(kind, n) for n in _unpack(field, occurrences)]
        else:
            out[field.name] = [_scalar(field, wt, v) for wt, v in occurrences]
        return
    if kind in (MAP_STR, MAP_BYTES, MAP_QTY):
        entries = {}
        for wire_type, value in occurrences:
            key, entry = _map_entry(field, _expect_bytes(wire_type, value, field.name))
            entries[key] = entry  # a repeated key keeps its last value, as in Go
        if entries:
            out[field.name] = entries
        return
    if kind in _SCALARS:
        # A scalar given twice keeps its last value (protobuf "last one wins").
        wire_type, value = occurrences[-1]
        result = _scalar(field, wire_type, value)
        if field.ptr or field.always or result not in ("", 0, False):
            out[field.name] = result
        return
    # Everything else is a message; several occurrences of one merge, which for protobuf is the
    # same as decoding their concatenation.
    data = b"".join(_expect_bytes(wt, v, field.name) for wt, v in occurrences)
    if kind == MSG:
        nested = decode_message(data, field.msg)
        if field.inline:
            out.update(nested)
        else:
            out[field.name] = nested
        return
    converted = _special(field, data)
    if converted is not None:
        out[field.name] = converted


def _unpack(field: Field, occurrences: list[Occurrence]) -> Iterator[int]:
    # Repeated numbers may come one per field or packed into one length-delimited run.
    for wire_type, value in occurrences:
        if wire_type == VARINT and isinstance(value, int):
            yield value
        elif wire_type == LEN and isinstance(value, bytes):
            pos = 0
            while pos < len(value):
                number, pos = read_varint(value, pos)
                yield number
        else:
            raise ProtobufError(f"wrong wire type {wire_type} for repeated field {field.name}")


def _number(kind: str, value: int) -> int | bool:
    if kind == I32:
        return _signed32(value)
    if kind == I64:
        return _signed64(value)
    return value != 0


def _scalar(field: Field, wire_type: int, value: int | bytes) -> Any:
    if field.kind in _NUMERIC:
        if wire_type != VARINT or not isinstance(value, int):
            raise ProtobufError(f"wrong wire type {wire_type} for field {field.name}")
        return _number(field.kind, value)
    data = _expect_bytes(wire_type, value, field.name)
    if field.kind == BYTES:
        return base64.b64encode(data).decode("ascii")
    return _text(data)


def _map_entry(field: Field, data: bytes) -> tuple[str, Any]:
    # A map entry is a message {key = 1; value = 2}; either may be missing (the zero value).
    key = ""
    value: Any = b""
    for number, wire_type, item in iter_fields(data):
        if number == 1:
            key = _text(_expect_bytes(wire_type, item, field.name))
        elif number == 2:
            value = _expect_bytes(wire_type, item, field.name)
    if field.kind == MAP_STR:
        return key, _text(value)
    if field.kind == MAP_BYTES:
        return key, base64.b64encode(value).decode("ascii")
    return key, _quantity(value) or "0"


def _special(field: Field, data: bytes) -> Any:
    """Convert a well-known wrapper message; None means "leave the field out"."""
    if field.kind == INTSTR:
        return _int_or_string(field, data)
    if field.kind == QTY:
        quantity = _quantity(data)
        if field.ptr:
            return quantity or "0"
        # A non-pointer Quantity is always written; its zero ("0") stands for "not set".
        return quantity if quantity not in ("", "0") else None
    if field.kind in (TIME, MICROTIME):
        return _time(field, data)
    if field.kind == RAWJSON:
        return _raw_json(field, data)
    raise AssertionError(f"unhandled field kind {field.kind}")  # pragma: no cover


def _int_or_string(field: Field, data: bytes) -> int | str | None:
    type_ = int_val = 0
    str_val = ""
    for number, wire_type, value in iter_fields(data):
        if number == 1:
            type_ = _signed64(_expect_int(wire_type, value, field.name))
        elif number == 2:
            int_val = _signed32(_expect_int(wire_type, value, field.name))
        elif number == 3:
            str_val = _text(_expect_bytes(wire_type, value, field.name))
    result: int | str
    if type_ == 0:
        result = int_val
    elif type_ == 1:
        result = str_val
    else:
        raise ProtobufError(f"impossible IntOrString type {type_} in field {field.name}")
    if not field.ptr and result in (0, ""):
        return None  # the always-written zero IntOrString of a non-pointer field
    return result


def _quantity(data: bytes) -> str:
    text = ""
    for number, wire_type, value in iter_fields(data):
        if number == 1:
            text = _text(_expect_bytes(wire_type, value, "Quantity"))
    return text


def _time(field: Field, data: bytes) -> str | None:
    # An empty message is Go's zero time, which JSON writes as null: leave the field out.
    if not data:
        return None
    seconds = nanos = 0
    for number, wire_type, value in iter_fields(data):
        if number == 1:
            seconds = _signed64(_expect_int(wire_type, value, field.name))
        elif number == 2:
            nanos = _signed32(_expect_int(wire_type, value, field.name))
    try:
        when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    except (OverflowError, ValueError) as exc:
        raise ProtobufError(f"time out of range in field {field.name}") from exc
    # Formatted by hand: strftime("%Y") does not zero-pad years below 1000 everywhere, Go does.
    stamp = (f"{when.year:04d}-{when.month:02d}-{when.day:02d}"
             f"T{when.hour:02d}:{when.minute:02d}:{when.second:02d}")
    if field.kind == TIME:
        # metav1.Time keeps whole seconds only (its Unmarshal drops nanos), RFC 3339 in UTC.
        return stamp + "Z"
    if not 0 <= nanos < 1_000_000_000:
        raise ProtobufError(f"nanos out of range in field {field.name}")
    # metav1.MicroTime: RFC 3339 with exactly six fractional digits, truncated like Go's Format.
    return f"{stamp}.{nanos // 1000:06d}Z"


def _raw_json(field: Field, data: bytes) -> Any:
    raw = b""
    for number, wire_type, value in iter_fields(data):
        if number == 1:
            raw = _expect_bytes(wire_type, value, field.name)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ProtobufError(f"field {field.name} does not hold JSON", unsupported=True) from exc


def _expect_bytes(wire_type: int, value: int | bytes, name: str) -> bytes:
    if wire_type != LEN or not isinstance(value, bytes):
        raise ProtobufError(f"wrong wire type {wire_type} for field {name}")
    return value


def _expect_int(wire_type: int, value: int | bytes, name: str) -> int:
    if wire_type != VARINT or not isinstance(value, int):
        raise ProtobufError(f"wrong wire type {wire_type} for field {name}")
    return value


def _text(data: bytes) -> str:
    # Go does not validate UTF-8 in proto2 strings, and its JSON encoder writes invalid bytes as
    # U+FFFD; do the same rather than refuse the body.
    return data.decode("utf-8", errors="replace")
