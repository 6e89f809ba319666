"""`Cluster.list_metadata` (metadata-only lists, paged) and `Cluster.watch` (events, bookmarks,
410 Expired) against kubesim over HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gitops_tasks.cluster import Cluster, WatchExpired
from kubesim.server import KubeSim
from tests.cluster.conftest import client_for
from tests.kubesim.http import call

METADATA_LIST = "PartialObjectMetadataList"


def _cm(url: str, ns: str, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    r = call(url, "POST", f"/api/v1/namespaces/{ns}/configmaps",
             {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
              "data": {"big": "x" * 1000}})
    assert r.status == 201, r.body
    body: dict[str, Any] = r.body
    return body


def _ns(url: str, name: str) -> None:
    r = call(url, "POST", "/api/v1/namespaces",
             {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert r.status == 201, r.body


# ----------------------------------------------------------------------- list_metadata


def test_list_metadata_pages_and_returns_metadata_only(kubesim: KubeSim, api_client: Any,
                                                       namespace: str) -> None:
    for i in range(5):
        _cm(kubesim.url, namespace, f"cm-{i}", {"tier": "a" if i % 2 else "b"})
    cluster = Cluster(api_client, name="kubesim", qps=0, page_size=2)
    start = len(kubesim.request_log)
    items, version = cluster.list_metadata("v1", "ConfigMap", namespace=namespace)
    assert sorted(i["metadata"]["name"] for i in items) == [f"cm-{i}" for i in range(5)]
    assert all(i["apiVersion"] == "v1" and i["kind"] == "ConfigMap" for i in items)
    assert all("data" not in i for i in items)  # metadata only: the data never travelled
    assert all(i["metadata"]["resourceVersion"] for i in items)
    assert all(i["metadata"]["labels"]["tier"] in ("a", "b") for i in items)
    assert version.isdigit()
    pages = [r for r in kubesim.request_log[start:]
             if r.path == f"/api/v1/namespaces/{namespace}/configmaps"]
    assert len(pages) == 3  # 2 + 2 + 1
    assert all(METADATA_LIST in r.accept for r in pages)
    assert all(r.query.get("limit") == "2" for r in pages)
    assert "continue" not in pages[0].query
    assert all(r.query.get("continue") for r in pages[1:])


def test_list_metadata_label_selector(kubesim: KubeSim, api_client: Any,
                                      namespace: str) -> None:
    _cm(kubesim.url, namespace, "front", {"tier": "front", "app": "x"})
    _cm(kubesim.url, namespace, "back", {"tier": "back"})
    _cm(kubesim.url, namespace, "none")
    cluster = Cluster(api_client, name="kubesim", qps=0, page_size=2)
    items, _ = cluster.list_metadata("v1", "ConfigMap", namespace=namespace,
                                     label_selector="tier=front")
    assert [i["metadata"]["name"] for i in items] == ["front"]
    items, _ = cluster.list_metadata("v1", "ConfigMap", namespace=namespace,
                                     label_selector="tier")
    assert sorted(i["metadata"]["name"] for i in items) == ["back", "front"]
    items, _ = cluster.list_metadata("v1", "ConfigMap", namespace=namespace,
                                     label_selector="tier,app")
    assert [i["metadata"]["name"] for i in items] == ["front"]


def test_list_metadata_of_all_namespaces(kubesim: KubeSim, api_client: Any,
                                         namespace: str) -> None:
    other = namespace + "-b"
    _ns(kubesim.url, other)
    label = {"sel": namespace}
    _cm(kubesim.url, namespace, "one", label)
    _cm(kubesim.url, other, "two", label)
    cluster = Cluster(api_client, name="kubesim", qps=0)
    items, _ = cluster.list_metadata("v1", "ConfigMap", label_selector=f"sel={namespace}")
    assert sorted((i["metadata"]["namespace"], i["metadata"]["name"]) for i in items) == [
        (namespace, "one"), (other, "two")]


def test_empty_metadata_list_has_items_null(kubesim: KubeSim, api_client: Any,
                                            namespace: str) -> None:
    raw = call(kubesim.url, "GET", f"/api/v1/namespaces/{namespace}/configmaps",
               accept="application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1")
    assert raw.status == 200 and raw.body["items"] is None  # what the client must cope with
    cluster = Cluster(api_client, name="kubesim", qps=0, page_size=2)
    items, version = cluster.list_metadata("v1", "ConfigMap", namespace=namespace)
    assert items == []
    assert version.isdigit() and int(version) >= int(raw.body["metadata"]["resourceVersion"])


def test_list_metadata_of_a_group_kind(kubesim: KubeSim, api_client: Any,
                                       namespace: str) -> None:
    r = call(kubesim.url, "POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    assert r.status == 201, r.body
    cluster = Cluster(api_client, name="kubesim", qps=0)
    items, _ = cluster.list_metadata("apps/v1", "Deployment", namespace=namespace)
    assert [(i["apiVersion"], i["kind"], i["metadata"]["name"]) for i in items] == [
        ("apps/v1", "Deployment", "web")]
    assert "spec" not in items[0]


# ------------------------------------------------------------------------------- watch


class Collector:
    """Runs one `Cluster.watch` in a thread and keeps what it yields."""

    def __init__(self, cluster: Cluster, namespace: str, **kwargs: Any) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, args=(cluster, namespace, kwargs),
                                       daemon=True)
        self.thread.start()

    def _run(self, cluster: Cluster, namespace: str, kwargs: dict[str, Any]) -> None:
        try:
            for kind, obj in cluster.watch("v1", "ConfigMap", namespace=namespace, **kwargs):
                with self._lock:
                    self.events.append((kind, obj))
        except BaseException as exc:  # reported to the test
            self.error = exc

    def seen(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(k, str(o["metadata"].get("name", ""))) for k, o in self.events]

    def wait_for(self, n: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.seen()) >= n:
                return
            time.sleep(0.02)
        raise AssertionError(f"only {self.seen()} after {timeout}s")


def test_watch_streams_added_modified_deleted(kubesim: KubeSim, api_client: Any,
                                              namespace: str) -> None:
    before = _cm(kubesim.url, namespace, "existing")
    cluster = Cluster(api_client, name="kubesim", qps=0)
    watch = Collector(cluster, namespace,
                      resource_version=before["metadata"]["resourceVersion"], timeout_seconds=2)
    time.sleep(0.2)
    created = _cm(kubesim.url, namespace, "new")
    r = call(kubesim.url, "PATCH", f"/api/v1/namespaces/{namespace}/configmaps/new",
             {"data": {"k": "v2"}}, content_type="application/merge-patch+json")
    assert r.status == 200
    assert call(kubesim.url, "DELETE", f"/api/v1/namespaces/{namespace}/configmaps/new"
                ).status == 200
    watch.wait_for(3)
    # Only what happened after the resourceVersion we started from: no ADDED for "existing".
    assert watch.seen()[:3] == [("ADDED", "new"), ("MODIFIED", "new"), ("DELETED", "new")]
    assert watch.events[0][1]["apiVersion"] == "v1" and watch.events[0][1]["kind"] == "ConfigMap"
    assert watch.events[1][1]["data"]["k"] == "v2"
    versions = [int(o["metadata"]["resourceVersion"]) for _, o in watch.events[:3]]
    assert versions == sorted(versions)
    assert versions[0] == int(created["metadata"]["resourceVersion"])
    watch.thread.join(5)
    assert not watch.thread.is_alive(), "the watch did not end after timeout_seconds"
    assert watch.error is None


def test_watch_without_version_lists_first(kubesim: KubeSim, api_client: Any,
                                           namespace: str) -> None:
    _cm(kubesim.url, namespace, "a")
    _cm(kubesim.url, namespace, "b")
    cluster = Cluster(api_client, name="kubesim", qps=0)
    watch = Collector(cluster, namespace, timeout_seconds=1)
    watch.wait_for(2)
    assert sorted(watch.seen()) == [("ADDED", "a"), ("ADDED", "b")]
    watch.thread.join(5)
    assert watch.error is None


@pytest.fixture
def bookmarking_sim() -> Iterator[KubeSim]:
    with KubeSim(simulate=False, bookmark_interval=0.3) as sim:
        yield sim


def test_watch_yields_bookmarks(bookmarking_sim: KubeSim) -> None:
    _ns(bookmarking_sim.url, "quiet")
    api = client_for(bookmarking_sim.url)
    try:
        cluster = Cluster(api, name="private", qps=0)
        _cm(bookmarking_sim.url, "quiet", "a")
        events = list(cluster.watch("v1", "ConfigMap", namespace="quiet",
                                    resource_version="1", timeout_seconds=1))
        kinds = [k for k, _ in events]
        assert kinds[0] == "ADDED" and "BOOKMARK" in kinds, kinds
        bookmark = next(o for k, o in events if k == "BOOKMARK")
        # Only a resourceVersion to resume from, no object content.
        assert bookmark["metadata"]["resourceVersion"].isdigit()
        assert "name" not in bookmark["metadata"]
        # The request asked for bookmarks and a timeout.
        deadline = time.monotonic() + 2  # logged once the server has finished the stream
        while True:
            watch_req = [r for r in bookmarking_sim.request_log if "watch" in r.query]
            if watch_req or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert watch_req and watch_req[-1].query["allowWatchBookmarks"] == "true"
        assert watch_req[-1].query["timeoutSeconds"] == "1"
    finally:
        api.close()


def test_watch_from_a_compacted_version_raises_watch_expired(private_sim: KubeSim) -> None:
    _ns(private_sim.url, "gone")
    first = _cm(private_sim.url, "gone", "a")
    _cm(private_sim.url, "gone", "b")
    r = call(private_sim.url, "POST", "/_kubesim/compact")
    assert r.status == 200, r.body
    api = client_for(private_sim.url)
    try:
        cluster = Cluster(api, name="private", qps=0)
        with pytest.raises(WatchExpired) as caught:
            list(cluster.watch("v1", "ConfigMap", namespace="gone",
                               resource_version=first["metadata"]["resourceVersion"],
                               timeout_seconds=1))
        assert caught.value.status == 410
        # Listing again (no resourceVersion) works and shows the current state.
        events = list(cluster.watch("v1", "ConfigMap", namespace="gone", timeout_seconds=1))
        assert sorted((k, o["metadata"]["name"]) for k, o in events
                      if k != "BOOKMARK") == [("ADDED", "a"), ("ADDED", "b")]
    finally:
        api.close()


def test_watch_with_label_selector(kubesim: KubeSim, api_client: Any, namespace: str) -> None:
    cluster = Cluster(api_client, name="kubesim", qps=0)
    watch = Collector(cluster, namespace, timeout_seconds=1, label_selector="pick=yes")
    time.sleep(0.2)
    _cm(kubesim.url, namespace, "skipped", {"pick": "no"})
    _cm(kubesim.url, namespace, "picked", {"pick": "yes"})
    watch.wait_for(1)
    watch.thread.join(5)
    assert watch.seen() == [("ADDED", "picked")]
