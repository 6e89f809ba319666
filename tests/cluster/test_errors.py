"""API failures become typed errors: the server's real answers on the shared kubesim, injected
faults on private servers (a fault on the shared one would hit tests running in parallel), and
the mapping itself on hand-written Status bodies."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from gitops_tasks.cluster import (
    ApiBadRequest,
    ApiConflict,
    ApiForbidden,
    ApiInvalid,
    ApiNotFound,
    ApiPermanent,
    ApiTransient,
    ApiUnauthorized,
    Cluster,
    UnknownKind,
)
from gitops_tasks.cluster.errors import MAX_SERVER_MESSAGE, from_response, from_transport
from gitops_tasks.errors import PermanentError, TransientError
from gitops_tasks.model.resources import ResourceKey
from kubesim.server import KubeSim

from .conftest import client_for


def configmap(namespace: str, name: str = "cm") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace}, "data": {"a": "1"}}


# --------------------------------------------------------------------------- real answers


def test_invalid_names_the_fields(cluster: Cluster, namespace: str, group: str,
                                  make_crd: Callable[..., dict[str, Any]]) -> None:
    with pytest.raises(ApiInvalid) as info:
        cluster.apply(configmap(namespace, "Bad_Name"))
    err = info.value
    assert err.status == 422 and isinstance(err, PermanentError)
    assert [f for f, _ in err.causes] == ["metadata.name"]
    assert "metadata.name: " in str(err) and "fix the manifest" in str(err)

    make_crd(group, "Widget", schema={
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {
            "size": {"type": "integer", "minimum": 1}}}},
    })
    with pytest.raises(ApiInvalid) as crd_info:
        cluster.apply({"apiVersion": f"{group}/v1", "kind": "Widget",
                       "metadata": {"name": "w", "namespace": namespace},
                       "spec": {"size": 0}})
    assert crd_info.value.causes[0][0] == "spec.size"
    assert "spec.size: " in str(crd_info.value)
    assert crd_info.value.resource == ResourceKey(group, "Widget", namespace, "w")


def test_forbidden_in_terminating_namespace(cluster: Cluster, namespace: str) -> None:
    held = configmap(namespace, "held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    cluster.apply(held)
    cluster.delete("v1", "Namespace", namespace, propagation="Background")
    try:
        with pytest.raises(ApiForbidden) as info:
            cluster.apply(configmap(namespace, "new"))
        assert info.value.status == 403
        assert f"namespace {namespace} is being deleted" in str(info.value)
    finally:
        cluster.patch("v1", "ConfigMap", "held", namespace, {"metadata": {"finalizers": None}})


def test_missing_namespace_is_not_found(cluster: Cluster) -> None:
    with pytest.raises(ApiNotFound, match="not found"):
        cluster.apply(configmap("no-such-namespace-here"))


def test_kind_whose_crd_was_deleted(cluster: Cluster, namespace: str, group: str,
                                    make_crd: Callable[..., dict[str, Any]]) -> None:
    crd = make_crd(group, "Widget")
    widget = {"apiVersion": f"{group}/v1", "kind": "Widget",
              "metadata": {"name": "w", "namespace": namespace}}
    cluster.apply(widget)  # discovery of the group-version is now cached
    cluster.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition",
                   crd["metadata"]["name"], propagation="Background")
    before = cluster.requests
    with pytest.raises(UnknownKind, match="no longer serves Widget"):
        cluster.apply(widget)  # the PATCH meets a 404 for the path itself
    assert cluster.requests == before + 1
    with pytest.raises(UnknownKind, match="no kind 'Widget'"):
        cluster.get(f"{group}/v1", "Widget", "w", namespace)  # discovery was refreshed


def test_objects_too_large_for_etcd_are_permanent(cluster: Cluster, namespace: str) -> None:
    for name, size, text in [("big", 1600 * 1024, "etcdserver: request is too large"),
                             ("bigger", 2100 * 1024, "trying to send message larger than max")]:
        big = configmap(namespace, name)
        big["data"] = {"blob": "x" * size}
        with pytest.raises(ApiPermanent) as info:
            cluster.apply(big)
        err = info.value
        assert err.status == 500 and not isinstance(err, TransientError)
        assert text in str(err) and "too large for the cluster's etcd" in str(err)
    huge = configmap(namespace, "huge")
    huge["data"] = {"blob": "x" * (3 * 1024 * 1024)}
    with pytest.raises(ApiBadRequest) as too_large:
        cluster.apply(huge)
    assert too_large.value.status == 413
    assert "Request entity too large: limit is 3145728" in str(too_large.value)


# --------------------------------------------------------------------------- injected faults


def test_server_errors_are_transient(private_sim: KubeSim) -> None:
    cluster = Cluster(client_for(private_sim.url), name="private", qps=0)
    cluster.resource("v1", "ConfigMap")
    private_sim.add_fault(path="/configmaps/", method="GET", status=500, count=1)
    before = cluster.requests
    with pytest.raises(ApiTransient) as info:
        cluster.get("v1", "ConfigMap", "cm", "default")
    assert info.value.status == 500 and info.value.retry_after is None
    assert "cluster private" in str(info.value) and isinstance(info.value, TransientError)
    assert cluster.requests == before + 1  # classified, not retried
    assert cluster.get("v1", "ConfigMap", "cm", "default") is None  # the fault was one-shot

    private_sim.add_fault(path="/configmaps/", method="PATCH", status=429, retry_after=2,
                          count=1)
    with pytest.raises(ApiTransient) as throttled:
        cluster.apply(configmap("default"))
    assert throttled.value.status == 429 and throttled.value.retry_after == 2.0


def test_timeout_is_transient(private_sim: KubeSim) -> None:
    cluster = Cluster(client_for(private_sim.url), qps=0, request_timeout=1)
    cluster.resource("v1", "ConfigMap")
    private_sim.add_fault(path="/configmaps/", timeout=True, count=1)
    start = time.monotonic()
    with pytest.raises(ApiTransient, match="within 1s") as info:
        cluster.get("v1", "ConfigMap", "cm", "default")
    assert 0.9 <= time.monotonic() - start < 3
    assert info.value.status == 0 and info.value.resource is not None
    assert cluster.get("v1", "ConfigMap", "cm", "default") is None


def test_connection_refused_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cluster = Cluster(client_for(f"http://127.0.0.1:{port}"), name="gone", qps=0)
    start = time.monotonic()
    with pytest.raises(ApiTransient, match=f"cannot connect to http://127.0.0.1:{port}"):
        cluster.get("v1", "ConfigMap", "cm", "default")
    assert time.monotonic() - start < 2


# --------------------------------------------------------------------------- the mapping


def status(code: int, reason: str, message: str, **details: Any) -> bytes:
    return json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                       "reason": reason, "message": message, "details": details}).encode()


KEY = ResourceKey("apps", "Deployment", "web", "api")


def mapped(code: int, body: bytes, headers: dict[str, str] | None = None) -> Exception:
    return from_response(code, body, headers or {}, verb="apply", resource=KEY, cluster="c1")


def test_mapping_classes() -> None:
    cases: list[tuple[int, type[Exception]]] = [
        (400, ApiBadRequest), (401, ApiUnauthorized), (403, ApiForbidden), (404, ApiNotFound),
        (405, ApiBadRequest), (409, ApiConflict), (410, ApiPermanent), (415, ApiBadRequest),
        (422, ApiInvalid), (429, ApiTransient), (500, ApiTransient), (503, ApiTransient),
        (504, ApiTransient),
    ]
    for code, cls in cases:
        err = mapped(code, status(code, "X", "boom"))
        assert type(err) is cls, code
        assert "apply Deployment.apps web/api on cluster c1" in str(err)
        assert err.resource == KEY and err.status == code  # type: ignore[attr-defined]


def test_only_etcd_size_errors_among_500s_are_permanent() -> None:
    for message in ("etcdserver: request is too large",
                    "rpc error: code = ResourceExhausted desc = trying to send message larger "
                    "than max (2179622 vs. 2097152)"):
        err = mapped(500, status(500, "", message))
        assert type(err) is ApiPermanent and message in str(err)
    assert type(mapped(500, status(500, "InternalError", "etcdserver: request timed out"))) \
        is ApiTransient
    assert type(mapped(503, status(503, "", "etcdserver: request is too large"))) is ApiTransient


def test_retry_after_from_header_or_details() -> None:
    err = mapped(429, status(429, "TooManyRequests", "slow down"), {"Retry-After": "7"})
    assert isinstance(err, ApiTransient) and err.retry_after == 7.0
    err = mapped(503, status(503, "ServiceUnavailable", "x", retryAfterSeconds=3))
    assert isinstance(err, ApiTransient) and err.retry_after == 3.0
    err = mapped(429, status(429, "TooManyRequests", "x"),
                 {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert isinstance(err, ApiTransient) and err.retry_after is None


def test_conflict_fields_and_trimmed_messages() -> None:
    body = status(409, "Conflict", "Apply failed with 2 conflicts", causes=[
        {"reason": "FieldManagerConflict", "field": ".spec.replicas",
         "message": 'conflict with "hpa-controller" using apps/v1'},
        {"reason": "FieldManagerConflict", "field": ".spec.template.spec.containers[name=\"a\"]"
         ".image", "message": 'conflict with "kubectl-edit" with subresource "scale"'},
    ])
    err = mapped(409, body)
    assert isinstance(err, ApiConflict)
    assert err.fields == [("hpa-controller", ".spec.replicas"),
                          ("kubectl-edit", '.spec.template.spec.containers[name="a"].image')]

    huge = mapped(500, status(500, "InternalError", "x" * 10_000))
    assert len(str(huge)) < MAX_SERVER_MESSAGE + 200 and str(huge).endswith("...")
    html = mapped(502, b"<html><body>" + b"Bad gateway " * 500 + b"</body></html>")
    assert isinstance(html, ApiTransient) and "Bad gateway" in str(html)
    assert len(str(html)) < MAX_SERVER_MESSAGE + 200

    invalid = mapped(422, status(422, "Invalid", "long message", causes=[
        {"reason": "FieldValueRequired", "field": "spec.selector", "message": "Required value"},
        {"reason": "FieldValueInvalid", "field": "", "message": "general problem"}]))
    assert isinstance(invalid, ApiInvalid)
    assert "spec.selector: Required value; general problem" in str(invalid)


def test_transport_errors() -> None:
    err = from_transport(TimeoutError("read timed out"), verb="get", resource=None,
                         cluster="c", server="https://k", timeout=5)
    assert isinstance(err, ApiTransient) and "within 5s" in str(err)
    err = from_transport(ConnectionResetError("reset by peer"), verb="get", resource=None,
                         cluster="c", server="https://k", timeout=5)
    assert isinstance(err, ApiTransient) and "reset by peer" in str(err)
