"""Defaults a real Kubernetes API server fills into built-in objects.

Called by the kubesim request handlers on every write of a built-in kind (create, update, patch,
server-side apply, dry runs included) before the object is validated and stored, so that what
clients read back matches a real server. Without these, a controller that diffs its desired
manifest against the live object would see drift a real cluster would also show (and we would
hide), e.g. `imagePullPolicy`, `strategy` or a Service's `clusterIP`.

Three sources of defaults on a real server are folded in here, because a client cannot tell them
apart:
- the `SetDefaults_*` functions and declarative `+default` tags of `pkg/apis/<group>/<version>`;
- the REST strategies and registries that fill fields on create (Service cluster IPs, IP families
  and node ports; a Namespace's `spec.finalizers`);
- wire-format artifacts of Go's JSON encoding that every response carries (a container's
  `resources: {}`, a Service's `status.loadBalancer: {}`).

Every default only fills what is absent, so calling this again on a stored object changes nothing;
callers that handle an update must carry allocated values (`spec.clusterIP(s)`, node ports) over
from the stored object first, as the real registry does, or new ones are allocated.
"""

from __future__ import annotations

import base64
import copy
import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any

JSON = dict[str, Any]
ClusterIPAllocator = Callable[[], str]

__all__ = ["apply_defaults", "image_pull_policy"]


def apply_defaults(
    obj: JSON,
    *,
    group: str,
    kind: str,
    assign_cluster_ip: ClusterIPAllocator | None = None,
) -> None:
    """Fill in, in place, the fields a real API server defaults for `group`/`kind`.

    `group` is "" for the core group. Kinds without server-side defaults (and custom resources,
    whose defaults come from their schema, see `crdschema`) are left untouched.
    `assign_cluster_ip` hands out Service cluster IPs; without it a module-wide counter in
    10.96.0.0/12 is used.
    """
    if not isinstance(obj, dict):
        return
    handler = _HANDLERS.get((group, kind))
    if handler is not None:
        handler(obj, assign_cluster_ip)


# --------------------------------------------------------------------------------------------
# Small helpers for walking loosely-typed JSON. Malformed input (a list where an object belongs)
# is left alone rather than raising: validation after defaulting reports it, as on a real server.


def _child(parent: JSON, key: str) -> JSON | None:
    """The object at `parent[key]`, created when absent; None if something else is there."""
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    return value if isinstance(value, dict) else None


def _existing(parent: Any, key: str) -> JSON | None:
    """The object at `parent[key]` if it is one; never creates it."""
    if not isinstance(parent, dict):
        return None
    value = parent.get(key)
    return value if isinstance(value, dict) else None


def _items(parent: Any, key: str) -> Iterator[JSON]:
    """The object entries of the list at `parent[key]`."""
    if not isinstance(parent, dict):
        return
    value = parent.get(key)
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                yield item


def _setdefault(parent: JSON, key: str, value: Any) -> None:
    # Go leaves a field at its zero value when the JSON had null, and the defaulter then fills it,
    # so an explicit null is treated like an absent field.
    if parent.get(key) is None:
        parent[key] = value


def _set_if_empty(parent: JSON, key: str, value: Any) -> None:
    # For Go string and slice fields the defaulters test `== ""` / `len() == 0`, so an explicit
    # empty value gets the default too.
    current = parent.get(key)
    if current is None or current == "" or current == []:
        parent[key] = value


# --------------------------------------------------------------------------------------------
# Pod specs and containers (core/v1 SetDefaults_PodSpec, _Container, _Probe, volume sources).

_DEFAULT_MODE = 0o644  # 420: SecretVolumeSourceDefaultMode and its siblings


def _default_pod_template(template: JSON | None) -> None:
    if template is not None:
        spec = _existing(template, "spec")
        if spec is not None:
            _default_pod_spec(spec, is_pod=False)


def _default_pod_spec(spec: JSON, *, is_pod: bool) -> None:
    _set_if_empty(spec, "dnsPolicy", "ClusterFirst")
    # Templates get Always too, even a Job's, where validation then demands OnFailure or Never;
    # that is what a real server does, so a Job manifest must name its restartPolicy.
    _set_if_empty(spec, "restartPolicy", "Always")
    _setdefault(spec, "securityContext", {})
    _setdefault(spec, "terminationGracePeriodSeconds", 30)
    _set_if_empty(spec, "schedulerName", "default-scheduler")

    for volume in _items(spec, "volumes"):
        _default_volume(volume)
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in _items(spec, key):
            _default_container(container)

    if is_pod:
        # SetDefaults_Pod, not SetDefaults_PodSpec: these materialise on Pods only, never in the
        # templates of workloads (upstream keeps templates stable across upgrades this way).
        _setdefault(spec, "enableServiceLinks", True)
        for key in ("initContainers", "containers"):
            for container in _items(spec, key):
                _default_requests_from_limits(container)
        if spec.get("hostNetwork") is True:
            for key in ("initContainers", "containers"):
                for container in _items(spec, key):
                    for port in _items(container, "ports"):
                        if not port.get("hostPort"):
                            port["hostPort"] = port.get("containerPort")


def _default_requests_from_limits(container: JSON) -> None:
    resources = _existing(container, "resources")
    limits = _existing(resources, "limits")
    if resources is None or limits is None:
        return
    requests = _child(resources, "requests")
    if requests is None:
        return
    for name, quantity in limits.items():
        requests.setdefault(name, quantity)


# Keys of a Volume that are not its source; a volume with nothing else is an emptyDir.
_VOLUME_NON_SOURCE_KEYS = frozenset({"name"})


def _default_volume(volume: JSON) -> None:
    if not any(
        key not in _VOLUME_NON_SOURCE_KEYS and value is not None for key, value in volume.items()
    ):
        volume["emptyDir"] = {}
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        source = _existing(volume, key)
        if source is not None:
            _setdefault(source, "defaultMode", _DEFAULT_MODE)
    for item in _items(_existing(volume, "downwardAPI"), "items"):
        _default_field_ref(_existing(item, "fieldRef"))
    for projection in _items(_existing(volume, "projected"), "sources"):
        token = _existing(projection, "serviceAccountToken")
        if token is not None:
            _setdefault(token, "expirationSeconds", 3600)
        for item in _items(_existing(projection, "downwardAPI"), "items"):
            _default_field_ref(_existing(item, "fieldRef"))
    host_path = _existing(volume, "hostPath")
    if host_path is not None:
        _setdefault(host_path, "type", "")
    claim_template = _existing(_existing(volume, "ephemeral"), "volumeClaimTemplate")
    claim_spec = _existing(claim_template, "spec")
    if claim_spec is not None:
        _setdefault(claim_spec, "volumeMode", "Filesystem")


def _default_field_ref(field_ref: JSON | None) -> None:
    if field_ref is not None:
        _set_if_empty(field_ref, "apiVersion", "v1")


def _default_container(container: JSON) -> None:
    if not container.get("imagePullPolicy"):
        image = container.get("image")
        container["imagePullPolicy"] = image_pull_policy(image if isinstance(image, str) else "")
    _set_if_empty(container, "terminationMessagePath", "/dev/termination-log")
    _set_if_empty(container, "terminationMessagePolicy", "File")
    # ResourceRequirements is a non-pointer struct, so Go's encoder always writes it.
    _setdefault(container, "resources", {})
    for port in _items(container, "ports"):
        _set_if_empty(port, "protocol", "TCP")
    for env in _items(container, "env"):
        _default_field_ref(_existing(_existing(env, "valueFrom"), "fieldRef"))
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = _existing(container, key)
        if probe is not None:
            _default_probe(probe)
    lifecycle = _existing(container, "lifecycle")
    for key in ("postStart", "preStop"):
        handler = _existing(lifecycle, key)
        if handler is not None:
            _default_handler(handler)


def _default_probe(probe: JSON) -> None:
    # Go tests these int32 fields against 0, so an explicit 0 is replaced as well.
    for key, value in (
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ):
        if not probe.get(key):
            probe[key] = value
    _default_handler(probe)
    grpc = _existing(probe, "grpc")
    if grpc is not None:
        _setdefault(grpc, "service", "")  # `+default=""` on GRPCAction.Service


def _default_handler(handler: JSON) -> None:
    http_get = _existing(handler, "httpGet")
    if http_get is not None:
        _set_if_empty(http_get, "path", "/")
        _set_if_empty(http_get, "scheme", "HTTP")


# Image references as github.com/distribution/reference parses them (ParseNormalizedNamed).
# A reference that does not parse gets IfNotPresent, as upstream ignores the parse error.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}"
_REFERENCE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?"
)
_HEX64 = re.compile(r"[a-f0-9]{64}")


def image_pull_policy(image: str) -> str:
    """The imagePullPolicy a real server defaults for `image` (SetDefaults_Container).

    Always when the tag is `latest`, including the implied `latest` of a reference with neither
    tag nor digest; IfNotPresent otherwise (a digest without a tag, or an unparsable reference).
    """
    return "Always" if _image_tag(image) == "latest" else "IfNotPresent"


def _image_tag(image: str) -> str:
    # Repository path components must be lowercase; only a registry host (the first component,
    # when followed by more) may have capitals, which _REFERENCE encodes. A bare 64-hex string
    # is refused as ambiguous with an image ID.
    match = _REFERENCE.fullmatch(image)
    if match is None or _HEX64.fullmatch(image) or len(match.group("name")) > 255:
        return ""
    tag, digest = match.group("tag") or "", match.group("digest") or ""
    if not tag and not digest:
        return "latest"
    return tag


# --------------------------------------------------------------------------------------------
# Core group kinds.


def _pod(obj: JSON, _: ClusterIPAllocator | None) -> None:
    spec = _child(obj, "spec")
    if spec is not None:
        _default_pod_spec(spec, is_pod=True)


def _pod_template(obj: JSON, _: ClusterIPAllocator | None) -> None:
    _default_pod_template(_existing(obj, "template"))


def _replication_controller(obj: JSON, _: ClusterIPAllocator | None) -> None:
    spec = _child(obj, "spec")
    if spec is None:
        return
    _setdefault(spec, "replicas", 1)  # `+default=1` on ReplicationControllerSpec.Replicas
    template = _existing(spec, "template")
    labels = _existing(_existing(template, "metadata"), "labels")
    if labels is not None:
        # SetDefaults_ReplicationController: an RC without selector or labels takes the template's.
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        metadata = _child(obj, "metadata")
        if metadata is not None and not metadata.get("labels"):
            metadata["labels"] = dict(labels)
    _default_pod_template(template)


def _secret(obj: JSON, _: ClusterIPAllocator | None) -> None:
    _set_if_empty(obj, "type", "Opaque")
    # stringData is write-only: conversion to the internal type merges it into data (winning on
    # a clash) and it is never stored or returned.
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = _child(obj, "data")
        if data is not None:
            for key, value in string_data.items():
                if isinstance(value, str):
                    data[key] = base64.b64encode(value.encode()).decode("ascii")


def _namespace(obj: JSON, _: ClusterIPAllocator | None) -> None:
    metadata = _child(obj, "metadata")
    name = metadata.get("name") if metadata is not None else None
    # Namespaces created with generateName have no name yet and get no label.
    if metadata is not None and isinstance(name, str) and name:
        labels = _child(metadata, "labels")
        if labels is not None:
            labels["kubernetes.io/metadata.name"] = name  # always overwritten, never user-owned
    spec = _child(obj, "spec")
    if spec is not None:
        # Set by the namespace strategy on create; a real server also keeps it on update.
        _setdefault(spec, "finalizers", ["kubernetes"])
    status = _child(obj, "status")
    if status is not None:
        _set_if_empty(status, "phase", "Active")


def _pvc_template(obj: JSON) -> None:
    spec = _child(obj, "spec")
    if spec is not None:
        _setdefault(spec, "volumeMode", "Filesystem")
    status = _child(obj, "status")
    if status is not None:
        # Applied when a claim is read back too, so even a fresh claim reads as Pending.
        _set_if_empty(status, "phase", "Pending")


def _persistent_volume_claim(obj: JSON, _: ClusterIPAllocator | None) -> None:
    _pvc_template(obj)


def _persistent_volume(obj: JSON, _: ClusterIPAllocator | None) -> None:
    spec = _child(obj, "spec")
    if spec is not None:
        _set_if_empty(spec, "persistentVolumeReclaimPolicy", "Retain")
        _setdefault(spec, "volumeMode", "Filesystem")
    status = _child(obj, "status")
    if status is not None:
        _set_if_empty(status, "phase", "Pending")


def _endpoints(obj: JSON, _: ClusterIPAllocator | None) -> None:
    for subset in _items(obj, "subsets"):
        for port in _items(subset, "ports"):
            _set_if_empty(port, "protocol", "TCP")


# Service cluster IPs and node ports. The real allocators hand out random free values; callers
# (and tests) need only unique, valid ones, so plain counters do.
_SERVICE_CIDR_SIZE = 1 << 20  # 10.96.0.0/12
_cluster_ips = itertools.count(10)  # .1 is the `kubernetes` Service and .10 kube-dns upstream
_node_ports = itertools.count(0)
_NODE_PORT_FIRST, _NODE_PORT_LAST = 30000, 32767


def _next_cluster_ip() -> str:
    offset = next(_cluster_ips) % (_SERVICE_CIDR_SIZE - 2) + 1
    return f"10.{96 + (offset >> 16)}.{(offset >> 8) & 0xFF}.{offset & 0xFF}"


def _next_node_port(taken: set[int]) -> int:
    span = _NODE_PORT_LAST - _NODE_PORT_FIRST + 1
    for _ in range(span):
        port = _NODE_PORT_FIRST + next(_node_ports) % span
        if port not in taken:
            taken.add(port)
            return port
    raise RuntimeError("node port range exhausted")  # 2768 ports on one Service: not a real case


def _ip_family(ip: str) -> str:
    return "IPv6" if ":" in ip else "IPv4"


def _service(obj: JSON, assign_cluster_ip: ClusterIPAllocator | None) -> None:
    spec = _child(obj, "spec")
    if spec is None:
        return

    # SetDefaults_Service.
    _set_if_empty(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client_ip = _existing(_existing(spec, "sessionAffinityConfig"), "clientIP")
        if client_ip is None or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    _set_if_empty(spec, "type", "ClusterIP")
    svc_type = spec["type"]
    for port in _items(spec, "ports"):
        _set_if_empty(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    externally_accessible = svc_type in ("LoadBalancer", "NodePort") or (
        svc_type == "ClusterIP" and bool(spec.get("externalIPs"))
    )
    if externally_accessible:
        _set_if_empty(spec, "externalTrafficPolicy", "Cluster")
    if svc_type in ("ClusterIP", "NodePort", "LoadBalancer"):
        _setdefault(spec, "internalTrafficPolicy", "Cluster")
    if svc_type == "LoadBalancer":
        _setdefault(spec, "allocateLoadBalancerNodePorts", True)
    status = _child(obj, "status")
    load_balancer = _child(status, "loadBalancer") if status is not None else None
    if svc_type == "LoadBalancer":
        for ingress in _items(load_balancer, "ingress"):
            if ingress.get("ip") and ingress.get("ipMode") is None:
                ingress["ipMode"] = "VIP"

    if svc_type == "ExternalName":
        return  # no cluster IP, IP families or node ports

    # v1 -> internal conversion keeps clusterIP and clusterIPs[0] in step.
    cluster_ip = spec.get("clusterIP") or ""
    cluster_ips = spec.get("clusterIPs")
    if not isinstance(cluster_ips, list):
        cluster_ips = []
    if cluster_ip and not cluster_ips:
        cluster_ips = [cluster_ip]
    elif cluster_ips and not cluster_ip and isinstance(cluster_ips[0], str):
        cluster_ip = cluster_ips[0]
    headless = cluster_ip == "None"

    # The service registry's initIPFamilyFields, for a single-stack IPv4 cluster.
    if spec.get("ipFamilyPolicy") is None:
        if headless and not spec.get("selector"):
            spec["ipFamilyPolicy"] = "RequireDualStack"
        else:
            spec["ipFamilyPolicy"] = "SingleStack"
    families = spec.get("ipFamilies")
    if not isinstance(families, list) or not families:
        if headless or not cluster_ips:
            families = ["IPv4"]
        else:
            families = [_ip_family(ip) for ip in cluster_ips if isinstance(ip, str)][:2]
        if headless and not spec.get("selector") and spec["ipFamilyPolicy"] != "SingleStack":
            # Selectorless headless Services may name families the cluster lacks.
            families = [*families, "IPv6" if families[0] == "IPv4" else "IPv4"]
        spec["ipFamilies"] = families

    if not headless and not cluster_ip:
        cluster_ip = (assign_cluster_ip or _next_cluster_ip)()
        cluster_ips = [cluster_ip, *cluster_ips[1:]]
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
        spec["clusterIPs"] = cluster_ips

    # Node ports: for NodePort Services and LoadBalancers that allocate them. Ports sharing a
    # port number (TCP and UDP 53) share a node port, as the registry does.
    wants_node_ports = svc_type == "NodePort" or (
        svc_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False
    )
    ports = list(_items(spec, "ports"))
    taken = {p["nodePort"] for p in ports if isinstance(p.get("nodePort"), int)}
    if wants_node_ports:
        by_port: dict[Any, int] = {p.get("port"): p["nodePort"] for p in ports if p.get("nodePort")}
        for port in ports:
            if not port.get("nodePort"):
                node_port = by_port.get(port.get("port")) or _next_node_port(taken)
                port["nodePort"] = by_port[port.get("port")] = node_port
    if (
        svc_type == "LoadBalancer"
        and spec.get("externalTrafficPolicy") == "Local"
        and not spec.get("healthCheckNodePort")
    ):
        spec["healthCheckNodePort"] = _next_node_port(taken)


# --------------------------------------------------------------------------------------------
# apps/v1.


def _deployment(obj: JSON, _: ClusterIPAllocator | None) -> None:
    spec = _child(obj, "spec")
    if spec is None:
        return
    _setdefault(spec, "replicas", 1)
    strategy = _child(spec, "strategy")
    if strategy is not None:
        _set_if_empty(strategy, "type", "RollingUpdate")
        # A Recreate strategy gets no rollingUpdate block (validation forbids one).
        if strategy["type"] == "RollingUpdate":
            rolling = _child(strategy, "rollingUpdate")
            if rolling is not None:
                _setdefault(rolling, "maxUnavailable", "25%")
                _setdefault(rolling, "maxSurge", "25%")
    _setdefault(spec, "revisionHistoryLimit", 10)
    _setdefault(spec, "progressDeadlineSeconds", 600)
    _default_pod_template(_existing(spec, "template"))


def _stateful_set(obj: JSON, _: ClusterIPAllocator | None) -> None:
    spec = _child(obj, "spec")
    if spec is None:
        return
    _set_if_empty(spec, "podManagementPolicy", "OrderedReady")
    strategy = _child(spec, "updateStrategy")
    if strategy is not None:
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
            _setdefault(strategy, "rollingUpdate", {})
        # Only an existing rollingUpdate block gets a partition: `type: RollingUpdate` written
        # without one stays without one.
        rolling = _existing(strategy, "rollingUpdate")
        if strategy["type"] == "RollingUpdate" and rolling is not None:
            _setdefault(rolling, "partition", 0)
    retention = _child(spec, "persistentVolumeClaimRetentionPolicy")
    if retention is not None:
        _set_if_empty(retention, "whenDeleted", "Retain")
        _set_if_empty(retention, "whenScaled", "Retain")
    _setdefault(spec, "replicas", 1)
    _setdefault(spec, "revisionHistoryLimit", 10)
    _default_pod_template(_existing(spec, "template"))
    for claim in _items(spec, "volumeClaimTemplates"):
        _pvc_template(claim)


def _daemon_set(obj: JSON, _: ClusterIPAllocator | None) -> None:
    spec = _child(obj, "spec")
    if spec is None:
        return
    strategy = _child(spec, "updateStrategy")
    if strategy is not None:
        _set_if_empty(strategy, "type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = _child(strategy, "rollingUpdate")
            if rolling is not None:
                # Integers here, unlike a Deployment's percentages.
                _setdefault(rolling, "maxUnavailable", 1)
                _setdefault(rolling, "maxSurge", 0)
    _setdefault(spec, "revisionHistoryLimit", 10)
    _default_pod_template(_existing(spec, "template"))


def _replica_set(obj: JSON, _: ClusterIPAllocator | None) -> None:
    spec = _child(obj, "spec")
    if spec is None:
        return
    _setdefault(spec, "replicas", 1)
    _default_pod_template(_existing(spec, "template"))


# --------------------------------------------------------------------------------------------
# batch/v1.

_MAX_INT32 = 2**31 - 1


def _default_pod_failure_policy(job_spec: JSON) -> None:
    for rule in _items(_existing(job_spec, "podFailurePolicy"), "rules"):
        for pattern in _items(rule, "onPodConditions"):
            _set_if_empty(pattern, "status", "True")


def _job(obj: JSON, _: ClusterIPAllocator | None) -> None:
    spec = _child(obj, "spec")
    if spec is None:
        return
    # Both unset: a single-pod Job. Only completions set: parallelism 1. Only parallelism set:
    # completions stays unset (a work-queue Job).
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    _setdefault(spec, "parallelism", 1)
    _setdefault(
        spec, "backoffLimit", _MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    )
    template = _existing(spec, "template")
    labels = _existing(_existing(template, "metadata"), "labels")
    metadata = _child(obj, "metadata")
    if labels is not None and metadata is not None and not metadata.get("labels"):
        metadata["labels"] = dict(labels)
    _set_if_empty(spec, "completionMode", "NonIndexed")
    _setdefault(spec, "suspend", False)
    _default_pod_failure_policy(spec)
    _setdefault(
        spec,
        "podReplacementPolicy",
        "Failed" if spec.get("podFailurePolicy") is not None else "TerminatingOrFailed",
    )
    _default_pod_template(template)


def _cron_job(obj: JSON, _: ClusterIPAllocator | None) -> None:
    spec = _child(obj, "spec")
    if spec is None:
        return
    _set_if_empty(spec, "concurrencyPolicy", "Allow")
    _setdefault(spec, "suspend", False)
    _setdefault(spec, "successfulJobsHistoryLimit", 3)
    _setdefault(spec, "failedJobsHistoryLimit", 1)
    # The job template gets only type-level defaults (pod spec, failure-policy patterns); the
    # Job-level ones (backoffLimit, completions...) land on each Job the controller creates.
    job_spec = _existing(_existing(spec, "jobTemplate"), "spec")
    if job_spec is not None:
        _default_pod_failure_policy(job_spec)
        _default_pod_template(_existing(job_spec, "template"))


# --------------------------------------------------------------------------------------------
# Other groups.


def _network_policy(obj: JSON, _: ClusterIPAllocator | None) -> None:
    spec = _child(obj, "spec")
    if spec is None:
        return
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    for direction in ("ingress", "egress"):
        for rule in _items(spec, direction):
            for port in _items(rule, "ports"):
                _set_if_empty(port, "protocol", "TCP")


def _ingress_class(obj: JSON, _: ClusterIPAllocator | None) -> None:
    parameters = _existing(_existing(obj, "spec"), "parameters")
    if parameters is not None:
        _set_if_empty(parameters, "scope", "Cluster")


_HPA_SCALE_UP = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
# No stabilizationWindowSeconds: upstream leaves it to the controller's command-line flag.
_HPA_SCALE_DOWN = {
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}


def _hpa_rules(given: Any, defaults: JSON) -> JSON:
    rules = copy.deepcopy(defaults)
    if isinstance(given, dict):
        rules.update({k: v for k, v in given.items() if v is not None})
    return rules


def _horizontal_pod_autoscaler(obj: JSON, _: ClusterIPAllocator | None) -> None:
    spec = _child(obj, "spec")
    if spec is None:
        return
    _setdefault(spec, "minReplicas", 1)
    if obj.get("apiVersion") == "autoscaling/v1" or "targetCPUUtilizationPercentage" in spec:
        return  # autoscaling/v1 defaults only minReplicas
    if not spec.get("metrics"):
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            }
        ]
    # Only a behavior that is present gets its unset rules filled in.
    behavior = _existing(spec, "behavior")
    if behavior is not None:
        behavior["scaleUp"] = _hpa_rules(behavior.get("scaleUp"), _HPA_SCALE_UP)
        behavior["scaleDown"] = _hpa_rules(behavior.get("scaleDown"), _HPA_SCALE_DOWN)


_RBAC_GROUP = "rbac.authorization.k8s.io"


def _role_binding(obj: JSON, _: ClusterIPAllocator | None) -> None:
    role_ref = _existing(obj, "roleRef")
    if role_ref is not None:
        _set_if_empty(role_ref, "apiGroup", _RBAC_GROUP)
    for subject in _items(obj, "subjects"):
        if not subject.get("apiGroup"):
            if subject.get("kind") in ("User", "Group"):
                subject["apiGroup"] = _RBAC_GROUP
            else:
                # ServiceAccounts have the empty group, which JSON (omitempty) leaves out.
                subject.pop("apiGroup", None)


_Handler = Callable[[JSON, ClusterIPAllocator | None], None]

# Kinds absent here (ConfigMap, ServiceAccount, Ingress, Role, ClusterRole,
# PodDisruptionBudget...) have no server-side defaults in their preferred versions.
_HANDLERS: dict[tuple[str, str], _Handler] = {
    ("", "Pod"): _pod,
    ("", "PodTemplate"): _pod_template,
    ("", "ReplicationController"): _replication_controller,
    ("", "Service"): _service,
    ("", "Secret"): _secret,
    ("", "Namespace"): _namespace,
    ("", "PersistentVolumeClaim"): _persistent_volume_claim,
    ("", "PersistentVolume"): _persistent_volume,
    ("", "Endpoints"): _endpoints,
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _stateful_set,
    ("apps", "DaemonSet"): _daemon_set,
    ("apps", "ReplicaSet"): _replica_set,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cron_job,
    ("networking.k8s.io", "NetworkPolicy"): _network_policy,
    ("networking.k8s.io", "IngressClass"): _ingress_class,
    ("autoscaling", "HorizontalPodAutoscaler"): _horizontal_pod_autoscaler,
    (_RBAC_GROUP, "RoleBinding"): _role_binding,
    (_RBAC_GROUP, "ClusterRoleBinding"): _role_binding,
}
