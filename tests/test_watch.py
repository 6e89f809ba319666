"""The Application watch (`scheduler.watch`): the pure `actions()` decision table, and
`ApplicationWatch.run` against kubesim over HTTP with a fake enqueue that records what it was
asked to queue (Redis for the refresh fingerprints is real)."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from gitops_tasks.cluster import Cluster
from gitops_tasks.errors import TransientError
from gitops_tasks.model import keys
from gitops_tasks.sweeping import (
    SeenStore,
    app_id,
    error_fingerprint,
    fingerprint,
    spec_digest,
)
from kubesim.server import KubeSim
from scheduler.watch import ApplicationWatch, actions
from tests.kubesim.http import call

OURS = keys.RESOURCES_FINALIZER
ARGO = keys.ARGO_RESOURCES_FINALIZER
APPS = "/apis/gitops-tasks.io/v1alpha1/namespaces/{ns}/applications"


def application(name: str = "web", **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": keys.API_VERSION, "kind": "Application",
        "metadata": {"name": name, "namespace": "ctl", "generation": 1,
                     "resourceVersion": "10"},
        "spec": {"source": {"repoURL": "https://example.com/r.git", "path": "app",
                            "targetRevision": "main"},
                 "destination": {"server": "https://kubernetes.default.svc",
                                 "namespace": "dest"}},
    }
    obj.update(extra)
    return obj


# ------------------------------------------------------------------------------ actions


def test_never_refreshed_means_refresh() -> None:
    assert actions(application(), None) == [("refresh", False)]


def test_the_recorded_spec_means_nothing_to_do() -> None:
    obj = application()
    assert actions(obj, spec_digest(obj)) == []


def test_spec_change_means_refresh() -> None:
    obj = application()
    recorded = spec_digest(obj)
    obj["spec"]["source"]["path"] = "other"
    assert actions(obj, recorded) == [("refresh", False)]


def test_status_generation_and_metadata_changes_mean_nothing() -> None:
    obj = application()
    recorded = spec_digest(obj)
    changed = copy.deepcopy(obj)
    changed["status"] = {"sync": {"status": "OutOfSync"}, "health": {"status": "Degraded"}}
    changed["metadata"].update(generation=7, resourceVersion="99",
                               labels={"team": "a"}, annotations={"note": "x"})
    assert actions(changed, recorded) == []


@pytest.mark.parametrize(("annotations", "hard"), [
    ({keys.REFRESH_ANNOTATION: "normal"}, False),
    ({keys.REFRESH_ANNOTATION: "hard"}, True),
    ({keys.ARGO_REFRESH_ANNOTATION: "normal"}, False),
    ({keys.ARGO_REFRESH_ANNOTATION: "hard"}, True),
    ({keys.REFRESH_ANNOTATION: "normal", keys.ARGO_REFRESH_ANNOTATION: "hard"}, True),
    ({keys.REFRESH_ANNOTATION: ""}, False),
])
def test_refresh_annotation_means_refresh_even_with_the_recorded_spec(
        annotations: dict[str, str], hard: bool) -> None:
    obj = application()
    obj["metadata"]["annotations"] = annotations
    assert actions(obj, spec_digest(obj)) == [("refresh", hard)]
    # With a new spec too: still one refresh, hard if asked.
    assert actions(obj, "something-else") == [("refresh", hard)]


def test_pending_operation_means_sync() -> None:
    obj = application(operation={"sync": {"revision": "main"},
                                 "initiatedBy": {"username": "alice"}})
    assert actions(obj, spec_digest(obj)) == [("sync", False)]
    assert actions(obj, None) == [("refresh", False), ("sync", False)]


def test_an_operation_already_running_means_no_sync() -> None:
    obj = application(operation={"id": "op-1", "sync": {"revision": "main"}})
    obj["status"] = {"operationState": {"operation": {"id": "op-1", "sync": {}},
                                        "phase": "Running"}}
    assert actions(obj, spec_digest(obj)) == []


def test_an_operation_that_is_not_a_sync_means_nothing() -> None:
    obj = application(operation={"initiatedBy": {"username": "alice"}})
    assert actions(obj, spec_digest(obj)) == []


@pytest.mark.parametrize("finalizer", [
    OURS, f"{OURS}/background", f"{OURS}/foreground",
    ARGO, f"{ARGO}/background", f"{ARGO}/foreground",
])
def test_deleting_with_the_resources_finalizer_means_prune(finalizer: str) -> None:
    obj = application()
    obj["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z",
                           finalizers=["example.com/other", finalizer],
                           annotations={keys.REFRESH_ANNOTATION: "hard"})
    obj["operation"] = {"sync": {}}
    # Only the cascade: no refresh or sync of an Application being deleted.
    assert actions(obj, None) == [("prune", False)]


@pytest.mark.parametrize("finalizers", [None, [], ["example.com/other"], [f"{OURS}/orphan"]])
def test_deleting_without_the_resources_finalizer_means_nothing(
        finalizers: list[str] | None) -> None:
    obj = application()
    obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if finalizers is not None:
        obj["metadata"]["finalizers"] = finalizers
    assert actions(obj, None) == []


# ------------------------------------------------------------------------ the watch loop


@dataclass
class Queue:
    """The fake producers: what the watch asked to enqueue, with when."""

    calls: list[tuple[str, str, str, float]] = field(default_factory=list)
    hard: list[tuple[str, str]] = field(default_factory=list)
    fail: int = 0  # raise TransientError for this many next calls
    lock: threading.Lock = field(default_factory=threading.Lock)

    def enqueue(self, kind: str, namespace: str, name: str, **_: Any) -> str:
        with self.lock:
            if self.fail:
                self.fail -= 1
                raise TransientError("Redis is down")
            self.calls.append((kind, namespace, name, time.monotonic()))
        return "id"

    def request_hard(self, namespace: str, name: str) -> None:
        with self.lock:
            self.hard.append((namespace, name))

    def of(self, name: str, kind: str = "refresh") -> list[float]:
        with self.lock:
            return [t for k, _, n, t in self.calls if n == name and k == kind]

    def kinds(self, name: str) -> list[str]:
        with self.lock:
            return [k for k, _, n, _ in self.calls if n == name]


def wait_until(predicate: Callable[[], bool], timeout: float = 3.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.01)
    raise AssertionError(f"not within {timeout}s")


class Control:
    """A control namespace on kubesim, Applications in it, and a running watch."""

    def __init__(self, kubesim: KubeSim, api_client: Any, namespace: str, seen: SeenStore
                 ) -> None:
        self.kubesim = kubesim
        self.url = kubesim.url
        self.ns = namespace
        self.seen = seen
        self.cluster = Cluster(api_client, name="control", qps=0)
        self.queue = Queue()
        self.watch: ApplicationWatch | None = None
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, timeout_seconds: int = 2) -> ApplicationWatch:
        self.watch = ApplicationWatch(self.cluster, self.ns, self.seen, self.queue.enqueue,
                                      self.queue.request_hard, timeout_seconds=timeout_seconds)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.watch.run, args=(self.stop,), daemon=True)
        self.thread.start()
        wait_until(self._watching)
        return self.watch

    def _watching(self) -> bool:
        # A watch request is logged once it ended; the live one shows in the server's watchers.
        return any(w.namespace == self.ns for w in list(self.kubesim.store.watchers))

    def halt(self) -> None:
        self.stop.set()
        if self.thread is not None and self.thread.is_alive():
            # The watch sees its stop event at its next event (or when the server ends the
            # watch): give it one.
            time.sleep(0.05)
            self.create(f"wake-{time.monotonic_ns()}")
            self.thread.join(10)
            assert not self.thread.is_alive(), "the watch did not stop"

    def create(self, name: str, **extra: Any) -> dict[str, Any]:
        obj = application(name, **extra)
        obj["metadata"] = {k: v for k, v in obj["metadata"].items()
                           if k in ("name", "finalizers", "annotations")}
        r = call(self.url, "POST", APPS.format(ns=self.ns), obj)
        assert r.status == 201, r.body
        body: dict[str, Any] = r.body
        return body

    def patch(self, name: str, patch: Any, *, status: bool = False) -> dict[str, Any]:
        path = APPS.format(ns=self.ns) + f"/{name}" + ("/status" if status else "")
        r = call(self.url, "PATCH", path, patch, content_type="application/merge-patch+json")
        assert r.status == 200, r.body
        body: dict[str, Any] = r.body
        return body

    def delete(self, name: str) -> None:
        r = call(self.url, "DELETE", APPS.format(ns=self.ns) + f"/{name}")
        assert r.status in (200, 202), r.body


@pytest.fixture
def control(kubesim: KubeSim, api_client: Any, namespace: str, redis_client: Any,
            application_crd: None) -> Iterator[Control]:
    ctl = Control(kubesim, api_client, namespace, SeenStore(redis_client))
    yield ctl
    ctl.halt()


def test_create_status_write_and_spec_edit(control: Control) -> None:
    control.start()
    created = time.monotonic()
    control.create("web")
    wait_until(lambda: bool(control.queue.of("web")))
    assert control.queue.of("web")[0] - created < 1.0
    # A status write (what every refresh and sync does) queues nothing.
    control.patch("web", {"status": {"sync": {"status": "Synced"}}}, status=True)
    control.patch("web", {"metadata": {"labels": {"team": "a"}}})
    time.sleep(0.4)
    assert control.queue.kinds("web") == ["refresh"]
    # A spec edit queues one refresh.
    edited = time.monotonic()
    control.patch("web", {"spec": {"source": {"path": "other"}}})
    wait_until(lambda: len(control.queue.of("web")) == 2)
    assert control.queue.of("web")[1] - edited < 1.0
    time.sleep(0.3)
    assert control.queue.kinds("web") == ["refresh", "refresh"]
    assert control.queue.hard == []


def test_a_burst_of_events_for_one_edit_queues_one_refresh(control: Control) -> None:
    control.create("web")
    control.start()
    wait_until(lambda: bool(control.queue.of("web")))
    control.patch("web", {"spec": {"source": {"path": "v2"}}})
    for i in range(19):  # what follows an edit: status writes, a label, ...
        control.patch("web", {"status": {"reconciledAt": f"t{i}",
                                         "sync": {"status": f"S{i}"}}}, status=True)
    time.sleep(0.5)
    assert len(control.queue.of("web")) == 2  # the ADDED one and one for the edit


def test_handle_twenty_modified_events_of_one_spec(control: Control) -> None:
    """The same, without the server: 20 MODIFIED events carrying one new spec."""
    watch = ApplicationWatch(control.cluster, control.ns, control.seen,
                             control.queue.enqueue, control.queue.request_hard)
    obj = application("burst")
    watch.handle("ADDED", obj)
    edited = copy.deepcopy(obj)
    edited["spec"]["source"]["path"] = "new"
    for i in range(20):
        edited["metadata"]["resourceVersion"] = str(100 + i)
        watch.handle("MODIFIED", edited)
    assert len(control.queue.of("burst")) == 2


def test_refresh_annotation_normal_and_hard(control: Control) -> None:
    control.create("web")
    control.start()
    wait_until(lambda: bool(control.queue.of("web")))
    control.patch("web", {"metadata": {"annotations": {keys.ARGO_REFRESH_ANNOTATION: "normal"}}})
    wait_until(lambda: len(control.queue.of("web")) == 2)
    assert control.queue.hard == []
    control.patch("web", {"metadata": {"annotations": {keys.REFRESH_ANNOTATION: "hard"}}})
    wait_until(lambda: len(control.queue.of("web")) >= 3)
    assert (control.ns, "web") in control.queue.hard


def test_sync_request_queues_a_sync(control: Control) -> None:
    control.create("web")
    control.start()
    wait_until(lambda: bool(control.queue.of("web")))
    control.patch("web", {"operation": {"sync": {"revision": "main"},
                                        "initiatedBy": {"username": "alice"}}})
    wait_until(lambda: bool(control.queue.of("web", "sync")))
    # The request changed the generation, not the spec: no second refresh.
    assert control.queue.kinds("web") == ["refresh", "sync"]


def test_deletion_with_the_finalizer_queues_the_cascade_and_deleted_forgets(
        control: Control) -> None:
    control.create("web", metadata={"name": "web", "finalizers": [f"{ARGO}/background"]})
    control.create("plain")
    ident = app_id(control.ns, "web")
    control.start()
    wait_until(lambda: bool(control.queue.of("web")) and bool(control.queue.of("plain")))
    control.seen.put(ident, fingerprint("sha", "spec", "live"))
    control.seen.put(app_id(control.ns, "plain"), fingerprint("sha", "spec", "live"))
    control.delete("web")
    wait_until(lambda: bool(control.queue.of("web", "prune")))
    assert control.seen.get_many([ident])  # still there: the Application is still there
    control.patch("web", {"metadata": {"finalizers": None}})  # the cascade finished
    wait_until(lambda: not control.seen.get_many([ident]))
    # Without the finalizer: deleted at once, nothing queued, its record forgotten.
    control.delete("plain")
    wait_until(lambda: not control.seen.get_many([app_id(control.ns, "plain")]))
    assert control.queue.kinds("plain") == ["refresh"]


def test_a_restarted_watch_refreshes_only_what_the_last_refresh_did_not_see(
        control: Control) -> None:
    seen_obj = control.create("seen")
    control.create("unseen")
    failed_obj = control.create("failed")
    control.seen.put(app_id(control.ns, "seen"),
                     fingerprint("abc", spec_digest(seen_obj), "live"))
    control.seen.put(app_id(control.ns, "failed"),
                     error_fingerprint("", spec_digest(failed_obj)))
    control.start()
    wait_until(lambda: bool(control.queue.of("unseen")))
    time.sleep(0.3)
    assert control.queue.of("seen") == [] and control.queue.of("failed") == []


def _compact(control: Control, kubesim: KubeSim) -> float:
    """Move the server's resourceVersion past the watch's, then forget the history: the
    watch's next request (after its 1 s timeout) gets 410 Expired. Returns when."""
    r = call(kubesim.url, "POST", f"/api/v1/namespaces/{control.ns}/configmaps",
             {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bump"}})
    assert r.status == 201
    compacted = time.time()
    assert call(kubesim.url, "POST", "/_kubesim/compact").status == 200
    return compacted


def _watches_since(control: Control, kubesim: KubeSim, since: float) -> list[Any]:
    """The Application watch requests started since `since` (logged when they end)."""
    path = APPS.format(ns=control.ns)
    return [q for q in list(kubesim.request_log)
            if q.path == path and "watch" in q.query and q.start >= since]


def _lists_since(control: Control, kubesim: KubeSim, since: float) -> list[Any]:
    """The Application list requests (not watches) started since `since`."""
    path = APPS.format(ns=control.ns)
    return [q for q in list(kubesim.request_log)
            if q.path == path and "watch" not in q.query and q.start >= since]


def test_compaction_makes_the_watch_list_again_and_keep_going(control: Control,
                                                              kubesim: KubeSim) -> None:
    control.create("before")
    control.start(timeout_seconds=1)
    wait_until(lambda: bool(control.queue.of("before")))
    compacted = _compact(control, kubesim)
    # A watch from the old version (answered with 410), then a fresh list, then a watch from
    # the list's version.
    wait_until(lambda: bool(_lists_since(control, kubesim, compacted)), 6)
    relist = _lists_since(control, kubesim, compacted)[0]
    watches = _watches_since(control, kubesim, compacted)
    assert watches and watches[0].start < relist.start, "no watch answered with 410 first"
    wait_until(lambda: any(q.start > relist.start
                           for q in _watches_since(control, kubesim, compacted)), 4)
    # Still watching: a new Application is seen; the relist re-queued nothing.
    control.create("after")
    wait_until(lambda: bool(control.queue.of("after")), 4)
    assert len(control.queue.of("before")) == 1
    assert control.thread is not None and control.thread.is_alive()


def test_after_compaction_the_watch_lists_again_only_once(control: Control,
                                                          kubesim: KubeSim) -> None:
    control.create("quiet")
    control.start(timeout_seconds=1)
    wait_until(lambda: bool(control.queue.of("quiet")))
    compacted = _compact(control, kubesim)
    time.sleep(3.2)  # three watch timeouts
    relists = _lists_since(control, kubesim, compacted)
    assert len(relists) == 1, [q.query.get("resourceVersion")
                               for q in _watches_since(control, kubesim, compacted)]


def test_stop_ends_the_watch(control: Control) -> None:
    control.start(timeout_seconds=1)
    control.stop.set()
    assert control.thread is not None
    control.thread.join(3)  # at the latest when the server ends the 1 s watch
    assert not control.thread.is_alive()


def test_enqueue_errors_do_not_end_the_watch(control: Control) -> None:
    control.queue.fail = 1
    control.start()
    control.create("first")  # its refresh fails to queue
    time.sleep(0.3)
    control.create("second")
    wait_until(lambda: bool(control.queue.of("second")))
    assert control.thread is not None and control.thread.is_alive()


def test_a_refresh_that_failed_to_queue_is_queued_at_the_next_event(control: Control) -> None:
    control.queue.fail = 1
    control.start()
    control.create("web")  # its refresh fails to queue
    time.sleep(0.3)
    assert control.queue.of("web") == []
    control.patch("web", {"metadata": {"labels": {"touched": "yes"}}})  # any later event
    wait_until(lambda: bool(control.queue.of("web")), 1.5)
