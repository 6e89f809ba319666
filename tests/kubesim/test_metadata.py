"""Metadata-only reads over raw HTTP: PartialObjectMetadata[List] negotiated through Accept.

What client-go's metadata client and informers send (`as=PartialObjectMetadataList` on lists,
`as=PartialObjectMetadata` on gets and watches), the fallbacks, q-values and 406s of the real
server's negotiation, for built-in kinds and custom resources, and the request log's `accept`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest
import urllib3

from kubesim.server import KubeSim

from .http import call

POML = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
POM = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
# What client-go's metadata client sends for a list.
CLIENT_GO_LIST = ("application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;"
                  f"g=meta.k8s.io;v=v1,{POML},application/json")
MERGE = "application/merge-patch+json"


def cm(name: str, labels: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": labels or {}, **meta}, "data": {"a": "1"}}


def deployment(name: str, labels: dict[str, str]) -> dict[str, Any]:
    pod_labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": pod_labels},
                     "template": {"metadata": {"labels": pod_labels},
                                  "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}}


def _post(kubesim: KubeSim, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = call(kubesim.url, "POST", path, body)
    assert r.status == 201, r.body
    assert isinstance(r.body, dict)
    return r.body


def _watch(kubesim: KubeSim, path: str, accept: str, **query: str) -> list[dict[str, Any]]:
    """The events of a watch that the server ends after `timeoutSeconds` (default 1)."""
    query.setdefault("timeoutSeconds", "1")
    resp = urllib3.PoolManager().request(
        "GET", f"{kubesim.url}{path}?{urlencode({'watch': 'true', **query})}",
        headers={"Accept": accept}, timeout=30, retries=False)
    assert resp.status == 200, resp.data
    return [json.loads(line) for line in resp.data.splitlines() if line.strip()]


def _assert_partial(item: dict[str, Any], full: dict[str, Any], version: str = "v1") -> None:
    assert item == {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}",
                    "metadata": full["metadata"]}


def _selector() -> tuple[str, dict[str, str]]:
    value = uuid.uuid4().hex[:8]
    return f"sweep={value}", {"sweep": value}


# ---------------------------------------------------------------------------------- lists


def test_metadata_list_of_configmaps_with_label_selector(kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    selector, labels = _selector()
    made = [_post(kubesim, base, cm(n, labels, annotations={"note": n})) for n in ("c", "a", "b")]
    _post(kubesim, base, cm("other", {"sweep": "no"}))
    r = call(kubesim.url, "GET", base, accept=POML, labelSelector=selector)
    assert r.status == 200 and r.headers["Content-Type"].startswith("application/json")
    assert set(r.body) == {"kind", "apiVersion", "metadata", "items"}
    assert r.body["kind"] == "PartialObjectMetadataList"
    assert r.body["apiVersion"] == "meta.k8s.io/v1"
    assert r.body["metadata"]["resourceVersion"].isdigit()
    assert "continue" not in r.body["metadata"]
    by_name = {o["metadata"]["name"]: o for o in made}
    assert [i["metadata"]["name"] for i in r.body["items"]] == ["a", "b", "c"]
    for item in r.body["items"]:
        # The whole metadata (uid, resourceVersion, annotations, managedFields...), nothing else.
        _assert_partial(item, by_name[item["metadata"]["name"]])
        assert item["metadata"]["uid"] and item["metadata"]["managedFields"]


def test_metadata_list_of_deployments_with_label_and_field_selectors(
        kubesim: KubeSim, namespace: str) -> None:
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    selector, labels = _selector()
    for name in ("web", "api"):
        _post(kubesim, base, deployment(name, labels))
    _post(kubesim, base, deployment("unmanaged", {}))
    r = call(kubesim.url, "GET", base, accept=POML, labelSelector=selector)
    assert r.body["kind"] == "PartialObjectMetadataList"
    assert [i["metadata"]["name"] for i in r.body["items"]] == ["api", "web"]
    for item in r.body["items"]:
        full = call(kubesim.url, "GET", f"{base}/{item['metadata']['name']}").body
        assert "spec" in full and "spec" not in item and "status" not in item
        assert item["metadata"]["generation"] == 1
        assert item["metadata"]["uid"] == full["metadata"]["uid"]
        assert item["metadata"]["labels"] == labels
    one = call(kubesim.url, "GET", base, accept=POML, labelSelector=selector,
               fieldSelector="metadata.name=web")
    assert [i["metadata"]["name"] for i in one.body["items"]] == ["web"]


def test_metadata_list_pages_with_limit_and_continue(kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    selector, labels = _selector()
    for i in range(5):
        _post(kubesim, base, cm(f"cm-{i}", labels))
    names: list[str] = []
    pages: list[dict[str, Any]] = []
    token = ""
    while True:
        query = {"labelSelector": selector, "limit": "2", **({"continue": token} if token else {})}
        page = call(kubesim.url, "GET", base, accept=POML, **query).body
        assert page["kind"] == "PartialObjectMetadataList"
        pages.append(page["metadata"])
        names += [i["metadata"]["name"] for i in page["items"]]
        assert all(i["kind"] == "PartialObjectMetadata" for i in page["items"])
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert names == [f"cm-{i}" for i in range(5)]
    assert len(pages) == 3
    assert [p.get("remainingItemCount") for p in pages] == [3, 1, None]


def test_metadata_list_across_all_namespaces(kubesim: KubeSim, namespace: str) -> None:
    other = f"t-{uuid.uuid4().hex[:10]}"
    _post(kubesim, "/api/v1/namespaces",
          {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}})
    selector, labels = _selector()
    _post(kubesim, f"/api/v1/namespaces/{namespace}/configmaps", cm("x", labels))
    _post(kubesim, f"/api/v1/namespaces/{other}/configmaps", cm("x", labels))
    r = call(kubesim.url, "GET", "/api/v1/configmaps", accept=POML, labelSelector=selector)
    assert r.body["kind"] == "PartialObjectMetadataList"
    assert sorted((i["metadata"]["namespace"], i["metadata"]["name"]) for i in r.body["items"]) \
        == sorted([(namespace, "x"), (other, "x")])
    scoped = call(kubesim.url, "GET", "/api/v1/configmaps", accept=POML, labelSelector=selector,
                  fieldSelector=f"metadata.namespace={other}")
    assert [i["metadata"]["namespace"] for i in scoped.body["items"]] == [other]


def test_metadata_list_v1beta1_and_empty(kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    selector, labels = _selector()
    made = _post(kubesim, base, cm("one", labels))
    beta = call(kubesim.url, "GET", base, labelSelector=selector,
                accept="application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta1")
    assert beta.body["apiVersion"] == "meta.k8s.io/v1beta1"
    assert beta.body["kind"] == "PartialObjectMetadataList"
    _assert_partial(beta.body["items"][0], made, "v1beta1")
    # Like the real server (a Go nil slice), an empty metadata list has "items": null.
    empty = call(kubesim.url, "GET", base, accept=POML, labelSelector="sweep=none-such")
    assert empty.body["kind"] == "PartialObjectMetadataList"
    assert empty.body["items"] is None


# ---------------------------------------------------------------------------------- get


def test_metadata_get_of_one_object(kubesim: KubeSim, namespace: str) -> None:
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    made = _post(kubesim, base, deployment("web", {"app": "web"}))
    current = call(kubesim.url, "GET", f"{base}/web").body
    r = call(kubesim.url, "GET", f"{base}/web", accept=POM)
    assert r.status == 200
    _assert_partial(r.body, current)
    assert r.body["metadata"]["uid"] == made["metadata"]["uid"]
    beta = call(kubesim.url, "GET", f"{base}/web",
                accept="application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1")
    assert beta.body["apiVersion"] == "meta.k8s.io/v1beta1"
    # The status subresource and the scale subresource convert as well.
    status = call(kubesim.url, "GET", f"{base}/web/status", accept=POM).body
    assert status["kind"] == "PartialObjectMetadata" and "status" not in status
    scale = call(kubesim.url, "GET", f"{base}/web/scale", accept=POM).body
    assert scale["kind"] == "PartialObjectMetadata" and "spec" not in scale
    assert scale["metadata"]["name"] == "web"
    # A missing object is still 404, whatever representation was asked for.
    missing = call(kubesim.url, "GET", f"{base}/nope", accept=POM)
    assert missing.status == 404 and missing.reason == "NotFound"


# ---------------------------------------------------------------------------------- watch


def test_metadata_watch_events(kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    selector, labels = _selector()
    start = _post(kubesim, base, cm("before", labels))["metadata"]["resourceVersion"]
    _post(kubesim, base, cm("w", labels))
    call(kubesim.url, "PATCH", f"{base}/w", {"metadata": {"annotations": {"k": "v"}}},
         content_type=MERGE)
    call(kubesim.url, "DELETE", f"{base}/w")
    events = _watch(kubesim, base, POM, labelSelector=selector, resourceVersion=start)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
    for ev in events:
        assert set(ev["object"]) == {"kind", "apiVersion", "metadata"}
        assert ev["object"]["kind"] == "PartialObjectMetadata"
        assert ev["object"]["apiVersion"] == "meta.k8s.io/v1"
    assert events[1]["object"]["metadata"]["annotations"] == {"k": "v"}


def test_metadata_watch_list_initial_events_and_bookmark(kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    selector, labels = _selector()
    made = [_post(kubesim, base, cm(n, labels)) for n in ("a", "b")]
    events = _watch(kubesim, base, POM, labelSelector=selector, sendInitialEvents="true",
                    allowWatchBookmarks="true", resourceVersionMatch="NotOlderThan")
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    for ev, full in zip(events, made, strict=False):
        _assert_partial(ev["object"], full)
    bookmark = events[2]["object"]
    assert bookmark["kind"] == "PartialObjectMetadata"
    assert bookmark["apiVersion"] == "meta.k8s.io/v1"
    assert set(bookmark["metadata"]) == {"resourceVersion", "annotations"}
    assert bookmark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


# ---------------------------------------------------------------------------------- negotiation


def test_accept_fallbacks_and_q_values(kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    selector, labels = _selector()
    _post(kubesim, base, cm("one", labels))

    def kind(accept: str) -> str:
        r = call(kubesim.url, "GET", base, accept=accept, labelSelector=selector)
        assert r.status == 200, r.body
        return str(r.body["kind"])

    # client-go's metadata client: protobuf first (kubesim answers JSON only), then JSON.
    assert kind(CLIENT_GO_LIST) == "PartialObjectMetadataList"
    assert kind(f"{POML},application/json") == "PartialObjectMetadataList"
    # A conversion nobody serves falls back to the next media type.
    assert kind("application/json;as=Foo;g=meta.k8s.io;v=v1,application/json") == "ConfigMapList"
    assert kind("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v9,"
                "application/json") == "ConfigMapList"
    assert kind("application/json;as=PartialObjectMetadataList;g=example.com;v=v1,"
                "application/json") == "ConfigMapList"
    # Higher q wins over earlier position; q=0 is never chosen.
    assert kind(f"application/json;q=0.5,{POML}") == "PartialObjectMetadataList"
    assert kind(f"{POML};q=0.4,application/json;q=0.9") == "ConfigMapList"
    assert kind(f"{POML};q=0,application/json") == "ConfigMapList"
    # Wildcards and YAML take the conversion too (kubesim answers JSON).
    assert kind("*/*;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1") == \
        "PartialObjectMetadataList"
    assert kind("application/yaml;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1") == \
        "PartialObjectMetadataList"
    # Table keeps working through the same negotiation, in both meta.k8s.io versions.
    assert kind("application/json;as=Table;v=v1;g=meta.k8s.io,application/json") == "Table"
    beta = call(kubesim.url, "GET", base, labelSelector=selector,
                accept="application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
    assert beta.body["apiVersion"] == "meta.k8s.io/v1beta1"
    assert beta.body["rows"][0]["object"]["apiVersion"] == "meta.k8s.io/v1beta1"
    # kubectl get -w asks for Table first; kubesim's watches fall back to plain events.
    table_watch = _watch(kubesim, base, "application/json;as=Table;v=v1;g=meta.k8s.io,"
                                        "application/json", labelSelector=selector)
    assert [e["object"]["kind"] for e in table_watch] == ["ConfigMap"]


@pytest.mark.parametrize(("path_suffix", "accept", "message"), [
    # One object cannot be a list, and a list cannot be one object.
    ("/one", POML, "requested object is not a list"),
    ("", POM, "requested object is a list"),
    # As on a real server, whose negotiation does not tell lists from objects: the first
    # convertible range is chosen, so a later fallback does not help.
    ("/one", f"{POML},application/json", "requested object is not a list"),
    # Nothing acceptable at all.
    ("", "application/json;as=Foo;g=meta.k8s.io;v=v1", "only the following media types"),
    ("/one", "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v2",
     "only the following media types"),
    ("", "application/json;as=PartialObjectMetadataList", "only the following media types"),
])
def test_not_acceptable(kubesim: KubeSim, namespace: str, path_suffix: str, accept: str,
                        message: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    _post(kubesim, base, cm("one"))
    r = call(kubesim.url, "GET", base + path_suffix, accept=accept)
    assert r.status == 406
    assert r.body["kind"] == "Status" and r.body["reason"] == "NotAcceptable"
    assert r.body["code"] == 406 and message in r.body["message"]


def test_not_acceptable_watches_writes_and_protobuf(kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    watch = call(kubesim.url, "GET", base, accept=POML, watch="true", timeoutSeconds="1")
    assert watch.status == 406 and watch.reason == "NotAcceptable"
    # Write answers are never converted here: with a JSON fallback they are the object itself.
    made = call(kubesim.url, "POST", base, cm("w"), accept=f"{POM},application/json;q=0.9")
    assert made.status == 201 and made.body["kind"] == "ConfigMap"
    refused = call(kubesim.url, "POST", base, cm("x"), accept=POM)
    assert refused.status == 406
    assert call(kubesim.url, "GET", f"{base}/x").status == 404
    # kubesim writes no protobuf, converted or not.
    proto = call(kubesim.url, "GET", base, accept="application/vnd.kubernetes.protobuf;"
                 "as=PartialObjectMetadataList;g=meta.k8s.io;v=v1")
    assert proto.status == 406 and "only the following media types" in proto.body["message"]


def test_negotiate_orders_by_q_then_specificity() -> None:
    from kubesim.negotiation import Representation, negotiate, parse_accept

    order = [(m.type, m.subtype, m.q) for m in parse_accept(
        "*/*;q=0.8, text/plain, application/*, application/json;q=0.8, bad, a/b/c")]
    assert order == [("text", "plain", 1.0), ("application", "*", 1.0),
                     ("application", "json", 0.8), ("*", "*", 0.8)]
    offers = {"", "PartialObjectMetadataList"}
    assert negotiate("", offers) == Representation()
    assert negotiate(f"application/json;q=0.1,{POML}", offers) == \
        Representation("PartialObjectMetadataList", "v1")
    assert negotiate("application/json;as=Table;g=meta.k8s.io;v=v1,*/*", offers) == \
        Representation()


# ---------------------------------------------------------------------------------- CRs


def _crd(group: str) -> dict[str, Any]:
    open_object = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    schema = {"type": "object", "properties": {"spec": open_object, "status": open_object}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget",
                      "listKind": "GadgetList"},
            "versions": [{"name": "v1", "served": True, "storage": True,
                          "subresources": {"status": {}},
                          "schema": {"openAPIV3Schema": schema}}],
        },
    }


def test_metadata_reads_of_custom_resources(kubesim: KubeSim, namespace: str) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.example.com"
    _post(kubesim, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", _crd(group))
    base = f"/apis/{group}/v1/namespaces/{namespace}/gadgets"
    selector, labels = _selector()

    def gadget(name: str, lbls: dict[str, str]) -> dict[str, Any]:
        return {"apiVersion": f"{group}/v1", "kind": "Gadget",
                "metadata": {"name": name, "labels": lbls}, "spec": {"size": len(name)}}

    made = {n: _post(kubesim, base, gadget(n, labels)) for n in ("g1", "g2")}
    _post(kubesim, base, gadget("g3", {}))
    listed = call(kubesim.url, "GET", base, accept=CLIENT_GO_LIST, labelSelector=selector).body
    assert listed["kind"] == "PartialObjectMetadataList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["g1", "g2"]
    for item in listed["items"]:
        _assert_partial(item, made[item["metadata"]["name"]])
    everywhere = call(kubesim.url, "GET", f"/apis/{group}/v1/gadgets", accept=POML,
                      labelSelector=selector).body
    assert len(everywhere["items"]) == 2
    one = call(kubesim.url, "GET", f"{base}/g1", accept=POM).body
    _assert_partial(one, made["g1"])
    events = _watch(kubesim, base, POM, labelSelector=selector)
    assert [(e["type"], e["object"]["kind"]) for e in events] == [
        ("ADDED", "PartialObjectMetadata"), ("ADDED", "PartialObjectMetadata")]


# ---------------------------------------------------------------------------------- request log


def test_request_log_records_accept(kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    call(kubesim.url, "GET", base, accept=POML, labelSelector="a=b")
    call(kubesim.url, "GET", base)
    mine = [r for r in kubesim.request_log if r.path == base]
    assert [(r.verb, r.accept) for r in mine] == [("list", POML), ("list", "application/json")]
    metadata_lists = [r for r in mine if "as=PartialObjectMetadataList" in r.accept]
    assert len(metadata_lists) == 1 and metadata_lists[0].query == {"labelSelector": "a=b"}
    served = [r for r in call(kubesim.url, "GET", "/_kubesim/requests").body if r["path"] == base]
    assert [r["accept"] for r in served] == [POML, "application/json"]
    # Every existing field is still there.
    assert {"method", "path", "query", "field_manager", "user_agent", "status", "start", "end",
            "verb"} <= set(served[0])
