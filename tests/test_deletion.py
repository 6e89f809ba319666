"""Cascade deletion of an Application's resources (`gitops_tasks.deletion`) against kubesim over
HTTP: which objects a step deletes, how it waits for objects with finalizers of their own, and
how it removes the Application's finalizer without touching anyone else's."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from gitops_tasks.appstore import AppStore
from gitops_tasks.cluster import Cluster, Destinations
from gitops_tasks.deletion import Cascade, resources_finalizer
from gitops_tasks.errors import LockLost, PermanentError
from gitops_tasks.model import keys
from gitops_tasks.model.operation import Operation, OperationState, ResourceResult, SyncRequest
from gitops_tasks.model.resources import ResourceKey
from kubesim.server import KubeSim
from tests.kubesim.http import call

OURS = keys.RESOURCES_FINALIZER
ARGO = keys.ARGO_RESOURCES_FINALIZER
HOLD = "example.com/hold"
APPS = "/apis/gitops-tasks.io/v1alpha1/namespaces/{ns}/applications"
CMS = "/api/v1/namespaces/{ns}/configmaps"


@pytest.mark.parametrize(("finalizers", "expected"), [
    ([OURS], (OURS, "Foreground")),
    ([f"{OURS}/foreground"], (f"{OURS}/foreground", "Foreground")),
    ([f"{OURS}/background"], (f"{OURS}/background", "Background")),
    ([ARGO], (ARGO, "Foreground")),
    ([f"{ARGO}/foreground"], (f"{ARGO}/foreground", "Foreground")),
    ([f"{ARGO}/background"], (f"{ARGO}/background", "Background")),
    ([HOLD, f"{ARGO}/background"], (f"{ARGO}/background", "Background")),
    ([f"{OURS}/orphan"], None),  # not a variant anyone defines
    ([f"x{OURS}"], None),
    ([HOLD], None),
    ([], None),
    (None, None),
])
def test_resources_finalizer(finalizers: list[str] | None,
                             expected: tuple[str, str] | None) -> None:
    obj: dict[str, Any] = {"metadata": {"name": "a"}}
    if finalizers is not None:
        obj["metadata"]["finalizers"] = finalizers
    assert resources_finalizer(obj) == expected


def test_resources_finalizer_without_metadata() -> None:
    assert resources_finalizer({}) is None


class World:
    def __init__(self, kubesim: KubeSim, api_client: Any) -> None:
        self.url = kubesim.url
        ident = uuid.uuid4().hex[:8]
        self.control, self.dest = f"ctl-{ident}", f"dst-{ident}"
        for ns in (self.control, self.dest):
            r = call(self.url, "POST", "/api/v1/namespaces",
                     {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            assert r.status == 201, r.body
        self.cluster = Cluster(api_client, name="in-cluster", qps=0)
        self.apps = AppStore(self.cluster, self.control)
        self.cascade = Cascade(self.apps, Destinations(api_client,
                                                       control_namespace=self.control))
        self.fences = 0

    def fence(self) -> None:
        self.fences += 1

    def configmap(self, name: str, owner: str | None, finalizers: list[str] | None = None
                  ) -> None:
        meta: dict[str, Any] = {"name": name}
        if owner is not None:
            meta["annotations"] = {keys.TRACKING_ANNOTATION: keys.tracking_id(
                owner, "", "ConfigMap", self.dest, name)}
            meta["labels"] = {keys.APP_LABEL: keys.app_label_value(owner)}
        if finalizers:
            meta["finalizers"] = finalizers
        r = call(self.url, "POST", CMS.format(ns=self.dest),
                 {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}})
        assert r.status == 201, r.body

    def cm(self, name: str) -> dict[str, Any] | None:
        r = call(self.url, "GET", CMS.format(ns=self.dest) + f"/{name}")
        return r.body if r.status == 200 else None

    def patch_cm(self, name: str, patch: Any) -> None:
        r = call(self.url, "PATCH", CMS.format(ns=self.dest) + f"/{name}", patch,
                 content_type="application/merge-patch+json")
        assert r.status == 200, r.body

    def application(self, name: str, finalizers: list[str], resources: list[str], *,
                    operation_results: Sequence[str] = (),
                    path: str = "app", delete: bool = True) -> dict[str, Any]:
        obj = {"apiVersion": keys.API_VERSION, "kind": "Application",
               "metadata": {"name": name, "finalizers": finalizers},
               "spec": {"source": {"repoURL": "https://example.com/repo.git", "path": path},
                        "destination": {"server": "https://kubernetes.default.svc",
                                        "namespace": self.dest}}}
        r = call(self.url, "POST", APPS.format(ns=self.control), obj)
        assert r.status == 201, r.body
        status: dict[str, Any] = {"resources": [
            {"version": "v1", "kind": "ConfigMap", "namespace": self.dest, "name": n}
            for n in resources]}
        if operation_results:
            op = Operation.new(SyncRequest(), initiated_by="test")
            status["operationState"] = OperationState(op, phase="Succeeded", results=[
                ResourceResult(ResourceKey("", "ConfigMap", self.dest, n), "v1", "Sync", 0,
                               "Applied") for n in operation_results]).to_dict()
        r = call(self.url, "PATCH", APPS.format(ns=self.control) + f"/{name}/status",
                 {"status": status}, content_type="application/merge-patch+json")
        assert r.status == 200, r.body
        if not delete:
            got = self.apps.get(name)
            assert got is not None
            return got
        return self.delete_app(name)

    def delete_app(self, name: str) -> dict[str, Any]:
        r = call(self.url, "DELETE", APPS.format(ns=self.control) + f"/{name}")
        assert r.status in (200, 202), r.body
        got = self.apps.get(name)
        assert got is not None and got["metadata"].get("deletionTimestamp"), got
        return got


@pytest.fixture
def world(kubesim: KubeSim, api_client: Any, application_crd: None) -> World:
    return World(kubesim, api_client)


def test_deletes_only_what_the_tracking_annotation_gives_to_the_app(world: World) -> None:
    world.configmap("mine", "web")
    world.configmap("theirs", "other")  # recorded by web, but another app's now
    world.configmap("untracked", None)  # recorded by web, but nobody's (a user took it over)
    world.configmap("not-recorded", "web")  # web's, but not in its inventory
    obj = world.application("web", [OURS], ["mine", "theirs", "untracked", "gone-already"])
    step = world.cascade.step(obj, world.fence)
    # Deleting started: "mine" is Foreground-deleted (it may be gone at once or be going).
    mine = world.cm("mine")
    assert mine is None or mine["metadata"].get("deletionTimestamp")
    assert world.cm("theirs") is not None and world.cm("untracked") is not None
    assert world.cm("not-recorded") is not None
    if not step.done:  # still going: the next step sees it gone and lets the app go
        assert step.remaining == 1
        step = world.cascade.step(world.apps.get("web") or {}, world.fence)
    assert step.done, step
    assert world.apps.get("web") is None  # our finalizer was the last one
    assert world.cm("theirs") is not None and world.cm("untracked") is not None
    assert world.fences >= 2  # before the delete and before the finalizer removal


def test_objects_only_the_last_operation_applied_are_deleted_too(world: World) -> None:
    world.configmap("recorded", "web")
    world.configmap("applied-since", "web")
    obj = world.application("web", [f"{OURS}/background"], ["recorded"],
                            operation_results=["applied-since"])
    step = world.cascade.step(obj, world.fence)
    assert world.cm("recorded") is None and world.cm("applied-since") is None
    if not step.done:
        step = world.cascade.step(world.apps.get("web") or {}, world.fence)
    assert step.done and world.apps.get("web") is None


def test_waits_while_an_object_with_a_finalizer_of_its_own_is_still_there(world: World) -> None:
    world.configmap("held", "web", finalizers=[HOLD])
    world.configmap("free", "web")
    obj = world.application("web", [ARGO], ["held", "free"])
    step = world.cascade.step(obj, world.fence)
    assert not step.done and step.remaining >= 1
    held = world.cm("held")
    assert held is not None and held["metadata"].get("deletionTimestamp")
    assert world.cm("free") is None
    # Again and again: still waiting, and the Application keeps its finalizer.
    for _ in range(2):
        fresh = world.apps.get("web")
        assert fresh is not None and ARGO in fresh["metadata"]["finalizers"]
        step = world.cascade.step(fresh, world.fence)
        assert not step.done and step.remaining == 1, step
        assert "waiting for 1" in step.message
    # Its owner lets it go: the next step finishes and removes the Application's finalizer.
    world.patch_cm("held", {"metadata": {"finalizers": None}})
    assert world.cm("held") is None
    step = world.cascade.step(world.apps.get("web") or {}, world.fence)
    assert step.done and step.remaining == 0
    assert world.apps.get("web") is None


def test_finalizer_removed_by_index_only_while_it_is_at_that_index(world: World) -> None:
    world.configmap("mine", "web")
    world.application("web", [OURS], ["mine"], delete=False)
    # Someone puts a finalizer of theirs before ours...
    r = call(world.url, "PATCH", APPS.format(ns=world.control) + "/web",
             [{"op": "add", "path": "/metadata/finalizers/0", "value": HOLD}],
             content_type="application/json-patch+json")
    assert r.status == 200, r.body
    fresh = world.delete_app("web")
    assert fresh["metadata"]["finalizers"] == [HOLD, OURS]
    # ...while the cascade works with a copy from before: ours at index 0 there.
    stale = {**fresh, "metadata": {**fresh["metadata"], "finalizers": [OURS]}}
    step = world.cascade.step(stale, world.fence)
    if not step.done:
        step = world.cascade.step(stale, world.fence)
    assert step.done
    fresh = world.apps.get("web") or {}
    assert fresh, "HOLD must keep the Application"
    assert fresh["metadata"]["finalizers"] == [HOLD]
    call(world.url, "PATCH", APPS.format(ns=world.control) + "/web",
         {"metadata": {"finalizers": None}}, content_type="application/merge-patch+json")


def test_finalizer_removed_when_another_finalizer_went_before_it(world: World) -> None:
    """Our index moved down (someone removed theirs in between): ours still goes, theirs is
    untouched."""
    world.configmap("mine", "web")
    stale = world.application("web", [HOLD, "example.com/second", OURS], ["mine"])
    call(world.url, "PATCH", APPS.format(ns=world.control) + "/web",
         [{"op": "remove", "path": "/metadata/finalizers/0"}],
         content_type="application/json-patch+json")
    step = world.cascade.step(stale, world.fence)
    if not step.done:
        step = world.cascade.step(world.apps.get("web") or {}, world.fence)
    assert step.done
    fresh = world.apps.get("web")
    assert fresh is not None and fresh["metadata"]["finalizers"] == ["example.com/second"]
    call(world.url, "PATCH", APPS.format(ns=world.control) + "/web",
         {"metadata": {"finalizers": None}}, content_type="application/merge-patch+json")


def test_without_the_resources_finalizer_nothing_is_deleted(world: World) -> None:
    world.configmap("mine", "web")
    obj = world.application("web", [HOLD], ["mine"])
    step = world.cascade.step(obj, world.fence)
    assert step.done and "left in place" in step.message
    assert world.cm("mine") is not None
    assert world.fences == 0
    fresh = world.apps.get("web")
    assert fresh is not None and fresh["metadata"]["finalizers"] == [HOLD]
    call(world.url, "PATCH", APPS.format(ns=world.control) + "/web",
         {"metadata": {"finalizers": None}}, content_type="application/merge-patch+json")


def test_a_failing_fence_stops_before_any_delete(world: World) -> None:
    world.configmap("mine", "web")
    obj = world.application("web", [OURS], ["mine"])

    def lost() -> None:
        raise LockLost("web", reason="test")

    with pytest.raises(LockLost):
        world.cascade.step(obj, lost)
    assert world.cm("mine") is not None
    fresh = world.apps.get("web")
    assert fresh is not None and fresh["metadata"]["finalizers"] == [OURS]
    step = world.cascade.step(fresh, world.fence)
    if not step.done:
        step = world.cascade.step(world.apps.get("web") or {}, world.fence)
    assert step.done and world.apps.get("web") is None


def test_invalid_application_is_refused_with_how_to_get_out(world: World) -> None:
    world.configmap("mine", "web")
    obj = world.application("web", [OURS], ["mine"], path="../escape")
    with pytest.raises(PermanentError) as caught:
        world.cascade.step(obj, world.fence)
    assert OURS in caught.value.message and "invalid Application" in caught.value.message
    assert world.cm("mine") is not None
    call(world.url, "PATCH", APPS.format(ns=world.control) + "/web",
         {"metadata": {"finalizers": None}}, content_type="application/merge-patch+json")
