"""The object store and write pipeline of kubesim: what a real API server's registry and etcd do.

The HTTP layer (`server`) parses requests and calls the operations here; every operation runs to
completion on the server's event-loop thread, so each write is atomic with respect to all other
requests without any locks. Stored objects are never mutated after they are stored: a write
builds a new dict, so watch events and responses can share them safely.

Size limits, as a real cluster has them (the request body limit is the HTTP layer's):
- validation: the annotations of an object total at most 256 KiB (422), the limit client-side
  `kubectl apply` meets with its last-applied annotation;
- storage: etcd refuses a write whose request is over its `--max-request-bytes` (1.5 MiB by
  default), and the etcd client in kube-apiserver refuses to send one over its 2 MiB message
  limit; either way the client gets a 500 with etcd's or gRPC's text and no reason. A real
  server stores protobuf (JSON for custom resources); kubesim measures the object's compact JSON
  encoding, which it serialises once and hands to the HTTP layer for the response (`encoded`).
  JSON is a little larger than protobuf (quotes, escapes, six bytes for each non-ASCII
  character), so kubesim refuses slightly earlier than a real server would. Dry runs never reach
  etcd and are not checked.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import heapq
import itertools
import json
import random
import string
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from . import (
    builtin_schema,
    crdschema,
    defaults,
    errors,
    fieldmanager,
    patches,
    qos,
    workloads,
)
from .errors import StatusError
from .registry import Registry, ResourceType

Obj = dict[str, Any]
ObjKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects
TypeKey = tuple[str, str]  # (group, plural)

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
CONTROLLER_MANAGER = "kube-controller-manager"
# apps/v1 carries a DaemonSet's spec.templateGeneration (an internal field) in this annotation.
DAEMONSET_TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"
CRD_CONTROLLER = "kube-apiserver"
# The CRD conditions kube-apiserver's own controllers maintain: (type, reason, message) once the
# names are accepted and the CRD is established.
_CRD_CONDITIONS = (
    ("NamesAccepted", "NoConflicts", "no conflicts found"),
    ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
)

# The built-in registries (of those kubesim serves) whose store sets ReturnDeletedObject, so a
# DELETE answers with the object; the others answer with a Success Status. Namespaces always
# answer with the object (their DELETE only starts termination); custom resources do too.
_RETURN_DELETED_OBJECT = frozenset({
    ("", "Pod"), ("", "Service"), ("", "PersistentVolumeClaim"), ("", "PersistentVolume"),
})

# Metadata fields the server owns: never taken from a request body.
_SERVER_METADATA = (
    "uid",
    "creationTimestamp",
    "resourceVersion",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
)

# ObjectMeta fields with `omitempty` that clients may send empty.
_OMITEMPTY_METADATA = ("labels", "annotations", "finalizers", "ownerReferences")

_DNS1123_SUBDOMAIN = 253

# apimachinery's TotalAnnotationSizeLimitB: keys plus values, in bytes.
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
# etcd's --max-request-bytes default.
ETCD_MAX_REQUEST_BYTES = 1536 * 1024
# The etcd client's default MaxCallSendMsgSize, which kube-apiserver leaves as it is.
ETCD_CLIENT_MAX_SEND_BYTES = 2 * 1024 * 1024
# A put in a compare-and-swap transaction names its key three times (compare, put, and the range
# read on failure), plus a few bytes of protobuf tags and lengths.
_ETCD_TXN_OVERHEAD = 16

# Metadata that a kind's status strategy (PrepareForUpdate) takes back from the stored object on
# a /status write; every other metadata field keeps what the request wrote. Custom resources
# keep none of it (their status strategy copies the stored object whole, managedFields aside).
_STATUS_RESET_METADATA: dict[tuple[str, str], tuple[str, ...]] = {
    ("apps", "Deployment"): ("labels",),
    ("", "Pod"): ("ownerReferences",),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): (
        "labels", "annotations", "ownerReferences"),
}

_MISSING: Any = object()


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class WatchEvent:
    rv: int
    type_key: TypeKey
    namespace: str
    type: str  # ADDED, MODIFIED, DELETED
    obj: Obj
    old: Obj | None


class Watcher(Protocol):
    type_key: TypeKey
    namespace: str  # "" watches every namespace

    def deliver(self, event: WatchEvent) -> None: ...


@dataclass(order=True)
class _Timer:
    when: float
    seq: int
    action: Callable[[], None] = field(compare=False)


def _strip_for_compare(obj: Obj) -> Obj:
    """The object without what every write changes anyway, to detect no-op writes."""
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta.pop("resourceVersion", None)
    meta.pop("managedFields", None)
    out["metadata"] = meta
    return out


def _managed_without_time(obj: Obj) -> list[Any]:
    entries = (obj.get("metadata") or {}).get("managedFields") or []
    return [{k: v for k, v in e.items() if k != "time"} for e in entries]


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


_META_STRINGS = ("name", "generateName", "namespace", "uid", "resourceVersion",
                 "creationTimestamp", "deletionTimestamp", "selfLink")


def check_shape(obj: Any) -> None:
    """Reject bodies a real server could not decode into its typed structs (400), so that no
    later step trips over a wrongly typed field."""
    if not isinstance(obj, dict):
        raise errors.bad_request("the body of the request must be a JSON object")
    for f in ("apiVersion", "kind"):
        if f in obj and not isinstance(obj[f], str):
            raise errors.bad_request(f"json: cannot unmarshal {type(obj[f]).__name__} into Go "
                                     f"struct field .{f} of type string")
    meta = obj.get("metadata", {})
    if meta is None:
        return
    if not isinstance(meta, dict):
        raise errors.bad_request("json: cannot unmarshal into Go struct field .metadata of type "
                                 "v1.ObjectMeta")
    for f in _META_STRINGS:
        if meta.get(f) is not None and not isinstance(meta[f], str):
            raise errors.bad_request(f"json: cannot unmarshal {type(meta[f]).__name__} into Go "
                                     f"struct field ObjectMeta.metadata.{f} of type string")
    for f in ("labels", "annotations"):
        value = meta.get(f)
        if value is None:
            continue
        if not isinstance(value, dict) or not all(
            isinstance(v, str) for v in value.values()
        ):
            raise errors.bad_request(f"json: cannot unmarshal into Go struct field "
                                     f"ObjectMeta.metadata.{f} of type map[string]string")
    fins = meta.get("finalizers")
    if fins is not None and (not isinstance(fins, list)
                             or not all(isinstance(x, str) for x in fins)):
        raise errors.bad_request("json: cannot unmarshal into Go struct field "
                                 "ObjectMeta.metadata.finalizers of type []string")
    refs = meta.get("ownerReferences")
    if refs is not None and (not isinstance(refs, list)
                             or not all(isinstance(x, dict) for x in refs)):
        raise errors.bad_request("json: cannot unmarshal into Go struct field "
                                 "ObjectMeta.metadata.ownerReferences of type "
                                 "[]v1.OwnerReference")
    gen = meta.get("generation")
    if gen is not None and (not isinstance(gen, int) or isinstance(gen, bool)):
        raise errors.bad_request("json: cannot unmarshal into Go struct field "
                                 "ObjectMeta.metadata.generation of type int64")


def scale_of(obj: Obj) -> Obj:
    """The autoscaling/v1 Scale of a scalable object (scaleFromDeployment and its siblings).
    `spec.replicas` is omitempty in Scale, so zero replicas leave `spec` empty."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "ReplicationController":
        # scaleFromRC: an RC's selector is a plain label map, not a LabelSelector.
        sel = spec.get("selector") or {}
    else:
        sel = (spec.get("selector") or {}).get("matchLabels") or {}
    meta = obj["metadata"]
    scale: Obj = {
        "kind": "Scale",
        "apiVersion": fieldmanager.SCALE_API_VERSION,
        "metadata": {
            "name": meta["name"],
            "namespace": meta.get("namespace", ""),
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0)},
    }
    if spec.get("replicas"):
        scale["spec"]["replicas"] = spec["replicas"]
    selector = ",".join(f"{k}={v}" for k, v in sorted(sel.items()))
    if selector:
        scale["status"]["selector"] = selector
    return scale


def _typed_scale(body: Any) -> Obj:
    """A written Scale as decoding it into the Go type leaves it: unknown fields gone, a zero or
    missing spec.replicas omitted (the field manager sees the typed object), wrong types 400."""
    if not isinstance(body, dict):
        raise errors.bad_request("the body of the request must be an object")
    check_shape(body)
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    if not isinstance(spec, dict) or not isinstance(status, dict):
        raise errors.bad_request("json: cannot unmarshal into Go struct field Scale.spec of "
                                 "type v1.ScaleSpec")
    replicas = spec.get("replicas", 0)
    if replicas is None:
        replicas = 0
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        raise errors.bad_request(f"json: cannot unmarshal {type(replicas).__name__} into Go "
                                 "struct field ScaleSpec.spec.replicas of type int32")
    out: Obj = {
        "kind": "Scale",
        "apiVersion": fieldmanager.SCALE_API_VERSION,
        "metadata": copy.deepcopy(body.get("metadata") or {}),
        "spec": {"replicas": replicas} if replicas else {},
        "status": {"replicas": status.get("replicas") or 0},
    }
    if status.get("selector"):
        out["status"]["selector"] = status["selector"]
    return out


def _validate_name(rt: ResourceType, name: str) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if len(name) > _DNS1123_SUBDOMAIN:
        problems.append(("metadata.name", f'Invalid value: "{name}": must be no more than 253 '
                                          "characters"))
    import re

    if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name):
        problems.append(
            (
                "metadata.name",
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower '
                "case alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character",
            )
        )
    if rt.kind == "Namespace" and (len(name) > 63 or "." in name):
        problems.append(("metadata.name", f'Invalid value: "{name}": a lowercase RFC 1123 label '
                                          "must consist of lower case alphanumeric characters or "
                                          "'-', and must start and end with an alphanumeric "
                                          "character"))
    return problems


def _unknown_field_warnings(paths: list[str], field_validation: str) -> list[str]:
    """What a real server does with fields its decoder dropped: a 400 strict decoding error
    (Strict), a warning each (Warn, the default), or nothing (Ignore). `paths`: `.spec.x`."""
    if not paths:
        return []
    if field_validation == "Strict":
        raise errors.bad_request(
            "strict decoding error: "
            + ", ".join(f'unknown field "{p.lstrip(".")}"' for p in paths)
        )
    if field_validation == "Ignore":
        return []
    return [f'unknown field "{p.lstrip(".")}"' for p in paths]


def _check_annotations_size(rt: ResourceType, meta: Obj) -> None:
    """ValidateObjectMeta's limit on the total size of the annotations (422)."""
    annotations = meta.get("annotations")
    if not isinstance(annotations, dict) or not annotations:
        return
    chars = sum(len(k) + len(v) for k, v in annotations.items())
    # A character is one to four UTF-8 bytes: encode only when the count cannot decide.
    if chars * 4 <= TOTAL_ANNOTATION_SIZE_LIMIT:
        return
    if chars <= TOTAL_ANNOTATION_SIZE_LIMIT:
        size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
        if size <= TOTAL_ANNOTATION_SIZE_LIMIT:
            return
    raise errors.invalid(rt.kind, str(meta.get("name") or ""), rt.group, [
        ("metadata.annotations",
         f"Too long: may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"),
    ], "FieldValueTooLong")


def _template_generation(obj: Obj) -> int:
    """A DaemonSet's templateGeneration from its annotation (0 when absent or not a number)."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(
        DAEMONSET_TEMPLATE_GENERATION)
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def _keep_template_generation(old: Obj, new: Obj) -> None:
    """The daemonset strategy's PrepareForUpdate: no request sets templateGeneration; it goes up
    by one when the pod template changes (generation does as well, with any spec change)."""
    generation = _template_generation(old)
    if ((old.get("spec") or {}).get("template") != (new.get("spec") or {}).get("template")):
        generation += 1
    meta = new.setdefault("metadata", {})
    annotations = meta.get("annotations")
    if not isinstance(annotations, dict):
        annotations = meta["annotations"] = {}
    annotations[DAEMONSET_TEMPLATE_GENERATION] = str(generation)


def _decode_error(rt: ResourceType, body: Any, exc: StatusError) -> StatusError:
    """Create and update (PUT) report a strict decoding error with the body's kind and version
    first, as the API server's transformDecodeError does; patches report it bare."""
    kind = body.get("kind") if isinstance(body, dict) else None
    if exc.code != 400 or not exc.message.startswith("strict decoding error") or not kind:
        return exc
    version = str(body.get("apiVersion") or "").rpartition("/")[2]
    return errors.bad_request(
        f'{kind} in version "{version}" cannot be handled as a {rt.kind}: {exc.message}')


class Store:
    """All objects of one emulated cluster, with the behaviours of the real registry."""

    def __init__(
        self,
        registry: Registry,
        *,
        history_size: int = 10_000,
        simulate: bool = True,
        sim_settings: workloads.SimSettings | None = None,
        etcd_max_request_bytes: int = ETCD_MAX_REQUEST_BYTES,
    ) -> None:
        self.registry = registry
        self.etcd_max_request_bytes = etcd_max_request_bytes
        # The last object written and its JSON encoding (measured against the etcd limits), so
        # the response to the write does not serialise it again.
        self._encoded: tuple[Obj, bytes] | None = None
        self.rv = 0
        self.objects: dict[TypeKey, dict[ObjKey, Obj]] = {}
        self.history: deque[WatchEvent] = deque(maxlen=history_size)
        # Watch requests from before this resourceVersion get 410 Expired, as after etcd
        # compaction.
        self.compacted_rv = 0
        self.watchers: set[Watcher] = set()
        self.simulate = simulate
        self.sim_settings = sim_settings or workloads.SimSettings()
        self._timers: list[_Timer] = []
        self._seq = itertools.count()
        # When each simulated object's current generation was written (monotonic seconds).
        self._changed_at: dict[str, float] = {}
        self._sim_scheduled: set[str] = set()
        # owner uid -> dependents, for garbage collection of ownerReferences.
        self._dependents: dict[str, set[tuple[TypeKey, ObjKey]]] = {}
        self._cluster_ips = itertools.count(10)
        self._node_ports = itertools.count(30000)
        self.wakeup: Callable[[], None] = lambda: None
        for ns in INITIAL_NAMESPACES:
            rt = self._rt("", "v1", "namespaces")
            self.create(rt, "", {"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"name": ns}}, manager="kube-apiserver")

    # ---------------------------------------------------------------- helpers

    def _rt(self, group: str, version: str, plural: str) -> ResourceType:
        rt = self.registry.lookup(group, version, plural)
        assert rt is not None
        return rt

    def _bucket(self, rt: ResourceType) -> dict[ObjKey, Obj]:
        return self.objects.setdefault(rt.key, {})

    def _next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def _assign_cluster_ip(self) -> str:
        n = next(self._cluster_ips)
        return f"10.96.{(n // 250) % 250}.{n % 250 + 1}"

    def add_timer(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._timers, _Timer(time.monotonic() + delay, next(self._seq), action))
        self.wakeup()

    def run_timers(self) -> float | None:
        """Run due timers; return seconds until the next one (None: none pending)."""
        now = time.monotonic()
        while self._timers and self._timers[0].when <= now:
            timer = heapq.heappop(self._timers)
            timer.action()
        if not self._timers:
            return None
        return max(0.0, self._timers[0].when - time.monotonic())

    def view(self, rt: ResourceType, obj: Obj) -> Obj:
        """The stored object as read through `rt`'s version (no conversion is needed: every
        version of a CRD shares one schema shape here, as with conversion strategy None)."""
        if obj.get("apiVersion") == rt.api_version:
            return obj
        out = dict(obj)
        out["apiVersion"] = rt.api_version
        return out

    # ---------------------------------------------------------------- events

    def _emit(self, rt: ResourceType, etype: str, obj: Obj, old: Obj | None) -> None:
        rv = int(obj["metadata"]["resourceVersion"])
        ns = obj["metadata"].get("namespace", "")
        event = WatchEvent(rv, rt.key, ns, etype, obj, old)
        if len(self.history) == self.history.maxlen and self.history:
            self.compacted_rv = self.history[0].rv
        self.history.append(event)
        for w in list(self.watchers):
            if w.type_key == rt.key and (not w.namespace or w.namespace == ns):
                w.deliver(event)

    def events_since(self, rv: int, type_key: TypeKey, namespace: str) -> list[WatchEvent]:
        if rv < self.compacted_rv:
            raise errors.expired(f"too old resource version: {rv} ({self.compacted_rv + 1})")
        return [
            e
            for e in self.history
            if e.rv > rv and e.type_key == type_key and (not namespace or e.namespace == namespace)
        ]

    def compact(self) -> None:
        """Forget all watch history, as etcd compaction does (for tests of 410 Expired)."""
        self.history.clear()
        self.compacted_rv = self.rv

    # ---------------------------------------------------------------- reads

    def get(self, rt: ResourceType, ns: str, name: str) -> Obj:
        obj = self._bucket(rt).get((ns, name))
        if obj is None:
            raise errors.not_found(rt.plural, name, rt.group)
        return self.view(rt, obj)

    def list_objects(
        self,
        rt: ResourceType,
        ns: str,
        predicates: Iterable[Callable[[Obj], bool]] = (),
        limit: int = 0,
        continue_token: str = "",
    ) -> tuple[list[Obj], str, int]:
        """Matching objects sorted by (namespace, name), with a continue token when limited and
        the number of matching objects left after this page."""
        preds = list(predicates)
        bucket = self._bucket(rt)
        keys = sorted(k for k in bucket if not ns or k[0] == ns)
        start_after: tuple[str, str] | None = None
        if continue_token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                start_after = (decoded["ns"], decoded["name"])
                token_rv = int(decoded.get("rv", 0))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise errors.bad_request(f"continue key is not valid: {exc}") from exc
            if token_rv < self.compacted_rv:
                # As after etcd compaction: the client must start the list again.
                raise errors.expired(
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter.")
        items: list[Obj] = []
        last: ObjKey | None = None
        remaining = 0
        for key in keys:
            if start_after is not None and key <= start_after:
                continue
            obj = bucket[key]
            if not all(p(obj) for p in preds):
                continue
            if limit and len(items) >= limit:
                remaining += 1
                continue
            items.append(self.view(rt, obj))
            last = key
        token = ""
        if remaining and last is not None:
            token = base64.urlsafe_b64encode(
                json.dumps({"rv": self.rv, "ns": last[0], "name": last[1]}).encode()
            ).decode()
        return items, token, remaining

    # ---------------------------------------------------------------- write pipeline

    def _check_namespace(self, rt: ResourceType, ns: str, name: str) -> None:
        if not rt.namespaced:
            return
        ns_obj = self.objects.get(("", "namespaces"), {}).get(("", ns))
        if ns_obj is None:
            raise errors.not_found("namespaces", ns)
        if ns_obj["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                rt.plural,
                name,
                rt.group,
                f"unable to create new content in namespace {ns} because it is being terminated",
                cause_type="NamespaceTerminating",
            )

    def _carry_allocations(self, rt: ResourceType, old: Obj, new: Obj) -> None:
        """A Service keeps the cluster IP and node ports it was given when an update leaves them
        out, as the real Service registry does."""
        if rt.kind != "Service" or rt.group != "":
            return
        old_spec = old.get("spec") or {}
        spec = new.get("spec")
        if not isinstance(spec, dict):
            return
        for f in ("clusterIP", "clusterIPs", "healthCheckNodePort"):
            if f in old_spec and f not in spec:
                spec[f] = copy.deepcopy(old_spec[f])
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p
                     for p in old_spec.get("ports") or [] if isinstance(p, dict)}
        for p in spec.get("ports") or []:
            if not isinstance(p, dict):
                continue
            prev = old_ports.get((p.get("port"), p.get("protocol", "TCP")))
            if prev and "nodePort" in prev and "nodePort" not in p:
                p["nodePort"] = prev["nodePort"]

    def _prepare(
        self,
        rt: ResourceType,
        obj: Obj,
        field_validation: str,
        old: Obj | None = None,
        *,
        subresource: str = "",
        dropped_status: Any = _MISSING,
        check_fields: bool = True,
    ) -> list[str]:
        """Defaults and schema handling every stored object goes through. Returns warnings.

        Built-in kinds: fields their types do not declare are dropped, with `field_validation`
        deciding between error, warning and silence (not with `check_fields=False`: server-side
        apply checked its configuration before merging). A write to the main resource of a kind
        with a status subresource keeps the stored status; the request's own status, which it
        drops (`dropped_status`), is checked all the same, as a real server decodes the whole
        body.
        """
        warnings: list[str] = []
        if old is not None:
            self._carry_allocations(rt, old, obj)
        check_shape(obj)
        if rt.builtin and check_fields:
            unknown = builtin_schema.prune_unknown(
                obj, rt.group, rt.version, rt.kind,
                skip_status=rt.has_status and subresource != "status")
            if dropped_status is not _MISSING:
                unknown += builtin_schema.unknown_fields(
                    {"status": dropped_status}, rt.group, rt.version, rt.kind)
            warnings.extend(_unknown_field_warnings(unknown, field_validation))
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            # ObjectMeta's maps and lists are omitempty: a real server never returns
            # `labels: {}` (e.g. after `kubectl label x k-`) or `finalizers: []`.
            for f in _OMITEMPTY_METADATA:
                if f in meta and not meta[f]:
                    del meta[f]
            _check_annotations_size(rt, meta)
        if rt.builtin:
            try:
                defaults.apply_defaults(
                    obj, group=rt.group, kind=rt.kind, assign_cluster_ip=self._assign_cluster_ip
                )
            except (TypeError, AttributeError, ValueError, KeyError) as exc:
                # Only a wrongly typed field gets here: a real server fails to decode it.
                raise errors.bad_request(
                    f"unable to decode {rt.kind}: a field has the wrong type ({exc})"
                ) from exc
        elif rt.schema is not None:
            pruned = crdschema.prune_and_default(obj, rt.schema)
            warnings.extend(_unknown_field_warnings(pruned, field_validation))
            problems = crdschema.validate(obj, rt.schema)
            if problems:
                raise errors.invalid(rt.kind, obj["metadata"].get("name", ""), rt.group,
                                     problems, "FieldValueInvalid")
        if rt.kind == "CustomResourceDefinition" and rt.group == "apiextensions.k8s.io":
            self._validate_crd(obj)
        return warnings

    def _validate_crd(self, obj: Obj) -> None:
        spec = obj.get("spec") or {}
        names = spec.get("names") or {}
        problems: list[tuple[str, str]] = []
        if not spec.get("group"):
            problems.append(("spec.group", "Required value"))
        if not names.get("plural"):
            problems.append(("spec.names.plural", "Required value"))
        if not names.get("kind"):
            problems.append(("spec.names.kind", "Required value"))
        if spec.get("scope") not in ("Namespaced", "Cluster"):
            problems.append(("spec.scope", f'Unsupported value: "{spec.get("scope")}": '
                                           'supported values: "Cluster", "Namespaced"'))
        versions = spec.get("versions") or []
        if not versions:
            problems.append(("spec.versions", "Invalid value: null: must have exactly one "
                                              "version marked as storage version"))
        elif sum(1 for v in versions if v.get("storage")) != 1:
            problems.append(("spec.versions", "Invalid value: must have exactly one version "
                                              "marked as storage version"))
        expected = f"{names.get('plural')}.{spec.get('group')}"
        if not problems and obj["metadata"].get("name") != expected:
            problems.append(("metadata.name", f'Invalid value: "{obj["metadata"].get("name")}": '
                                              f'must be spec.names.plural+"."+spec.group'))
        if problems:
            raise errors.invalid("CustomResourceDefinition", obj["metadata"].get("name", ""),
                                 "apiextensions.k8s.io", problems, "FieldValueRequired")

    def _check_identity(self, rt: ResourceType, body: Obj, ns: str, name: str) -> None:
        api_version = body.get("apiVersion")
        kind = body.get("kind")
        if kind and kind != rt.kind:
            raise errors.bad_request(
                f"the kind of the provided object ({kind}) does not match the resource "
                f"({rt.kind})"
            )
        if api_version:
            group, _, _version = str(api_version).rpartition("/")
            if group != rt.group:
                raise errors.bad_request(
                    f"the API version in the data ({api_version}) does not match the expected "
                    f"API version ({rt.api_version})"
                )
        meta = body.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        body_ns = (meta or {}).get("namespace")
        if rt.namespaced and body_ns and ns and body_ns != ns:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        body_name = (meta or {}).get("name")
        if name and body_name and body_name != name:
            raise errors.bad_request(
                "the name of the object "
                f"({body_name}) does not match the name on the URL ({name})"
            )

    def _store(self, rt: ResourceType, old: Obj | None, new: Obj, dry_run: bool) -> Obj:
        """Give `new` its resourceVersion and generation, store it and tell the watchers; a
        write that changes nothing returns the old object untouched."""
        if old is not None:
            if rt.group == "apps" and rt.kind == "DaemonSet":
                _keep_template_generation(old, new)
            if (
                _strip_for_compare(old) == _strip_for_compare(new)
                and _managed_without_time(old) == _managed_without_time(new)
            ):
                return old
            if rt.has_generation and _spec_part(old) != _spec_part(new):
                new["metadata"]["generation"] = int(old["metadata"].get("generation") or 1) + 1
        if dry_run:
            return new
        meta = new["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        meta["resourceVersion"] = str(self.rv + 1)
        encoded = json.dumps(new, separators=(",", ":")).encode()
        self._check_storage_size(rt, key, len(encoded))
        self._next_rv()
        self._encoded = (new, encoded)
        self._bucket(rt)[key] = new
        self._index_owners(rt, key, old, new)
        self._emit(rt, "ADDED" if old is None else "MODIFIED", new, old)
        self._after_write(rt, old, new)
        return new

    def _check_storage_size(self, rt: ResourceType, key: ObjKey, size: int) -> None:
        """What etcd and its client do with a write too large for them (see the module
        docstring); the API server passes their errors on as a 500 with no reason."""
        ns, name = key
        etcd_key = "/".join(p for p in ("/registry", "" if rt.builtin else rt.group, rt.plural,
                                        ns, name) if p)
        request = size + 3 * len(etcd_key) + _ETCD_TXN_OVERHEAD
        if request > ETCD_CLIENT_MAX_SEND_BYTES:
            raise StatusError(500, "", "rpc error: code = ResourceExhausted desc = trying to "
                                       f"send message larger than max ({request} vs. "
                                       f"{ETCD_CLIENT_MAX_SEND_BYTES})")
        if request > self.etcd_max_request_bytes:
            raise StatusError(500, "", "etcdserver: request is too large")

    def encoded(self, obj: Obj) -> bytes | None:
        """The JSON of `obj` if it is the object the last write stored (as it was measured)."""
        if self._encoded is not None and self._encoded[0] is obj:
            return self._encoded[1]
        return None

    def _index_owners(
        self, rt: ResourceType, key: ObjKey, old: Obj | None, new: Obj | None
    ) -> None:
        def owners(o: Obj | None) -> set[str]:
            if not o:
                return set()
            return {r.get("uid", "") for r in o["metadata"].get("ownerReferences") or []}

        before, after = owners(old), owners(new)
        for uid in before - after:
            deps = self._dependents.get(uid)
            if deps:
                deps.discard((rt.key, key))
        for uid in after - before:
            self._dependents.setdefault(uid, set()).add((rt.key, key))

    def _after_write(self, rt: ResourceType, old: Obj | None, new: Obj) -> None:
        if rt.group == "apiextensions.k8s.io" and rt.plural == "customresourcedefinitions":
            self._crd_written(new)
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            if rt.kind == "Namespace":
                return
            self._remove(rt, new)
            return
        if self.simulate and old is None and rt.group == "" and rt.kind == "Namespace":
            self._schedule_default_service_account(meta["name"])
        if self.simulate and (rt.group, rt.kind) in workloads.SIMULATED_KINDS:
            uid = meta["uid"]
            if old is None or old["metadata"].get("generation") != meta.get("generation"):
                self._changed_at[uid] = time.monotonic()
            self._schedule_sim(rt, uid, (meta.get("namespace", ""), meta["name"]), 0.0)

    # ---------------------------------------------------------------- create / update / patch

    def create(
        self,
        rt: ResourceType,
        ns: str,
        body: Any,
        *,
        manager: str,
        dry_run: bool = False,
        field_validation: str = "",
    ) -> Obj:
        obj, _ = self._create(rt, ns, body, manager, dry_run, field_validation)
        return self.view(rt, obj)

    def _new_object(self, rt: ResourceType, ns: str, body: Any) -> Obj:
        check_shape(body)
        self._check_identity(rt, body, ns, "")
        obj: Obj = copy.deepcopy(body)
        obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind
        meta = obj.setdefault("metadata", {})
        for f in _SERVER_METADATA:
            meta.pop(f, None)
        meta.pop("managedFields", None)
        name = meta.get("name")
        if not name and meta.get("generateName"):
            suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
            name = meta["name"] = f"{meta['generateName']}{suffix}"
        if not name:
            raise errors.invalid(rt.kind, "", rt.group, [
                ("metadata.name", "Required value: name or generateName is required")
            ], "FieldValueRequired")
        if rt.namespaced:
            ns = ns or meta.get("namespace") or "default"
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        problems = _validate_name(rt, name)
        if problems:
            raise errors.invalid(rt.kind, name, rt.group, problems)
        return obj

    def _stamp_new(self, rt: ResourceType, obj: Obj) -> None:
        meta = obj["metadata"]
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if rt.has_generation:
            meta["generation"] = 1

    def _prepare_for_create(self, rt: ResourceType, obj: Obj) -> None:
        """What the kinds' REST strategies set on create (PrepareForCreate). A create by POST or
        PUT is tracked after this, so its manager owns these fields, as a real server's does
        (its field manager sees the versioned object, where they already appear); a server-side
        apply is tracked before, so the applier owns none of them."""
        if rt.group == "apps" and rt.kind == "DaemonSet":
            # templateGeneration starts at the request's value, or 1.
            generation = max(_template_generation(obj), 1)
            meta = obj["metadata"]
            if not isinstance(meta.get("annotations"), dict):
                meta["annotations"] = {}
            meta["annotations"][DAEMONSET_TEMPLATE_GENERATION] = str(generation)
        elif rt.group == "" and rt.kind == "PersistentVolume":
            # The PersistentVolumeLastPhaseTransitionTime strategy (GA in 1.31).
            obj["status"] = {"phase": "Pending", "lastPhaseTransitionTime": now_rfc3339()}

    def _initial_status(self, rt: ResourceType, obj: Obj) -> None:
        """The status the Pod strategy's PrepareForCreate gives every new Pod. It needs the
        defaulted spec (requests defaulted from limits decide the QoS class), which a real
        server has from decoding and kubesim only after `_prepare`; the status is not tracked
        for the creating manager either way (status is reset for writes to the main
        resource)."""
        if rt.group == "" and rt.kind == "Pod":
            obj["status"] = {"phase": "Pending", "qosClass": qos.pod_qos_class(obj.get("spec"))}

    def _create(
        self,
        rt: ResourceType,
        ns: str,
        body: Any,
        manager: str,
        dry_run: bool,
        field_validation: str,
    ) -> tuple[Obj, list[str]]:
        obj = self._new_object(rt, ns, body)
        meta = obj["metadata"]
        ns = meta.get("namespace", "")
        name = meta["name"]
        self._check_namespace(rt, ns, name)
        if (ns, name) in self._bucket(rt):
            raise errors.already_exists(rt.plural, name, rt.group)
        dropped_status = obj.pop("status", _MISSING) if rt.has_status else _MISSING
        self._stamp_new(rt, obj)
        self._prepare_for_create(rt, obj)
        try:
            warnings = self._prepare(rt, obj, field_validation, dropped_status=dropped_status)
        except StatusError as exc:
            raise _decode_error(rt, body, exc) from exc
        self._initial_status(rt, obj)
        obj = self._track_update(rt, None, obj, manager, "")
        return self._store(rt, None, obj, dry_run), warnings

    def update(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        body: Any,
        *,
        manager: str,
        subresource: str = "",
        dry_run: bool = False,
        field_validation: str = "",
        warnings: list[str] | None = None,
    ) -> tuple[Obj, bool]:
        """PUT: replace the object (or its status). Returns (object, created); the request's
        warnings (dropped unknown fields) are added to `warnings`."""
        check_shape(body)
        self._check_identity(rt, body, ns, name)
        old = self._bucket(rt).get((ns, name))
        body_meta = body.get("metadata") or {}
        if old is None:
            if subresource:
                raise errors.not_found(rt.plural, name, rt.group)
            if not rt.builtin or not body_meta.get("name"):
                # Custom resources (and objects without a name) cannot be created by PUT.
                raise errors.not_found(rt.plural, name, rt.group)
            obj, created_warnings = self._create(rt, ns, body, manager, dry_run,
                                                 field_validation)
            if warnings is not None:
                warnings.extend(created_warnings)
            return self.view(rt, obj), True
        want_rv = body_meta.get("resourceVersion")
        if not want_rv and not rt.builtin:
            raise errors.invalid(rt.kind, name, rt.group, [
                ("metadata.resourceVersion",
                 "Invalid value: 0: must be specified for an update")
            ])
        if want_rv and str(want_rv) != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.plural, name, rt.group)
        dropped_status: Any = _MISSING
        if subresource == "status":
            new = self._status_write(rt, old, body)
        else:
            new = copy.deepcopy(body)
            new["apiVersion"] = rt.api_version
            new["kind"] = rt.kind
            meta = new.setdefault("metadata", {})
            for f in (*_SERVER_METADATA, "namespace", "name"):
                if f in old["metadata"]:
                    meta[f] = old["metadata"][f]
                else:
                    meta.pop(f, None)
            # managedFields in the body replace the stored ones (fieldmanager.update falls back
            # to the stored ones when they are absent, empty or undecodable), as kubectl's
            # client-side to server-side apply migration relies on.
            if rt.has_status:
                dropped_status = new.pop("status", _MISSING)
                if "status" in old:
                    new["status"] = old["status"]
        try:
            return self._finish_update(rt, old, new, manager, subresource, dry_run,
                                       field_validation, dropped_status, warnings), False
        except StatusError as exc:
            raise _decode_error(rt, body, exc) from exc

    def _finish_update(
        self,
        rt: ResourceType,
        old: Obj,
        new: Obj,
        manager: str,
        subresource: str,
        dry_run: bool,
        field_validation: str,
        dropped_status: Any,
        warnings: list[str] | None,
    ) -> Obj:
        if rt.group == "apps" and rt.kind == "DaemonSet":
            # The versioned object a real field manager compares always has the annotation:
            # a request without it reads as templateGeneration 0, so its manager takes the
            # annotation over (`_store` then keeps the stored value).
            meta = new.setdefault("metadata", {})
            if not isinstance(meta.get("annotations"), dict):
                meta["annotations"] = {}
            meta["annotations"].setdefault(DAEMONSET_TEMPLATE_GENERATION, "0")
        found = self._prepare(rt, new, field_validation, old, subresource=subresource,
                              dropped_status=dropped_status)
        if warnings is not None:
            warnings.extend(found)
        if old["metadata"].get("deletionTimestamp"):
            self._check_finalizers_only_shrink(rt, old, new)
        new = self._track_update(rt, old, new, manager, subresource)
        return self.view(rt, self._store(rt, old, new, dry_run))

    def _track_update(
        self, rt: ResourceType, old: Obj | None, new: Obj, manager: str, subresource: str
    ) -> Obj:
        try:
            return fieldmanager.update(old, new, manager=manager, builtin=rt.builtin,
                                       api_version=rt.api_version, now=now_rfc3339(),
                                       subresource=subresource, schema=rt.schema)
        except (ValueError, TypeError, AttributeError) as exc:
            # A body the field manager cannot walk cannot be tracked, so refuse it. (Items that
            # repeat a key can: only an applied configuration must not repeat one.)
            raise errors.invalid(rt.kind, new["metadata"].get("name", ""), rt.group,
                                 [("", str(exc))]) from exc

    def _status_write(self, rt: ResourceType, old: Obj, written: Obj) -> Obj:
        """What a /status write of `written` stores, as the kind's status strategy allows:
        the stored object with the written status and, but for the metadata the strategy
        resets (`_STATUS_RESET_METADATA`), the written metadata. managedFields come from
        `written`: the field manager has already run."""
        new = copy.deepcopy(old)
        status = written.get("status")
        if status is None:
            new.pop("status", None)
        else:
            new["status"] = copy.deepcopy(status)
        meta = new["metadata"]
        wmeta = written.get("metadata") or {}
        if rt.builtin:
            reset = _STATUS_RESET_METADATA.get((rt.group, rt.kind), ())
            for f in {*meta, *wmeta}:
                if f in _SERVER_METADATA or f in ("name", "namespace", "managedFields") or (
                    f in reset
                ):
                    continue
                if f in wmeta:
                    meta[f] = copy.deepcopy(wmeta[f])
                else:
                    del meta[f]
        if wmeta.get("managedFields"):
            meta["managedFields"] = copy.deepcopy(wmeta["managedFields"])
        else:
            meta.pop("managedFields", None)
        return new

    def _check_finalizers_only_shrink(self, rt: ResourceType, old: Obj, new: Obj) -> None:
        before = set(old["metadata"].get("finalizers") or [])
        after = set(new["metadata"].get("finalizers") or [])
        if after - before:
            raise errors.forbidden(rt.plural, old["metadata"]["name"], rt.group,
                                   "no new finalizers can be added if the object is being deleted")

    def patch(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        patch_type: str,
        body: Any,
        *,
        manager: str,
        force: bool = False,
        subresource: str = "",
        dry_run: bool = False,
        field_validation: str = "",
        warnings: list[str] | None = None,
    ) -> tuple[Obj, bool]:
        """PATCH of any type; server-side apply creates a missing object. Returns (obj, created);
        the request's warnings (dropped unknown fields) are added to `warnings`."""
        if patch_type == "apply":
            return self._apply(rt, ns, name, body, manager, force, subresource, dry_run,
                               field_validation, warnings)
        if force:
            raise errors.bad_request("force is not allowed for non-apply patches")
        old = self._bucket(rt).get((ns, name))
        if old is None:
            raise errors.not_found(rt.plural, name, rt.group)
        patched = self._patched(rt, self.view(rt, old), patch_type, body)
        check_shape(patched)
        self._check_identity(rt, patched, ns, name)
        new = patched
        new["apiVersion"] = rt.api_version
        new["kind"] = rt.kind
        meta = new.setdefault("metadata", {})
        want_rv = meta.get("resourceVersion")
        if want_rv and str(want_rv) != old["metadata"]["resourceVersion"]:
            # A patch that sets resourceVersion makes it a precondition.
            raise errors.conflict(rt.plural, name, rt.group)
        for f in (*_SERVER_METADATA, "namespace", "name"):
            if f in old["metadata"]:
                meta[f] = old["metadata"][f]
            else:
                meta.pop(f, None)
        dropped_status: Any = _MISSING
        if subresource == "status":
            new = self._status_write(rt, old, new)
        elif rt.has_status:
            dropped_status = new.pop("status", _MISSING)
            if "status" in old:
                new["status"] = old["status"]
        return self._finish_update(rt, old, new, manager, subresource, dry_run,
                                   field_validation, dropped_status, warnings), False

    def _patched(
        self, rt: ResourceType, current: Obj, patch_type: str, body: Any, *, scale: bool = False
    ) -> Obj:
        """`current` with a JSON, merge or strategic merge patch applied. A Scale is a built-in
        type whatever its parent is, so strategic merge patches apply to it."""
        try:
            if patch_type == "json":
                return patches.json_patch(current, body)
            if patch_type == "merge":
                return patches.merge_patch(current, body)
            if patch_type == "strategic":
                if not rt.builtin and not scale:
                    raise errors.unsupported_media_type(
                        "application/strategic-merge-patch+json",
                        errors.CUSTOM_RESOURCE_PATCH_TYPES)
                return patches.strategic_merge_patch(current, body, builtin=True)
            raise errors.unsupported_media_type(patch_type)
        except patches.PatchError as exc:
            if exc.reason == "Invalid":
                raise errors.StatusError(422, "Invalid", str(exc)) from exc
            raise errors.bad_request(str(exc)) from exc

    def _apply(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        body: Any,
        manager: str,
        force: bool,
        subresource: str,
        dry_run: bool,
        field_validation: str,
        warnings: list[str] | None,
    ) -> tuple[Obj, bool]:
        if not manager:
            raise errors.invalid(rt.kind, name, rt.group, [
                ("fieldManager", "Required value: is required for apply patch")
            ], "FieldValueRequired")
        check_shape(body)
        meta = body.get("metadata")
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if meta.get("managedFields") is not None:
            raise errors.bad_request("metadata.managedFields must be nil")
        if not body.get("apiVersion") or not body.get("kind"):
            raise errors.bad_request("apiVersion and kind must be set in an apply patch")
        self._check_identity(rt, body, ns, name)
        config = copy.deepcopy(body)
        config["apiVersion"] = rt.api_version
        cmeta = config["metadata"]
        cmeta["name"] = name
        if rt.namespaced:
            cmeta["namespace"] = ns
        else:
            cmeta.pop("namespace", None)
        for f in _SERVER_METADATA:
            cmeta.pop(f, None)
        if rt.builtin:
            found = self._check_applied_fields(rt, body, config, field_validation)
            if warnings is not None:
                warnings.extend(found)
        if subresource == "status":
            # The status strategies' reset fields: the applier owns the rest, metadata included,
            # whatever of it the strategy then takes back from the stored object.
            config.pop("spec", None)
        elif rt.has_status:
            config.pop("status", None)
        old = self._bucket(rt).get((ns, name))
        stamp = now_rfc3339()
        if old is None:
            if meta.get("uid"):
                # A uid is a precondition that no new object can meet (patcher.applyPatch).
                raise errors.conflict(
                    rt.plural, name, rt.group,
                    f"uid mismatch: the provided object specified uid {meta['uid']}, and no "
                    "existing object was found")
            if subresource:
                raise errors.not_found(rt.plural, name, rt.group)
            problems = _validate_name(rt, name)
            if problems:
                raise errors.invalid(rt.kind, name, rt.group, problems)
            self._check_namespace(rt, ns, name)
            try:
                new = fieldmanager.apply(None, config, manager=manager, force=force,
                                         builtin=rt.builtin, api_version=rt.api_version,
                                         now=stamp, subresource=subresource, schema=rt.schema)
            except fieldmanager.ApplyConflict as exc:  # pragma: no cover - nothing to conflict
                raise self._conflict_error(rt, name, exc) from exc
            except ValueError as exc:
                raise errors.invalid(rt.kind, name, rt.group, [("", str(exc))]) from exc
            self._stamp_new(rt, new)
            # After the merge, so that the applier owns none of what the strategy sets.
            self._prepare_for_create(rt, new)
            new["kind"] = rt.kind
            self._prepare(rt, new, field_validation, check_fields=False)
            self._initial_status(rt, new)
            return self.view(rt, self._store(rt, None, new, dry_run)), True
        live = self.view(rt, old)
        try:
            try:
                new = fieldmanager.apply(live, config, manager=manager, force=force,
                                         builtin=rt.builtin, api_version=rt.api_version,
                                         now=stamp, subresource=subresource, schema=rt.schema)
            except fieldmanager.ApplyConflict as exc:
                # `kubectl apply --server-side` may take over what `kubectl apply` set: conflicts
                # on fields still as last applied client-side are forced (lastAppliedManager).
                allowed = None
                if manager == fieldmanager.KUBECTL_MANAGER:
                    allowed = fieldmanager.last_applied_allowed_conflicts(
                        live, builtin=rt.builtin, api_version=rt.api_version, schema=rt.schema)
                if allowed is None:
                    raise
                left = [c for c in exc.conflicts if c.field not in allowed]
                if left:
                    raise fieldmanager.ApplyConflict(left) from exc
                new = fieldmanager.apply(live, config, manager=manager, force=True,
                                         builtin=rt.builtin, api_version=rt.api_version,
                                         now=stamp, subresource=subresource, schema=rt.schema)
        except fieldmanager.ApplyConflict as exc:
            raise self._conflict_error(rt, name, exc) from exc
        except ValueError as exc:
            raise errors.invalid(rt.kind, name, rt.group, [("", str(exc))]) from exc
        if manager == fieldmanager.KUBECTL_MANAGER and not subresource:
            fieldmanager.sync_last_applied(new, body)
        nmeta = new["metadata"]
        for f in (*_SERVER_METADATA, "namespace", "name"):
            if f in old["metadata"]:
                nmeta[f] = old["metadata"][f]
        if subresource == "status":
            new = self._status_write(rt, old, new)
        elif rt.has_status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        self._prepare(rt, new, field_validation, old, subresource=subresource,
                      check_fields=False)
        if old["metadata"].get("deletionTimestamp"):
            self._check_finalizers_only_shrink(rt, old, new)
        return self.view(rt, self._store(rt, old, new, dry_run)), False

    # ---------------------------------------------------------------- scale

    def write_scale(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        patch_type: str,
        body: Any,
        *,
        manager: str,
        force: bool = False,
        dry_run: bool = False,
    ) -> Obj:
        """PUT (`patch_type` "update") or PATCH of any type to /scale; returns the new Scale.

        As kube-apiserver's scaleUpdatedObjectInfo: the write is tracked on a Scale carrying
        the parent's owners of .spec.replicas (so an apply conflicts with them and force takes
        the field over), then spec.replicas and its ownership move into the parent, under an
        entry with `subresource: scale`."""
        old = self._bucket(rt).get((ns, name))
        if old is None:
            raise errors.not_found(rt.plural, name, rt.group)
        live = scale_of(self.view(rt, old))
        owners = fieldmanager.scale_managed_fields(old)
        if owners:
            live["metadata"]["managedFields"] = owners
        stamp = now_rfc3339()
        if patch_type == "apply":
            new = self._apply_scale(rt, ns, name, live, body, manager, force, stamp)
        else:
            if patch_type == "update":
                written = body
            else:
                written = self._patched(rt, live, patch_type, body, scale=True)
            new = fieldmanager.update(live, _typed_scale(written), manager=manager,
                                      builtin=True, api_version=fieldmanager.SCALE_API_VERSION,
                                      now=stamp, subresource="scale")
        replicas = (new.get("spec") or {}).get("replicas") or 0
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise errors.bad_request(f"json: cannot unmarshal {type(replicas).__name__} into "
                                     "Go struct field ScaleSpec.spec.replicas of type int32")
        if replicas < 0:
            raise errors.invalid("Scale", name, "autoscaling", [
                ("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal "
                                  "to 0")])
        meta = new.get("metadata") or {}
        uid = old["metadata"]["uid"]
        if meta.get("uid") and meta["uid"] != uid:
            raise errors.conflict(
                f"{rt.plural}/scale", name, rt.group,
                f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: "
                f"{uid}")
        want_rv = meta.get("resourceVersion")
        if want_rv and str(want_rv) != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.plural, name, rt.group)
        parent = copy.deepcopy(old)
        parent.setdefault("spec", {})["replicas"] = replicas
        entries = fieldmanager.scale_to_parent(old, new, api_version=rt.api_version)
        if entries:
            parent["metadata"]["managedFields"] = entries
        else:
            parent["metadata"].pop("managedFields", None)
        return scale_of(self.view(rt, self._store(rt, old, parent, dry_run)))

    def _apply_scale(
        self, rt: ResourceType, ns: str, name: str, live: Obj, body: Any, manager: str,
        force: bool, stamp: str,
    ) -> Obj:
        if not manager:
            raise errors.invalid("Scale", name, "autoscaling", [
                ("fieldManager", "Required value: is required for apply patch")
            ], "FieldValueRequired")
        check_shape(body)
        meta = body.get("metadata")
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if meta.get("managedFields") is not None:
            raise errors.bad_request("metadata.managedFields must be nil")
        if not body.get("apiVersion") or not body.get("kind"):
            raise errors.bad_request("apiVersion and kind must be set in an apply patch")
        if body["apiVersion"] != fieldmanager.SCALE_API_VERSION:
            raise errors.bad_request(
                "Incorrect version specified in apply patch. Specified patch version: "
                f"{body['apiVersion']}, expected: {fieldmanager.SCALE_API_VERSION}")
        _typed_scale(body)  # type errors are a decoding failure, before any merge
        config = copy.deepcopy(body)
        cmeta = config["metadata"]
        cmeta["name"] = name
        cmeta["namespace"] = ns
        for f in _SERVER_METADATA:
            cmeta.pop(f, None)
        try:
            return fieldmanager.apply(live, config, manager=manager, force=force, builtin=True,
                                      api_version=fieldmanager.SCALE_API_VERSION, now=stamp,
                                      subresource="scale")
        except fieldmanager.ApplyConflict as exc:
            raise self._conflict_error(rt, name, exc) from exc
        except ValueError as exc:
            raise errors.invalid("Scale", name, "autoscaling", [("", str(exc))]) from exc

    def _check_applied_fields(
        self, rt: ResourceType, body: Obj, config: Obj, field_validation: str
    ) -> list[str]:
        """Server-side apply of a built-in kind: fields its type does not declare fail the typed
        conversion of the patch (Strict), else they are dropped from `config` before it is merged
        and owned. Returns warnings.

        Deliberately kinder than current real servers, whose typed conversion fails whatever
        fieldValidation says, and with a 500 rather than a 400 (kubernetes/kubernetes#122480):
        here only Strict fails, with 400 BadRequest, and Warn/Ignore drop the fields as the
        other verbs do."""
        found = builtin_schema.find_unknown(config, rt.group, rt.version, rt.kind)
        if not found:
            return []
        if field_validation == "Strict":
            # structured-merge-diff's ValidationErrors, in kube-apiserver's wrapping.
            lines = [f"{builtin_schema.apply_path(config, p)}: field not declared in schema"
                     for p in found]
            detail = lines[0] if len(lines) == 1 else "\n  ".join(["errors:", *lines])
            meta = body.get("metadata") or {}
            api_version = str(body.get("apiVersion") or "")
            gvk = ("" if "/" in api_version else "/") + f"{api_version}, Kind={body.get('kind')}"
            raise errors.bad_request(
                f"failed to create typed patch object ({meta.get('namespace') or ''}/"
                f"{meta.get('name') or ''}; {gvk}): {detail}")
        paths = builtin_schema.prune_unknown(config, rt.group, rt.version, rt.kind)
        return _unknown_field_warnings(paths, field_validation)

    def _conflict_error(
        self, rt: ResourceType, name: str, exc: fieldmanager.ApplyConflict
    ) -> StatusError:
        causes = [
            {"reason": "FieldManagerConflict", "message": c.message, "field": c.field}
            for c in exc.conflicts
        ]
        return StatusError(409, "Conflict", str(exc), kind=rt.plural, name=name, group=rt.group,
                           causes=causes)

    # ---------------------------------------------------------------- delete

    def delete(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        options: dict[str, Any],
        *,
        dry_run: bool = False,
    ) -> tuple[int, Obj]:
        """DELETE one object. Returns (http status, body)."""
        old = self._bucket(rt).get((ns, name))
        if old is None:
            raise errors.not_found(rt.plural, name, rt.group)
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
            raise errors.conflict(
                rt.plural, name, rt.group,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: "
                f"{old['metadata']['uid']}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"][
            "resourceVersion"
        ]:
            raise errors.conflict(
                rt.plural, name, rt.group,
                f"Precondition failed: ResourceVersion in precondition: "
                f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                f"{old['metadata']['resourceVersion']}",
            )
        policy = options.get("propagationPolicy") or ""
        if options.get("orphanDependents") is True:
            policy = "Orphan"
        if policy and policy not in ("Orphan", "Background", "Foreground"):
            raise errors.invalid("DeleteOptions", "", "", [
                ("propagationPolicy", f'Unsupported value: "{policy}": supported values: '
                                      '"Foreground", "Background", "Orphan", "nil"')
            ], "FieldValueNotSupported")
        if dry_run:
            return 200, self.view(rt, old)
        if rt.kind == "Namespace" and rt.group == "":
            return 200, self.view(rt, self._terminate_namespace(rt, old))
        if old["metadata"].get("finalizers"):
            if old["metadata"].get("deletionTimestamp"):
                return 202, self.view(rt, old)
            new = copy.deepcopy(old)
            new["metadata"]["deletionTimestamp"] = now_rfc3339()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            stored = self._store(rt, old, new, False)
            self._handle_dependents(old["metadata"]["uid"], policy)
            return 202, self.view(rt, stored)
        self._remove(rt, old, policy)
        if not rt.builtin or (rt.group, rt.kind) in _RETURN_DELETED_OBJECT:
            return 200, self.view(rt, old)
        return 200, errors.success_status(rt.plural, name, rt.group, old["metadata"]["uid"])

    def delete_collection(
        self,
        rt: ResourceType,
        ns: str,
        predicates: Iterable[Callable[[Obj], bool]],
        options: dict[str, Any],
        *,
        dry_run: bool = False,
    ) -> list[Obj]:
        items, _, _ = self.list_objects(rt, ns, predicates)
        out = []
        for obj in items:
            meta = obj["metadata"]
            try:
                self.delete(rt, meta.get("namespace", ""), meta["name"], options,
                            dry_run=dry_run)
            except StatusError:
                continue
            out.append(obj)
        return out

    def _remove(self, rt: ResourceType, obj: Obj, policy: str = "") -> None:
        """Delete the object now (no finalizers left) and garbage-collect its dependents."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        bucket = self._bucket(rt)
        if bucket.get(key) is not obj:
            return
        del bucket[key]
        self._index_owners(rt, key, obj, None)
        gone = copy.copy(obj)
        gone["metadata"] = dict(meta)
        gone["metadata"]["resourceVersion"] = str(self._next_rv())
        self._emit(rt, "DELETED", gone, obj)
        self._changed_at.pop(meta.get("uid", ""), None)
        if rt.group == "apiextensions.k8s.io" and rt.plural == "customresourcedefinitions":
            self._crd_deleted(obj)
        if rt.namespaced:
            self._maybe_finish_namespace(key[0])
        if (self.simulate and rt.group == "" and rt.kind == "ServiceAccount"
                and key[1] == workloads.DEFAULT_SERVICE_ACCOUNT):
            self._schedule_default_service_account(key[0])
        self._handle_dependents(meta.get("uid", ""), policy)

    def _handle_dependents(self, uid: str, policy: str) -> None:
        deps = list(self._dependents.get(uid, ()))
        if not deps:
            return
        for type_key, key in deps:
            bucket = self.objects.get(type_key, {})
            dep = bucket.get(key)
            if dep is None:
                continue
            rt = self._type_for_key(type_key)
            if rt is None:
                continue
            if policy == "Orphan":
                new = copy.deepcopy(dep)
                new["metadata"]["ownerReferences"] = [
                    r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") != uid
                ]
                if not new["metadata"]["ownerReferences"]:
                    del new["metadata"]["ownerReferences"]
                self._store(rt, dep, new, False)
            else:
                with contextlib.suppress(StatusError):
                    self.delete(rt, key[0], key[1], {"propagationPolicy": "Background"})

    def _type_for_key(self, type_key: TypeKey) -> ResourceType | None:
        for rt in self.registry:
            if rt.key == type_key:
                return rt
        return None

    # ---------------------------------------------------------------- namespaces

    def _terminate_namespace(self, rt: ResourceType, old: Obj) -> Obj:
        if old["metadata"].get("deletionTimestamp"):
            return old
        new = copy.deepcopy(old)
        new["metadata"]["deletionTimestamp"] = now_rfc3339()
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        new.setdefault("status", {})["phase"] = "Terminating"
        stored = self._store(rt, old, new, False)
        name = old["metadata"]["name"]
        # The namespace controller works asynchronously: the Terminating state is observable.
        self.add_timer(0.05, lambda: self._empty_namespace(name))
        return stored

    def _empty_namespace(self, ns: str) -> None:
        for rt in list(self._storage_types()):
            if not rt.namespaced:
                continue
            for (obj_ns, name), _obj in list(self._bucket(rt).items()):
                if obj_ns != ns:
                    continue
                with contextlib.suppress(StatusError):
                    self.delete(rt, ns, name, {"propagationPolicy": "Background"})
        self._maybe_finish_namespace(ns)

    def _storage_types(self) -> Iterable[ResourceType]:
        seen: set[TypeKey] = set()
        for rt in list(self.registry):
            if rt.key in seen:
                continue
            seen.add(rt.key)
            yield rt

    def _maybe_finish_namespace(self, ns: str) -> None:
        ns_rt = self._rt("", "v1", "namespaces")
        ns_obj = self._bucket(ns_rt).get(("", ns))
        if ns_obj is None or not ns_obj["metadata"].get("deletionTimestamp"):
            return
        for rt in self._storage_types():
            if rt.namespaced and any(k[0] == ns for k in self._bucket(rt)):
                return
        if ns_obj["metadata"].get("finalizers"):
            return
        self._remove(ns_rt, ns_obj)

    # ---------------------------------------------------------------- CRDs

    def _crd_written(self, crd: Obj) -> None:
        if crd["metadata"].get("deletionTimestamp"):
            return
        types = self.registry.register_crd(crd)
        status = crd.get("status") or {}
        stamp = now_rfc3339()
        # The naming and establishing controllers set only their own conditions, in place
        # (apihelpers.SetCRDCondition): conditions others wrote stay, and so does their owner.
        conditions = [dict(c) if isinstance(c, dict) else c
                      for c in status.get("conditions") or []]
        for ctype, reason, message in _CRD_CONDITIONS:
            prev = next((c for c in conditions
                         if isinstance(c, dict) and c.get("type") == ctype), None)
            if prev is None:
                conditions.append({"type": ctype, "status": "True", "lastTransitionTime": stamp,
                                   "reason": reason, "message": message})
                continue
            if prev.get("status") != "True" or not prev.get("lastTransitionTime"):
                prev["lastTransitionTime"] = stamp
            prev.update(status="True", reason=reason, message=message)
        versions = [t.version for t in types]
        stored_versions = list(status.get("storedVersions") or [])
        storage = types[0].storage_version if types else ""
        if storage and storage not in stored_versions:
            stored_versions.append(storage)
        new_status = {
            **status,
            "conditions": conditions,
            "acceptedNames": copy.deepcopy(crd["spec"].get("names", {})),
            "storedVersions": stored_versions or versions[:1],
        }
        if status == new_status:
            return
        rt = self._rt("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        new = copy.deepcopy(crd)
        new["status"] = new_status
        new = fieldmanager.update(crd, new, manager=CRD_CONTROLLER, builtin=True,
                                  api_version="apiextensions.k8s.io/v1", now=stamp,
                                  subresource="status")
        self._store(rt, crd, new, False)

    def _crd_deleted(self, crd: Obj) -> None:
        types = self.registry.crd_types(crd["metadata"]["name"])
        if types:
            rt = types[0]
            for obj in list(self._bucket(rt).values()):
                self._remove(rt, obj)
            self.objects.pop(rt.key, None)
        self.registry.unregister_crd(crd["metadata"]["name"])

    # ---------------------------------------------------------------- workload simulation

    def _schedule_sim(self, rt: ResourceType, uid: str, key: ObjKey, delay: float) -> None:
        token = f"{uid}@{delay:.3f}"
        if token in self._sim_scheduled:
            return
        self._sim_scheduled.add(token)

        def run() -> None:
            self._sim_scheduled.discard(token)
            self._simulate_one(rt, uid, key)

        self.add_timer(delay, run)

    def _schedule_default_service_account(self, ns: str) -> None:
        # On a timer, as the controller reacts to the watch event: the namespace's creation
        # answers first, and the ServiceAccount follows as a write of its own.
        self.add_timer(0.0, lambda: self._ensure_default_service_account(ns))

    def _ensure_default_service_account(self, ns: str) -> None:
        if not self.simulate:
            return
        ns_obj = self._bucket(self._rt("", "v1", "namespaces")).get(("", ns))
        body = workloads.default_service_account(ns_obj) if ns_obj is not None else None
        if body is None:
            return
        sa_rt = self._rt("", "v1", "serviceaccounts")
        if (ns, workloads.DEFAULT_SERVICE_ACCOUNT) in self._bucket(sa_rt):
            return
        with contextlib.suppress(StatusError):
            self._create(sa_rt, ns, body, CONTROLLER_MANAGER, False, "")

    def _simulate_one(self, rt: ResourceType, uid: str, key: ObjKey) -> None:
        if not self.simulate:
            return
        obj = self._bucket(rt).get(key)
        if obj is None or obj["metadata"].get("uid") != uid:
            return
        since = time.monotonic() - self._changed_at.get(uid, time.monotonic())
        status, next_in = workloads.simulate(obj, since_change=since,
                                             settings=self.sim_settings, now=now_rfc3339())
        if status is not None:
            new = copy.deepcopy(obj)
            new["status"] = status
            new = fieldmanager.update(obj, new, manager=CONTROLLER_MANAGER, builtin=True,
                                      api_version=rt.api_version, now=now_rfc3339(),
                                      subresource="status")
            self._store(rt, obj, new, False)
        if next_in is not None:
            self._schedule_sim(rt, uid, key, next_in)
