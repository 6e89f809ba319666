"""kubesim over raw HTTP: discovery, CRUD semantics and the Status errors of a real server."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import urllib3

from kubesim.server import KubeSim

from .http import call


def cm(name: str, data: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, **meta}, "data": data or {"a": "1"}}


def test_version_and_discovery(kubesim: KubeSim) -> None:
    assert call(kubesim.url, "GET", "/version").body["gitVersion"].startswith("v1.")
    assert call(kubesim.url, "GET", "/api").body["versions"] == ["v1"]
    groups = call(kubesim.url, "GET", "/apis").body["groups"]
    apps = next(g for g in groups if g["name"] == "apps")
    assert apps["preferredVersion"] in apps["versions"]
    core = call(kubesim.url, "GET", "/api/v1").body
    names = {r["name"]: r for r in core["resources"]}
    assert names["configmaps"]["shortNames"] == ["cm"]
    assert names["pods/status"]["verbs"] == ["get", "patch", "update"]
    apps_v1 = call(kubesim.url, "GET", "/apis/apps/v1").body
    assert {"deployments", "deployments/status", "deployments/scale"} <= {
        r["name"] for r in apps_v1["resources"]}
    # Aggregated discovery asked for first: plain JSON is still the answer.
    r = call(kubesim.url, "GET", "/apis", accept=(
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"))
    assert r.status == 200 and r.headers["Content-Type"].startswith("application/json")


def test_create_get_update_semantics(kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    r = call(kubesim.url, "POST", base, cm("one"))
    assert r.status == 201
    meta = r.body["metadata"]
    assert meta["uid"] and meta["creationTimestamp"]
    # Like a real server, kinds without a spec carry no generation.
    assert "generation" not in meta
    assert isinstance(meta["resourceVersion"], str)
    assert call(kubesim.url, "POST", base, cm("one")).reason == "AlreadyExists"
    got = call(kubesim.url, "GET", f"{base}/one").body
    assert got == r.body
    # A PUT that changes nothing keeps the resourceVersion.
    same = call(kubesim.url, "PUT", f"{base}/one", got)
    assert same.status == 200
    assert same.body["metadata"]["resourceVersion"] == meta["resourceVersion"]
    changed = dict(got, data={"a": "2"})
    r2 = call(kubesim.url, "PUT", f"{base}/one", changed)
    assert r2.status == 200
    assert int(r2.body["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    # The stale one now conflicts.
    stale = call(kubesim.url, "PUT", f"{base}/one", changed)
    assert stale.status == 409 and stale.reason == "Conflict"
    assert "the object has been modified" in stale.body["message"]
    missing = call(kubesim.url, "GET", f"{base}/nope")
    assert missing.status == 404 and missing.reason == "NotFound"
    assert missing.body["details"] == {"name": "nope", "kind": "configmaps"}


def test_generation_moves_only_with_spec(kubesim: KubeSim, namespace: str) -> None:
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "g"},
           "spec": {"selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}},
                                 "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}}
    created = call(kubesim.url, "POST", base, dep).body
    assert created["metadata"]["generation"] == 1
    labelled = call(kubesim.url, "PATCH", f"{base}/g", {"metadata": {"labels": {"x": "y"}}},
                    content_type="application/merge-patch+json").body
    assert labelled["metadata"]["generation"] == 1
    scaled = call(kubesim.url, "PATCH", f"{base}/g", {"spec": {"replicas": 3}},
                  content_type="application/merge-patch+json").body
    assert scaled["metadata"]["generation"] == 2
    # Writes to the main resource ignore .status; /status writes change only .status.
    with_status = call(kubesim.url, "PATCH", f"{base}/g", {"status": {"replicas": 99}},
                       content_type="application/merge-patch+json").body
    assert with_status.get("status", {}).get("replicas") != 99
    st = call(kubesim.url, "PATCH", f"{base}/g/status",
              {"status": {"observedGeneration": 42}, "spec": {"replicas": 7}},
              content_type="application/merge-patch+json").body
    assert st["status"]["observedGeneration"] == 42
    assert st["spec"]["replicas"] == 3


def test_missing_and_terminating_namespace(kubesim: KubeSim, namespace: str) -> None:
    r = call(kubesim.url, "POST", "/api/v1/namespaces/does-not-exist/configmaps", cm("x"))
    assert r.status == 404 and r.body["message"] == 'namespaces "does-not-exist" not found'
    call(kubesim.url, "POST", f"/api/v1/namespaces/{namespace}/configmaps",
         cm("held", finalizers=["example.com/hold"]))
    d = call(kubesim.url, "DELETE", f"/api/v1/namespaces/{namespace}")
    assert d.status == 200 and d.body["status"]["phase"] == "Terminating"
    r = call(kubesim.url, "POST", f"/api/v1/namespaces/{namespace}/configmaps", cm("late"))
    assert r.status == 403 and r.reason == "Forbidden"
    assert r.body["details"]["causes"][0]["reason"] == "NamespaceTerminating"
    # The finalizer keeps the object (and so the namespace) until it is removed.
    time.sleep(0.3)
    held = call(kubesim.url, "GET", f"/api/v1/namespaces/{namespace}/configmaps/held").body
    assert held["metadata"]["deletionTimestamp"]
    call(kubesim.url, "PATCH", f"/api/v1/namespaces/{namespace}/configmaps/held",
         {"metadata": {"finalizers": None}}, content_type="application/merge-patch+json")
    deadline = time.time() + 5
    while time.time() < deadline:
        if call(kubesim.url, "GET", f"/api/v1/namespaces/{namespace}").status == 404:
            break
        time.sleep(0.05)
    assert call(kubesim.url, "GET", f"/api/v1/namespaces/{namespace}").status == 404


def test_finalizers(kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    call(kubesim.url, "POST", base, cm("fin", finalizers=["example.com/x"]))
    d = call(kubesim.url, "DELETE", f"{base}/fin")
    assert d.status == 202
    got = call(kubesim.url, "GET", f"{base}/fin").body
    assert got["metadata"]["deletionTimestamp"]
    # No new finalizers on an object being deleted.
    r = call(kubesim.url, "PATCH", f"{base}/fin",
             {"metadata": {"finalizers": ["example.com/x", "example.com/y"]}},
             content_type="application/merge-patch+json")
    assert r.status == 403
    call(kubesim.url, "PATCH", f"{base}/fin", [{"op": "remove", "path": "/metadata/finalizers"}],
         content_type="application/json-patch+json")
    assert call(kubesim.url, "GET", f"{base}/fin").status == 404


def test_delete_options_and_preconditions(kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    created = call(kubesim.url, "POST", base, cm("pre")).body
    bad = call(kubesim.url, "DELETE", f"{base}/pre",
               {"kind": "DeleteOptions", "apiVersion": "v1",
                "preconditions": {"uid": "not-the-uid"}})
    assert bad.status == 409
    ok = call(kubesim.url, "DELETE", f"{base}/pre",
              {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground",
               "preconditions": {"uid": created["metadata"]["uid"]}})
    assert ok.status == 200 and ok.body["status"] == "Success"
    assert call(kubesim.url, "DELETE", f"{base}/pre").status == 404
    call(kubesim.url, "POST", base, cm("q"))
    assert call(kubesim.url, "DELETE", f"{base}/q", propagationPolicy="Background").status == 200


def test_owner_references_are_garbage_collected(kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    owner = call(kubesim.url, "POST", base, cm("owner")).body
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
           "uid": owner["metadata"]["uid"]}
    call(kubesim.url, "POST", base, cm("dep", ownerReferences=[ref]))
    call(kubesim.url, "POST", base, cm("orphan-me", ownerReferences=[ref]))
    call(kubesim.url, "DELETE", f"{base}/owner")
    assert call(kubesim.url, "GET", f"{base}/dep").status == 404


def test_list_selectors_and_paging(kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(5):
        labels = {"tier": "web" if i % 2 else "db", "n": str(i)}
        if i == 4:
            labels.pop("tier")
        call(kubesim.url, "POST", base, cm(f"c{i}", labels=labels))
    def names(**q: str) -> list[str]:
        r = call(kubesim.url, "GET", base, **q)
        assert r.status == 200, r.body
        assert r.body["kind"] == "ConfigMapList"
        return [i["metadata"]["name"] for i in r.body["items"]]
    assert names(labelSelector="tier=web") == ["c1", "c3"]
    assert names(labelSelector="tier==db") == ["c0", "c2"]
    assert names(labelSelector="tier!=web") == ["c0", "c2", "c4"]
    assert names(labelSelector="tier in (web,db),n notin (0)") == ["c1", "c2", "c3"]
    assert names(labelSelector="tier notin (db)") == ["c1", "c3", "c4"]
    assert names(labelSelector="!tier") == ["c4"]
    assert names(labelSelector="tier") == ["c0", "c1", "c2", "c3"]
    assert names(fieldSelector="metadata.name=c2") == ["c2"]
    assert names(fieldSelector="metadata.name!=c2,metadata.namespace=" + namespace) == [
        "c0", "c1", "c3", "c4"]
    bad_field = call(kubesim.url, "GET", base, fieldSelector="spec.foo=bar")
    assert bad_field.status == 400 and bad_field.reason == "BadRequest"
    bad_label = call(kubesim.url, "GET", base, labelSelector="tier in (web")
    assert bad_label.status == 400
    bad_label = call(kubesim.url, "GET", base, labelSelector="a b c")
    assert bad_label.status == 400
    page1 = call(kubesim.url, "GET", base, limit="2").body
    assert [i["metadata"]["name"] for i in page1["items"]] == ["c0", "c1"]
    assert page1["metadata"]["remainingItemCount"] == 3
    page2 = call(kubesim.url, "GET", base, limit="2", **{"continue": page1["metadata"]["continue"]})
    assert [i["metadata"]["name"] for i in page2.body["items"]] == ["c2", "c3"]
    page3 = call(kubesim.url, "GET", base, limit="2",
                 **{"continue": page2.body["metadata"]["continue"]}).body
    assert [i["metadata"]["name"] for i in page3["items"]] == ["c4"]
    assert "continue" not in page3["metadata"]
    assert call(kubesim.url, "GET", base, **{"continue": "garbage!"}).status == 400


def test_malformed_requests_get_status_errors(kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    r = call(kubesim.url, "POST", base, "{not json")
    assert r.status == 400 and r.reason == "BadRequest" and r.body["kind"] == "Status"
    r = call(kubesim.url, "POST", base, "data: [", content_type="application/yaml")
    assert r.status == 400
    r = call(kubesim.url, "POST", base, cm("x"), content_type="text/html")
    assert r.status == 415 and r.reason == "UnsupportedMediaType"
    # Protobuf bodies are decoded (kubectl's typed commands send them): garbage is a 400,
    # a protobuf patch a 415.
    r = call(kubesim.url, "POST", base, b"\x0a\x0bk8s",
             content_type="application/vnd.kubernetes.protobuf")
    assert r.status == 400 and r.reason == "BadRequest"
    r = call(kubesim.url, "PATCH", f"{base}/x", b"k8s\x00",
             content_type="application/vnd.kubernetes.protobuf")
    assert r.status == 415
    r = call(kubesim.url, "POST", base, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})
    assert r.status == 422 and r.reason == "Invalid"
    r = call(kubesim.url, "POST", base, cm("Bad_Name"))
    assert r.status == 422
    r = call(kubesim.url, "POST", base, cm("x", namespace="other"))
    assert r.status == 400
    r = call(kubesim.url, "POST", base, cm("x") | {"kind": "Secret"})
    assert r.status == 400
    r = call(kubesim.url, "GET", f"/api/v1/namespaces/{namespace}/widgets")
    assert r.status == 404 and r.reason == "NotFound"
    r = call(kubesim.url, "GET", "/apis/nonexistent.io/v1")
    assert r.status == 404
    r = call(kubesim.url, "PATCH", f"{base}/x", {"data": {}}, content_type="application/json")
    assert r.status == 415
    r = call(kubesim.url, "DELETE", base + "/x", "{oops")
    assert r.status == 400
    r = call(kubesim.url, "POST", base, cm("dry"), dryRun="Partial")
    assert r.status == 422
    r = call(kubesim.url, "PUT", "/version", {})
    assert r.status in (404, 405)
    # None of this left anything behind.
    assert call(kubesim.url, "GET", base).body["items"] == []


def test_strategic_merge_patch_on_custom_resource_is_415(kubesim: KubeSim, namespace: str) -> None:
    crd = widget_crd("smp")
    assert call(kubesim.url, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                crd).status == 201
    base = f"/apis/smp.example.com/v1/namespaces/{namespace}/widgets"
    assert call(kubesim.url, "POST", base, {"apiVersion": "smp.example.com/v1", "kind": "Widget",
                                            "metadata": {"name": "w"},
                                            "spec": {"size": 1}}).status == 201
    r = call(kubesim.url, "PATCH", f"{base}/w", {"spec": {"size": 2}},
             content_type="application/strategic-merge-patch+json")
    assert r.status == 415 and r.reason == "UnsupportedMediaType"
    ok = call(kubesim.url, "PATCH", f"{base}/w", {"spec": {"size": 2}},
              content_type="application/merge-patch+json")
    assert ok.status == 200 and ok.body["spec"]["size"] == 2


def widget_crd(group_prefix: str, scope: str = "Namespaced") -> dict[str, Any]:
    group = f"{group_prefix}.example.com"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                      "shortNames": ["wd"]},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "properties": {
                            "size": {"type": "integer"},
                            "color": {"type": "string", "default": "blue"},
                        }},
                        "status": {"type": "object",
                                   "x-kubernetes-preserve-unknown-fields": True},
                    }}},
            }],
        },
    }


def test_crd_serves_and_unserves(kubesim: KubeSim, namespace: str) -> None:
    crd = widget_crd("life")
    created = call(kubesim.url, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                   crd)
    assert created.status == 201
    got = call(kubesim.url, "GET",
               "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.life.example.com")
    conds = {c["type"]: c["status"] for c in got.body["status"]["conditions"]}
    assert conds == {"NamesAccepted": "True", "Established": "True"}
    res = call(kubesim.url, "GET", "/apis/life.example.com/v1").body["resources"]
    assert {r["name"] for r in res} == {"widgets", "widgets/status"}
    base = f"/apis/life.example.com/v1/namespaces/{namespace}/widgets"
    w = call(kubesim.url, "POST", base, {"apiVersion": "life.example.com/v1", "kind": "Widget",
                                         "metadata": {"name": "w"},
                                         "spec": {"size": 3, "unknown": 1}})
    assert w.status == 201
    # Schema pruning and defaults.
    assert w.body["spec"] == {"size": 3, "color": "blue"}
    bad = call(kubesim.url, "POST", base, {"apiVersion": "life.example.com/v1", "kind": "Widget",
                                           "metadata": {"name": "bad"},
                                           "spec": {"size": "big"}})
    assert bad.status == 422 and bad.reason == "Invalid"
    # PUT on a custom resource needs a resourceVersion.
    no_rv = call(kubesim.url, "PUT", f"{base}/w", {"apiVersion": "life.example.com/v1",
                                                   "kind": "Widget", "metadata": {"name": "w"},
                                                   "spec": {"size": 4}})
    assert no_rv.status == 422
    table = call(kubesim.url, "GET", base,
                 accept="application/json;as=Table;v=v1;g=meta.k8s.io,application/json").body
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Size"]
    assert table["rows"][0]["cells"] == ["w", 3]
    call(kubesim.url, "DELETE",
         "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.life.example.com")
    assert call(kubesim.url, "GET", base).status == 404
    groups = [g["name"] for g in call(kubesim.url, "GET", "/apis").body["groups"]]
    assert "life.example.com" not in groups


def _watch_lines(url: str, out: list[dict[str, Any]], stop_after: int) -> None:
    pool = urllib3.PoolManager()
    resp = pool.request("GET", url, preload_content=False, timeout=urllib3.Timeout(read=10))
    buf = b""
    for chunk in resp.stream(1024):
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            out.append(json.loads(line))
            if len(out) >= stop_after:
                resp.release_conn()
                return


def test_watch_events(kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    first = call(kubesim.url, "POST", base, cm("w0")).body
    events: list[dict[str, Any]] = []
    t = threading.Thread(target=_watch_lines, args=(
        f"{kubesim.url}{base}?watch=true&labelSelector=app%3Dx&timeoutSeconds=10", events, 4))
    t.start()
    time.sleep(0.2)
    call(kubesim.url, "POST", base, cm("w1", labels={"app": "x"}))
    call(kubesim.url, "PATCH", f"{base}/w1", {"data": {"b": "2"}},
         content_type="application/merge-patch+json")
    # Moving out of the selector is seen as DELETED, as with a real watch cache.
    call(kubesim.url, "PATCH", f"{base}/w1", {"metadata": {"labels": {"app": "y"}}},
         content_type="application/merge-patch+json")
    call(kubesim.url, "PATCH", f"{base}/w0", {"metadata": {"labels": {"app": "x"}}},
         content_type="application/merge-patch+json")
    t.join(10)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1"), ("ADDED", "w0")]
    # From a resourceVersion: only later changes.
    later: list[dict[str, Any]] = []
    _watch_lines(f"{kubesim.url}{base}?watch=1&resourceVersion={first['metadata']['resourceVersion']}"
                 "&timeoutSeconds=2", later, 4)
    assert [e["type"] for e in later] == ["ADDED", "MODIFIED", "MODIFIED", "MODIFIED"]


def test_watch_initial_events_and_bookmark(kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    call(kubesim.url, "POST", base, cm("a"))
    call(kubesim.url, "POST", base, cm("b"))
    events: list[dict[str, Any]] = []
    _watch_lines(f"{kubesim.url}{base}?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
                 "&resourceVersionMatch=NotOlderThan&timeoutSeconds=5", events, 3)
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    assert events[2]["object"]["metadata"]["annotations"] == {
        "k8s.io/initial-events-end": "true"}
    plain: list[dict[str, Any]] = []
    _watch_lines(f"{kubesim.url}{base}?watch=1&timeoutSeconds=1", plain, 2)
    assert [e["type"] for e in plain] == ["ADDED", "ADDED"]


def test_watch_timeout_ends_stream(kubesim: KubeSim, namespace: str) -> None:
    start = time.monotonic()
    events: list[dict[str, Any]] = []
    _watch_lines(f"{kubesim.url}/api/v1/namespaces/{namespace}/configmaps?watch=1"
                 "&resourceVersion=1&timeoutSeconds=1", events, 1000)
    assert time.monotonic() - start < 5


def test_watch_too_old_resource_version() -> None:
    with KubeSim(history_size=5, simulate=False) as sim:
        for i in range(10):
            call(sim.url, "POST", "/api/v1/namespaces/default/configmaps", cm(f"c{i}"))
        events: list[dict[str, Any]] = []
        _watch_lines(f"{sim.url}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=2",
                     events, 1)
        assert events[0]["type"] == "ERROR"
        assert events[0]["object"]["code"] == 410
        assert events[0]["object"]["reason"] == "Expired"


def test_dry_run_stores_nothing(kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    r = call(kubesim.url, "POST", base, cm("dry"), dryRun="All")
    assert r.status == 201 and r.body["metadata"]["name"] == "dry"
    assert call(kubesim.url, "GET", f"{base}/dry").status == 404
    call(kubesim.url, "POST", base, cm("real"))
    rv = call(kubesim.url, "GET", f"{base}/real").body["metadata"]["resourceVersion"]
    p = call(kubesim.url, "PATCH", f"{base}/real", {"data": {"a": "9"}},
             content_type="application/merge-patch+json", dryRun="All")
    assert p.body["data"]["a"] == "9"
    after = call(kubesim.url, "GET", f"{base}/real").body
    assert after["data"]["a"] == "1" and after["metadata"]["resourceVersion"] == rv
    d = call(kubesim.url, "DELETE", f"{base}/real", dryRun="All")
    assert d.status == 200
    assert call(kubesim.url, "GET", f"{base}/real").status == 200


def test_duplicated_keys_in_an_associative_list_are_one_leaf(kubesim: KubeSim,
                                                             namespace: str) -> None:
    """A create may repeat an env name (only an apply may not); structured-merge-diff then owns
    the key `k:{"name":...}` as a leaf and keeps the repeated items until an apply sets it."""
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    apply = "application/apply-patch+yaml"

    def container(**fields: Any) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"template": {"spec": {"containers": [{"name": "app", **fields}]}}}}

    def env_fields(obj: dict[str, Any], manager: str) -> dict[str, Any]:
        entry = next(e for e in obj["metadata"]["managedFields"] if e["manager"] == manager)
        spec = entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]
        return dict(spec["f:containers"]['k:{"name":"app"}']["f:env"])

    labels = {"app": "web"}
    created = call(kubesim.url, "POST", base, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.25", "env": [
                {"name": "MODE", "value": "a"}, {"name": "MODE", "value": "b"},
                {"name": "LEVEL", "value": "1"}]}]}}},
    }, fieldManager="creator")
    assert created.status == 201, created.body
    owned = env_fields(created.body, "creator")
    assert owned['k:{"name":"MODE"}'] == {}
    assert owned['k:{"name":"LEVEL"}'] == {".": {}, "f:name": {}, "f:value": {}}

    # An apply that sets another item of the list keeps both MODE items.
    tuned = call(kubesim.url, "PATCH", f"{base}/web",
                 container(env=[{"name": "LEVEL", "value": "2"}]), content_type=apply,
                 fieldManager="tuner", force="true")
    assert tuned.status == 200, tuned.body
    env = [{"name": "MODE", "value": "a"}, {"name": "MODE", "value": "b"},
           {"name": "LEVEL", "value": "2"}]
    assert tuned.body["spec"]["template"]["spec"]["containers"][0]["env"] == env
    got = call(kubesim.url, "GET", f"{base}/web").body
    assert got["spec"]["template"]["spec"]["containers"][0]["env"] == env
    assert env_fields(got, "creator")['k:{"name":"MODE"}'] == {}

    # Applying the repeated key conflicts on the key itself; forced, one item replaces them.
    mode = container(env=[{"name": "MODE", "value": "c"}, {"name": "LEVEL", "value": "2"}])
    conflict = call(kubesim.url, "PATCH", f"{base}/web", mode, content_type=apply,
                    fieldManager="tuner")
    assert conflict.status == 409
    assert [c["field"] for c in conflict.body["details"]["causes"]] == [
        '.spec.template.spec.containers[name="app"].env[name="MODE"]']
    forced = call(kubesim.url, "PATCH", f"{base}/web", mode, content_type=apply,
                  fieldManager="tuner", force="true")
    assert forced.body["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "MODE", "value": "c"}, {"name": "LEVEL", "value": "2"}]
    assert 'k:{"name":"MODE"}' not in env_fields(forced.body, "creator")
    assert env_fields(forced.body, "tuner")['k:{"name":"MODE"}'] == {
        ".": {}, "f:name": {}, "f:value": {}}


def test_fault_injection_and_request_log(kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    call(kubesim.url, "POST", "/_kubesim/faults",
         {"path": f"/namespaces/{namespace}/configmaps$", "method": "POST", "status": 429,
          "retry_after": 2, "count": 1})
    r = call(kubesim.url, "POST", base, cm("f"))
    assert r.status == 429 and r.headers["Retry-After"] == "2"
    assert r.body["details"]["retryAfterSeconds"] == 2
    assert call(kubesim.url, "POST", base, cm("f")).status == 201
    call(kubesim.url, "POST", "/_kubesim/faults",
         {"path": f"/namespaces/{namespace}/configmaps/f$", "status": 500})
    assert call(kubesim.url, "GET", f"{base}/f").status == 500
    call(kubesim.url, "DELETE", "/_kubesim/faults")
    call(kubesim.url, "POST", "/_kubesim/faults",
         {"path": f"/namespaces/{namespace}/configmaps/f$", "latency": 0.3, "count": 1})
    start = time.monotonic()
    assert call(kubesim.url, "GET", f"{base}/f").status == 200
    assert time.monotonic() - start >= 0.3
    log = call(kubesim.url, "GET", "/_kubesim/requests").body
    mine = [e for e in log if e["path"].startswith(base)]
    assert [e["status"] for e in mine][:2] == [429, 201]
    assert all(e["end"] >= e["start"] for e in mine)
    assert mine[1]["verb"] == "create"


def test_periodic_bookmarks_and_expired_continue() -> None:
    with KubeSim(simulate=False, bookmark_interval=0.5, history_size=3) as sim:
        base = "/api/v1/namespaces/default/configmaps"
        for i in range(3):
            call(sim.url, "POST", base, cm(f"b{i}"))
        events: list[dict[str, Any]] = []
        rv = call(sim.url, "GET", base).body["metadata"]["resourceVersion"]
        _watch_lines(f"{sim.url}{base}?watch=1&allowWatchBookmarks=true&resourceVersion={rv}"
                     "&timeoutSeconds=3", events, 2)
        assert [e["type"] for e in events] == ["BOOKMARK", "BOOKMARK"]
        assert events[0]["object"]["metadata"]["resourceVersion"] == rv
        # Without allowWatchBookmarks a quiet watch stays quiet.
        quiet: list[dict[str, Any]] = []
        _watch_lines(f"{sim.url}{base}?watch=1&resourceVersion={rv}&timeoutSeconds=1.5",
                     quiet, 5)
        assert quiet == []
        page = call(sim.url, "GET", base, limit="1").body
        token = page["metadata"]["continue"]
        for i in range(5):  # enough writes to compact the history past the token
            call(sim.url, "POST", base, cm(f"later{i}"))
        expired = call(sim.url, "GET", base, limit="1", **{"continue": token})
        assert expired.status == 410 and expired.reason == "Expired"


MIB = 1024 * 1024


def test_request_body_over_3mib_is_refused_with_413_on_every_write(
        kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    call(kubesim.url, "POST", base, cm("small"))
    huge = cm("huge", {"blob": "x" * (3 * MIB)})
    too_large = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                 "message": "Request entity too large: limit is 3145728",
                 "reason": "RequestEntityTooLarge", "code": 413}
    writes = [
        ("POST", base, "application/json", {}),
        ("PUT", f"{base}/huge", "application/json", {}),
        ("PATCH", f"{base}/small", "application/merge-patch+json", {}),
        ("PATCH", f"{base}/huge", "application/apply-patch+yaml", {"fieldManager": "me"}),
        ("POST", base, "application/json", {"dryRun": "All"}),
    ]
    for method, path, ctype, query in writes:
        r = call(kubesim.url, method, path, huge, content_type=ctype, **query)
        assert (r.status, r.body) == (413, too_large), (method, path)
    options = json.dumps({"kind": "DeleteOptions", "apiVersion": "v1",
                          "propagationPolicy": "Background", "pad": "x" * (3 * MIB)})
    r = call(kubesim.url, "DELETE", f"{base}/small", options)
    assert (r.status, r.body) == (413, too_large)
    assert call(kubesim.url, "GET", f"{base}/small").status == 200
    assert call(kubesim.url, "GET", f"{base}/huge").status == 404


def test_object_over_the_etcd_request_limit_fails_with_etcds_500(
        kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    r = call(kubesim.url, "POST", base, cm("big", {"blob": "x" * (1600 * 1024)}))
    # kube-apiserver passes etcd's error through unmapped: a 500 without a reason.
    assert (r.status, r.body) == (500, {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "etcdserver: request is too large", "code": 500})
    assert call(kubesim.url, "GET", f"{base}/big").status == 404
    # Over 2 MiB the etcd client refuses to send it at all.
    r = call(kubesim.url, "PATCH", f"{base}/bigger",
             cm("bigger", {"blob": "x" * (2 * MIB + 1024)}),
             content_type="application/apply-patch+yaml", fieldManager="me")
    assert r.status == 500 and "reason" not in r.body
    assert r.body["message"].startswith(
        "rpc error: code = ResourceExhausted desc = trying to send message larger than max (")
    assert r.body["message"].endswith(" vs. 2097152)")
    # A dry run never reaches etcd.
    dry = call(kubesim.url, "POST", base, cm("big", {"blob": "x" * (1600 * 1024)}),
               dryRun="All")
    assert dry.status == 201
    # An update that grows a stored object past the limit leaves it as it was.
    first = call(kubesim.url, "POST", base, cm("grows", {"a": "x" * (1000 * 1024)})).body
    r = call(kubesim.url, "PATCH", f"{base}/grows", {"data": {"b": "y" * (700 * 1024)}},
             content_type="application/merge-patch+json")
    assert r.status == 500 and r.body["message"] == "etcdserver: request is too large"
    now = call(kubesim.url, "GET", f"{base}/grows").body
    assert now["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert set(now["data"]) == {"a"}


def test_annotations_over_256kib_are_invalid(kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    at_limit = cm("at-limit", annotations={"k": "v" * (256 * 1024 - 1)})
    assert call(kubesim.url, "POST", base, at_limit).status == 201
    for body, query in [
        (cm("over", annotations={"k": "v" * (256 * 1024)}), {}),
        # Two-byte characters: the limit counts bytes, not characters.
        (cm("over", annotations={"k": "é" * (128 * 1024)}), {"dryRun": "All"}),
    ]:
        r = call(kubesim.url, "POST", base, body, **query)
        assert r.status == 422 and r.reason == "Invalid"
        assert r.body["message"] == ('ConfigMap "over" is invalid: metadata.annotations: '
                                     "Too long: may not be more than 262144 bytes")
        assert r.body["details"]["causes"] == [
            {"reason": "FieldValueTooLong", "field": "metadata.annotations",
             "message": "Too long: may not be more than 262144 bytes"}]
    r = call(kubesim.url, "PATCH", f"{base}/at-limit", {"metadata": {"annotations": {"k2": "v"}}},
             content_type="application/merge-patch+json")
    assert r.status == 422

# --------------------------------------------------------------------------- server-side apply

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"


def test_apply_that_would_create_an_object_with_a_uid_is_409_conflict(
        kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    uid = "88e00824-7f0e-11e8-94a1-c8d3ffb15800"
    r = call(kubesim.url, "PATCH", f"{base}/ghost", cm("ghost", uid=uid), content_type=APPLY,
             fieldManager="apply_test")
    assert r.status == 409
    assert r.body["reason"] == "Conflict"
    assert r.body["message"] == (
        f'Operation cannot be fulfilled on configmaps "ghost": uid mismatch: the provided '
        f"object specified uid {uid}, and no existing object was found")
    assert r.body["details"] == {"name": "ghost", "kind": "configmaps"}
    assert call(kubesim.url, "GET", f"{base}/ghost").status == 404
    # Even for a group's kind and with dryRun: no object can have that uid yet.
    deps = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    body = scalable("ghost")
    body["metadata"]["uid"] = uid
    r = call(kubesim.url, "PATCH", f"{deps}/ghost", body, content_type=APPLY,
             fieldManager="apply_test", dryRun="All")
    assert r.status == 409
    assert r.body["message"].startswith('Operation cannot be fulfilled on deployments.apps "ghost"')


def test_renaming_a_manager_in_managed_fields_keeps_the_later_entry(
        kubesim: KubeSim, namespace: str) -> None:
    """Entries of one identity are no error: the later wins, which is how a client renames a
    field manager into another."""
    url = f"/api/v1/namespaces/{namespace}/configmaps/renamed"
    call(kubesim.url, "PATCH", url, cm("renamed", {"a": "1"}), content_type=APPLY,
         fieldManager="first")
    live = call(kubesim.url, "PATCH", url, cm("renamed", {"b": "2"}), content_type=APPLY,
                fieldManager="second").body
    first, second = live["metadata"]["managedFields"]
    assert (first["manager"], second["manager"]) == ("first", "second")
    r = call(kubesim.url, "PATCH", url,
             {"metadata": {"managedFields": [first, dict(second, manager="first")]}},
             content_type=MERGE)
    assert r.status == 200, r.body
    entries = r.body["metadata"]["managedFields"]
    assert [(e["manager"], e["operation"]) for e in entries] == [("first", "Apply")]
    assert entries[0]["fieldsV1"] == {"f:data": {"f:b": {}}}
    # "first" now owns data.b only: applying a new value of it is its own change.
    again = call(kubesim.url, "PATCH", url, cm("renamed", {"b": "3"}), content_type=APPLY,
                 fieldManager="first")
    assert again.status == 200 and again.body["data"] == {"a": "1", "b": "3"}


# --------------------------------------------------------------------------- /scale


def scalable(name: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]}}},
    }


def scale_body(name: str, namespace: str, replicas: int) -> dict[str, Any]:
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"replicas": replicas}}


def replicas_owners(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """manager -> its whole entry, for the entries that own .spec.replicas."""
    return {e["manager"]: e for e in obj["metadata"].get("managedFields") or []
            if "f:replicas" in e["fieldsV1"].get("f:spec", {})}


def test_scale_apply_conflicts_with_the_replicas_owner_and_force_takes_it_over(
        kubesim: KubeSim, namespace: str) -> None:
    """kube-apiserver's TestScaleAllResources: /scale writes are tracked on the parent."""
    url = f"/apis/apps/v1/namespaces/{namespace}/deployments/test"
    call(kubesim.url, "PATCH", url, scalable("test"), content_type=APPLY,
         fieldManager="apply_test")
    r = call(kubesim.url, "PATCH", f"{url}/scale", scale_body("test", namespace, 17),
             content_type=APPLY, fieldManager="apply_scale")
    assert r.status == 409, r.body
    assert r.body["message"] == (
        'Apply failed with 1 conflict: conflict with "apply_test": .spec.replicas')
    assert r.body["details"]["causes"] == [{"reason": "FieldManagerConflict",
                                            "message": 'conflict with "apply_test"',
                                            "field": ".spec.replicas"}]
    r = call(kubesim.url, "PATCH", f"{url}/scale", scale_body("test", namespace, 17),
             content_type=APPLY, fieldManager="apply_scale", force="true")
    assert r.status == 200 and r.body["kind"] == "Scale" and r.body["spec"] == {"replicas": 17}
    live = call(kubesim.url, "GET", url).body
    assert live["spec"]["replicas"] == 17
    owner = replicas_owners(live)
    assert list(owner) == ["apply_scale"]
    assert owner["apply_scale"]["operation"] == "Apply"
    assert owner["apply_scale"]["subresource"] == "scale"
    assert owner["apply_scale"]["apiVersion"] == "apps/v1"
    assert owner["apply_scale"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    # The main applier kept everything else. The scale entry has no time, so it sorts first.
    entries = live["metadata"]["managedFields"]
    assert [(e["manager"], "time" in e) for e in entries][:2] == [("apply_scale", False),
                                                                   ("apply_test", True)]
    assert set(entries[1]["fieldsV1"]["f:spec"]) == {"f:selector", "f:template"}
    # Applying the value the owner has shares it, on /scale as anywhere.
    call(kubesim.url, "PUT", f"{url}/scale", scale_body("test", namespace, 7),
         fieldManager="replace_test")
    r = call(kubesim.url, "PATCH", f"{url}/scale", scale_body("test", namespace, 7),
             content_type=APPLY, fieldManager="co_owning_test")
    assert r.status == 200
    assert set(replicas_owners(call(kubesim.url, "GET", url).body)) == {
        "replace_test", "co_owning_test"}
    # The main applier now conflicts with both, each named with its subresource.
    r = call(kubesim.url, "PATCH", url, scalable("test"), content_type=APPLY,
             fieldManager="apply_test")
    assert r.status == 409
    assert sorted(c["message"] for c in r.body["details"]["causes"]) == [
        'conflict with "co_owning_test" with subresource "scale"',
        'conflict with "replace_test" with subresource "scale" using apps/v1']


def test_scale_update_without_replicas_is_accepted_and_only_replicas_moves(
        kubesim: KubeSim, namespace: str) -> None:
    url = f"/apis/apps/v1/namespaces/{namespace}/deployments/noreps"
    call(kubesim.url, "PATCH", url, scalable("noreps", 3), content_type=APPLY,
         fieldManager="apply_test")
    # Status in a /scale patch changes nothing, and nobody's ownership (TestScaleUpdateOnlyStatus).
    r = call(kubesim.url, "PATCH", f"{url}/scale", {"status": {"replicas": 42}},
             content_type=MERGE, fieldManager="scale_test")
    assert r.status == 200 and r.body["spec"] == {"replicas": 3}
    live = call(kubesim.url, "GET", url).body
    assert live["spec"]["replicas"] == 3 and list(replicas_owners(live)) == ["apply_test"]
    # A Scale without spec.replicas decodes as zero replicas, which Scale omits: accepted, the
    # parent scaled to 0 and nobody owns replicas any more.
    body = scale_body("noreps", namespace, 0)
    del body["spec"]
    r = call(kubesim.url, "PUT", f"{url}/scale", body, fieldManager="put_test")
    assert r.status == 200, r.body
    assert r.body["spec"] == {}
    live = call(kubesim.url, "GET", url).body
    assert live["spec"]["replicas"] == 0 and replicas_owners(live) == {}
    # A stale resourceVersion in the Scale is the parent's precondition.
    stale = scale_body("noreps", namespace, 2)
    stale["metadata"]["resourceVersion"] = "1"
    assert call(kubesim.url, "PUT", f"{url}/scale", stale).reason == "Conflict"
    negative = call(kubesim.url, "PUT", f"{url}/scale", scale_body("noreps", namespace, -1))
    assert negative.status == 422
    assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in (
        negative.body["message"])


def test_status_bodies_are_the_real_servers_bytes(kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    missing = call(kubesim.url, "GET", f"{base}/nope")
    assert missing.raw == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"configmaps \\"nope\\" not found","reason":"NotFound",'
        b'"details":{"name":"nope","kind":"configmaps"},"code":404}\n')
    grouped = call(kubesim.url, "GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/nope")
    assert grouped.raw == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"deployments.apps \\"nope\\" not found","reason":"NotFound",'
        b'"details":{"name":"nope","group":"apps","kind":"deployments"},"code":404}\n')
    created = call(kubesim.url, "POST", base, {"apiVersion": "v1", "kind": "ConfigMap",
                                               "metadata": {"name": "gone"}})
    uid = created.body["metadata"]["uid"]
    deleted = call(kubesim.url, "DELETE", f"{base}/gone")
    assert deleted.raw == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success",'
        b'"details":{"name":"gone","kind":"configmaps","uid":"' + uid.encode() + b'"}}\n')
    invalid = call(kubesim.url, "POST", base, {"apiVersion": "v1", "kind": "ConfigMap",
                                               "metadata": {"name": "Bad_Name"}})
    assert invalid.status == 422
    assert invalid.raw.index(b'"reason":"Invalid"') < invalid.raw.index(b'"details":') \
        < invalid.raw.index(b'"code":422') and invalid.raw.endswith(b"}\n")


def test_an_error_with_no_reason_has_no_reason_key() -> None:
    with KubeSim(simulate=False, etcd_max_request_bytes=4096) as sim:
        big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
               "data": {"k": "x" * 8192}}
        r = call(sim.url, "POST", "/api/v1/namespaces/default/configmaps", big)
        assert r.raw == (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
                         b'"message":"etcdserver: request is too large","code":500}\n')


def test_every_json_response_ends_with_a_newline(kubesim: KubeSim, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nl"}}
    replies = [
        call(kubesim.url, "POST", base, cm),
        call(kubesim.url, "GET", f"{base}/nl"),
        call(kubesim.url, "GET", base),
        call(kubesim.url, "PATCH", f"{base}/nl", {"data": {"a": "1"}},
             content_type="application/merge-patch+json"),
        call(kubesim.url, "GET", "/version"),
        call(kubesim.url, "GET", "/api/v1"),
        call(kubesim.url, "GET", "/apis"),
        call(kubesim.url, "DELETE", f"{base}/nl"),
    ]
    for r in replies:
        assert r.status < 300 and r.raw.endswith(b"}\n") and not r.raw.endswith(b"\n\n"), r.raw
        assert json.loads(r.raw) == r.body


def test_discovery_lists_replicationcontrollers_nodes_and_apiservices(kubesim: KubeSim) -> None:
    core = {r["name"]: r for r in call(kubesim.url, "GET", "/api/v1").body["resources"]}
    assert core["replicationcontrollers"]["shortNames"] == ["rc"]
    assert core["replicationcontrollers"]["namespaced"] is True
    assert {"replicationcontrollers/status", "replicationcontrollers/scale",
            "nodes/status"} <= set(core)
    assert core["nodes"]["namespaced"] is False and core["nodes"]["kind"] == "Node"
    groups = [g["name"] for g in call(kubesim.url, "GET", "/apis").body["groups"]]
    assert groups[0] == "apiregistration.k8s.io"
    reg = call(kubesim.url, "GET", "/apis/apiregistration.k8s.io/v1").body["resources"]
    assert {"apiservices", "apiservices/status"} == {r["name"] for r in reg}
    assert call(kubesim.url, "GET", "/api/v1/nodes").body["items"] == []
