"""The cheap drift sweep (`gitops_tasks.sweeping`): digests and fingerprints, the Redis
`SeenStore`, and `Sweeper.sweep` against kubesim over HTTP and real git repositories, with the
fingerprints recorded exactly as the refresh task records them (`compared_fingerprint`)."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from gitops_tasks.cluster import Destinations
from gitops_tasks.model import keys, parse_application
from gitops_tasks.model.resources import ResourceKey
from gitops_tasks.redisconn import client_from_url
from gitops_tasks.settings import GitSettings, ReconcileSettings
from gitops_tasks.source import GitMirrors
from gitops_tasks.sweeping import (
    SEEN_KEY,
    SeenStore,
    Sweeper,
    SweepResult,
    app_id,
    compared_fingerprint,
    error_fingerprint,
    fingerprint,
    inventory,
    labelled_versions,
    live_digest,
    recorded_spec,
    spec_digest,
)
from kubesim.server import KubeSim
from tests.kubesim.http import call
from tests.redisserver import free_port
from tests.source.gitservers import Origin
from tests.test_reconcile import Env, configmap

HARD = 600.0

# ---------------------------------------------------------------------------- digests


def _app_obj() -> dict[str, Any]:
    return {"apiVersion": keys.API_VERSION, "kind": "Application",
            "metadata": {"name": "web", "namespace": "ctl", "resourceVersion": "5",
                         "generation": 1},
            "spec": {"source": {"repoURL": "https://example.com/r.git", "path": "a",
                                "targetRevision": "main"},
                     "destination": {"server": "https://kubernetes.default.svc",
                                     "namespace": "d"}}}


def test_spec_digest_follows_the_spec_only() -> None:
    obj = _app_obj()
    digest = spec_digest(obj)
    assert len(digest) == 16
    other = copy.deepcopy(obj)
    other["status"] = {"sync": {"status": "Synced"}, "resources": [{"kind": "X"}]}
    other["operation"] = {"sync": {"revision": "main"}}
    other["metadata"].update(resourceVersion="99", generation=4,
                             annotations={keys.REFRESH_ANNOTATION: "hard"},
                             labels={"team": "a"})
    assert spec_digest(other) == digest
    # Key order does not matter; any value in the spec does.
    reordered = copy.deepcopy(obj)
    reordered["spec"] = dict(reversed(list(obj["spec"].items())))
    assert spec_digest(reordered) == digest
    edited = copy.deepcopy(obj)
    edited["spec"]["source"]["path"] = "b"
    assert spec_digest(edited) != digest
    added = copy.deepcopy(obj)
    added["spec"]["syncPolicy"] = {"automated": {}}
    assert spec_digest(added) != digest
    # An invalid or missing spec still has a digest (the sweep hashes what is there).
    assert spec_digest({"spec": {"nonsense": [1, 2]}}) != spec_digest({}) == spec_digest(
        {"spec": None})


def test_fingerprints_and_recorded_spec() -> None:
    assert fingerprint("abc", "s1", "l1") == "abc|s1|l1"
    assert error_fingerprint("abc", "s1") == "error|abc|s1"
    assert error_fingerprint("", "s1") == "error||s1"
    assert recorded_spec(fingerprint("abc", "s1", "l1")) == "s1"
    assert recorded_spec(error_fingerprint("abc", "s1")) == "s1"
    assert recorded_spec(error_fingerprint("", "s2")) == "s2"
    for junk in ("", "abc", "a|b", "a|b|c|d"):
        assert recorded_spec(junk) is None
    # Normal and error fingerprints of the same commit and spec never collide.
    assert fingerprint("abc", "s1", "") != error_fingerprint("abc", "s1")


def test_live_digest_is_order_independent_and_version_sensitive() -> None:
    a, b = ResourceKey("", "ConfigMap", "ns", "a"), ResourceKey("apps", "Deployment", "ns", "b")
    assert live_digest({a: "1", b: "2"}) == live_digest({b: "2", a: "1"})
    assert live_digest({a: "1", b: "2"}) != live_digest({a: "1", b: "3"})
    assert live_digest({a: "1"}) != live_digest({a: "1", b: "2"})
    assert live_digest({}) != live_digest({a: ""})


def test_inventory_from_status_resources() -> None:
    obj = {"status": {"resources": [
        {"group": "", "version": "v1", "kind": "ConfigMap", "namespace": "ns", "name": "cm"},
        {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "ns",
         "name": "web", "status": "Synced"},
        {"version": "v1", "kind": "Namespace", "name": "ns"},  # cluster-scoped, no group
        {"group": "x.io", "kind": "Widget", "name": "no-version"},
        {"version": "v1", "kind": "", "name": "no-kind"},
        {"version": "v1", "kind": "ConfigMap"},  # no name
        "not a dict",
    ]}}
    assert inventory(obj) == {
        ResourceKey("", "ConfigMap", "ns", "cm"): "v1",
        ResourceKey("apps", "Deployment", "ns", "web"): "apps/v1",
        ResourceKey("", "Namespace", "", "ns"): "v1",
    }
    assert inventory({}) == {} == inventory({"status": None}) == inventory(
        {"status": {"resources": None}})


def _live(name: str, rv: str, label: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "resourceVersion": rv}
    if label is not None:
        meta["labels"] = {keys.APP_LABEL: label, "other": "x"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def test_labelled_versions_counts_only_objects_with_the_apps_label() -> None:
    k = {n: ResourceKey("", "ConfigMap", "ns", n) for n in
         ("mine", "theirs", "unlabelled", "missing", "unwanted")}
    live = {k["mine"]: _live("mine", "11", "web"),
            k["theirs"]: _live("theirs", "12", "other"),
            k["unlabelled"]: _live("unlabelled", "13", None),
            k["unwanted"]: _live("unwanted", "14", "web")}
    wanted = [k["mine"], k["theirs"], k["unlabelled"], k["missing"]]
    assert labelled_versions("web", wanted, live) == {k["mine"]: "11"}
    assert labelled_versions("other", wanted, live) == {k["theirs"]: "12"}


def test_labelled_versions_of_a_long_app_name_use_its_label_value() -> None:
    name = "a-very-long-application-name-" + "x" * 60
    label = keys.app_label_value(name)
    assert label != name
    key = ResourceKey("", "ConfigMap", "ns", "cm")
    assert labelled_versions(name, [key], {key: _live("cm", "7", label)}) == {key: "7"}
    assert labelled_versions(name, [key], {key: _live("cm", "7", name[:63])}) == {}


# ---------------------------------------------------------------------------- SeenStore


def test_seen_store_against_redis(redis_client: Any) -> None:
    store = SeenStore(redis_client)
    ident = f"ctl/{time.monotonic_ns()}"
    before = time.time()
    store.put(ident, "abc|s|l")
    store.put(ident + "-old", "error||s", at=1000.0)
    got = store.get_many([ident, ident + "-old", ident + "-never"])
    assert set(got) == {ident, ident + "-old"}
    assert got[ident][0] == "abc|s|l" and before <= got[ident][1] <= time.time()
    assert got[ident + "-old"] == ("error||s", 1000.0)
    assert redis_client.hgetall(SEEN_KEY.format(app=ident))[b"fingerprint"] == b"abc|s|l"
    store.put(ident, "def|s|l", at=2000.0)  # replaced, not appended
    assert store.get_many([ident]) == {ident: ("def|s|l", 2000.0)}
    store.forget(ident)
    assert store.get_many([ident]) == {}
    assert store.get_many([]) == {}
    # A record whose time is unreadable counts as no record.
    redis_client.hset(SEEN_KEY.format(app=ident), mapping={"fingerprint": "x", "at": "soon"})
    assert store.get_many([ident]) == {}
    store.forget(ident)
    store.forget(ident + "-old")


def _dead_redis() -> redis.Redis:
    """A client as the runtime builds one (short retries), for a port nobody listens on."""
    return client_from_url(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.2,
                           socket_connect_timeout=0.2)


def test_seen_store_redis_errors_are_misses() -> None:
    dead = _dead_redis()
    store = SeenStore(dead)
    store.put("ctl/web", "abc|s|l")  # logged, not raised
    assert store.get_many(["ctl/web", "ctl/other"]) == {}
    store.forget("ctl/web")
    dead.close()


def test_seen_store_without_redis() -> None:
    store = SeenStore(None)
    store.put("ctl/web", "x")
    assert store.get_many(["ctl/web"]) == {}
    store.forget("ctl/web")


# ---------------------------------------------------------------------------- the sweep


@dataclass
class Sweep:
    result: SweepResult
    ls_remotes: int
    metadata_lists: list[Any]

    def due(self) -> dict[str, Any]:
        return {d.name: d for d in self.result.due}


class World:
    """Three synced apps on kubesim: `a` (a ConfigMap and a Secret) and `b` (a ConfigMap)
    from repo A, `c` (a ConfigMap) from repo B; each refreshed once and its fingerprint
    recorded as the refresh task records it."""

    def __init__(self, env: Env, api_client: Any, redis_client: Any, tmp: Path) -> None:
        self.env = env
        self.api_client = api_client
        self.tmp = tmp
        self.seen = SeenStore(redis_client)
        env.commit({"a/cm.yaml": configmap("a-cm"),
                    "a/secret.yaml": yaml.safe_dump({
                        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a-secret"},
                        "stringData": {"k": "v"}}),
                    "b/cm.yaml": configmap("b-cm")})
        self.repo_b = Origin(tmp / "served", tmp / "work", "repo-b")
        self.repo_b.commit({"c/cm.yaml": configmap("c-cm")})
        env.app("a", "a")
        env.app("b", "b")
        env.app("c", "c", source={"repoURL": self.repo_b.file_url, "path": "c",
                                  "targetRevision": "main"})
        for name in ("a", "b", "c"):
            app = parse_application(env.apps.get(name))
            assert env.reconciler.sync(app).succeeded
            self.record(name)

    def record(self, name: str) -> None:
        """What the refresh task does after a successful refresh."""
        obj = self.env.apps.get(name)
        assert obj is not None
        done = self.env.reconciler.refresh_app(parse_application(obj), obj=obj)
        self.seen.put(self.ident(name), compared_fingerprint(done.comparison, done.obj or obj))

    def ident(self, name: str) -> str:
        return app_id(self.env.control, name)

    def head(self, origin: Origin | None = None) -> str:
        return (origin or self.env.origin).git("rev-parse", "HEAD")

    def sweep(self, *, hard_interval: float = HARD, clock: Any = time.time,
              extra: Sequence[dict[str, Any]] = ()) -> Sweep:
        mirrors = GitMirrors(GitSettings(cache_dir=self.tmp / "sweep-cache"))
        sweeper = Sweeper(mirrors, Destinations(self.api_client,
                                                control_namespace=self.env.control),
                          self.seen, ReconcileSettings(hard_interval=hard_interval),
                          namespace=self.env.control, clock=clock)
        log = self.env.kubesim.request_log
        mark = len(log)
        result = sweeper.sweep(self.env.apps.list() + list(extra))
        lists = [r for r in log[mark:] if "PartialObjectMetadataList" in r.accept]
        return Sweep(result, mirrors.stats.ls_remotes, lists)

    def patch_app(self, name: str, patch: Any, *, status: bool = False) -> None:
        path = (f"/apis/gitops-tasks.io/v1alpha1/namespaces/{self.env.control}/applications/"
                f"{name}" + ("/status" if status else ""))
        r = call(self.env.kubesim.url, "PATCH", path, patch,
                 content_type="application/merge-patch+json")
        assert r.status == 200, r.body

    def create_app(self, name: str, source: dict[str, Any]) -> dict[str, Any]:
        obj = {"apiVersion": keys.API_VERSION, "kind": "Application",
               "metadata": {"name": name},
               "spec": {"source": source,
                        "destination": {"server": "https://kubernetes.default.svc",
                                        "namespace": self.env.dest}}}
        r = call(self.env.kubesim.url, "POST",
                 f"/apis/gitops-tasks.io/v1alpha1/namespaces/{self.env.control}/applications",
                 obj)
        assert r.status == 201, r.body
        body: dict[str, Any] = r.body
        return body


@pytest.fixture
def world(env: Env, api_client: Any, redis_client: Any, tmp_path: Path) -> Iterator[World]:
    w = World(env, api_client, redis_client, tmp_path)
    yield w
    live = SeenStore(redis_client)
    for name in [o["metadata"]["name"] for o in env.apps.list()]:
        live.forget(w.ident(name))


def test_nothing_moved_costs_one_ls_remote_per_repo_and_one_list_per_kind(world: World
                                                                         ) -> None:
    swept = world.sweep()
    assert swept.result.due == [], swept.result.due
    assert swept.result.problems == []
    assert swept.result.checked == 3
    assert swept.result.repos == 2 and swept.ls_remotes == 2
    # Kinds recorded by the apps: ConfigMap and Secret, one metadata-only list each.
    assert swept.result.lists == 2
    assert len(swept.metadata_lists) == 2, [r.path for r in swept.metadata_lists]
    assert sorted(r.path for r in swept.metadata_lists) == ["/api/v1/configmaps",
                                                            "/api/v1/secrets"]
    assert all(r.query.get("labelSelector") == keys.APP_LABEL for r in swept.metadata_lists)
    # The commits it resolved, for the refreshes it would queue.
    assert swept.result.shas == {
        (world.env.origin.file_url, "main"): world.head(),
        (world.repo_b.file_url, "main"): world.head(world.repo_b)}


def test_a_new_commit_makes_the_apps_of_that_repo_due(world: World) -> None:
    new = world.env.commit({"a/other.yaml": configmap("a-other")}, "more")
    due = world.sweep().due()
    assert set(due) == {"a", "b"}
    for name in ("a", "b"):
        assert due[name].sha == new and not due[name].hard
        assert due[name].reason == f"new commit {new[:12]}"


def test_a_live_edit_makes_only_that_app_due(world: World, kubectl: Any) -> None:
    kubectl.run("-n", world.env.dest, "patch", "configmap", "a-cm", "--type=merge",
                "-p", '{"data": {"k": "edited by hand"}}')
    due = world.sweep().due()
    assert set(due) == {"a"}
    assert due["a"].reason == "live objects changed" and due["a"].sha == world.head()
    # Refreshed again (as the queued refresh would), nothing is due any more.
    world.record("a")
    assert world.sweep().due() == {}


def test_a_deleted_or_unlabelled_object_makes_its_app_due(world: World, kubectl: Any) -> None:
    kubectl.run("-n", world.env.dest, "delete", "configmap", "b-cm")
    kubectl.run("-n", world.env.dest, "label", "secret", "a-secret", f"{keys.APP_LABEL}-")
    due = world.sweep().due()
    assert set(due) == {"a", "b"}
    assert {d.reason for d in due.values()} == {"live objects changed"}


def test_an_unrelated_object_changes_nothing(world: World, kubectl: Any) -> None:
    kubectl.run("-n", world.env.dest, "create", "configmap", "stranger", "--from-literal=k=v")
    kubectl.run("-n", world.env.dest, "label", "configmap", "stranger",
                f"{keys.APP_LABEL}=someone-else")
    assert world.sweep().due() == {}


def test_a_spec_edit_makes_the_app_due_a_status_write_does_not(world: World) -> None:
    world.patch_app("b", {"status": {"health": {"status": "Degraded", "message": "hand"}}},
                    status=True)
    world.patch_app("b", {"metadata": {"annotations": {"note": "hello"},
                                       "labels": {"team": "x"}}})
    assert world.sweep().due() == {}
    world.patch_app("b", {"spec": {"source": {"directory": {"recurse": True}}}})
    due = world.sweep().due()
    assert set(due) == {"b"}
    assert due["b"].reason == "the Application changed" and due["b"].sha == world.head()


def test_a_stale_record_forces_a_hard_refresh(world: World) -> None:
    fp, _ = world.seen.get_many([world.ident("c")])[world.ident("c")]
    world.seen.put(world.ident("c"), fp, at=time.time() - HARD - 1)
    due = world.sweep().due()
    assert set(due) == {"c"}
    assert due["c"].hard and due["c"].reason == "hard refresh interval"
    assert due["c"].sha == world.head(world.repo_b)
    # A sweep later by the hard interval finds every app due, all hard.
    later = world.sweep(clock=lambda: time.time() + HARD + 1).due()
    assert set(later) == {"a", "b", "c"} and all(d.hard for d in later.values())


def test_an_app_never_refreshed_is_due(world: World) -> None:
    world.seen.forget(world.ident("b"))
    due = world.sweep().due()
    assert set(due) == {"b"}
    assert due["b"].reason == "not refreshed yet" and due["b"].sha == world.head()
    assert not due["b"].hard


def test_an_app_being_deleted_is_left_to_the_deletion_path(world: World) -> None:
    obj = world.env.apps.get("a")
    assert obj is not None
    going = copy.deepcopy(obj)
    going["metadata"].update(name="going", deletionTimestamp="2026-01-01T00:00:00Z")
    swept = world.sweep(extra=[going])
    assert swept.result.checked == 3 and swept.due() == {}


def test_an_invalid_application_is_not_due_again_until_its_spec_changes(world: World) -> None:
    obj = world.create_app("bad", {"repoURL": world.env.origin.file_url, "path": "../escape",
                                   "targetRevision": "main"})
    # What the refresh task records for an invalid Application.
    world.seen.put(world.ident("bad"), error_fingerprint("", spec_digest(obj)))
    assert world.sweep().due() == {}
    # A new commit does not help an invalid spec; an edit of the spec might.
    world.env.commit({"a/x.yaml": configmap("x")})
    assert "bad" not in world.sweep().due()
    world.patch_app("bad", {"spec": {"source": {"path": "../still-bad"}}})
    due = world.sweep().due()
    assert due["bad"].reason == "the Application changed" and due["bad"].sha is None
    # After the hard interval it is tried again anyway.
    world.patch_app("bad", {"spec": {"source": {"path": "../escape"}}})
    later = world.sweep(clock=lambda: time.time() + HARD + 1).due()
    assert later["bad"].hard


def test_an_unresolvable_revision_is_not_due_unless_stale(world: World) -> None:
    obj = world.create_app("lost", {"repoURL": world.env.origin.file_url, "path": "a",
                                    "targetRevision": "no-such-branch"})
    # The refresh failed for good (RevisionNotFound) without a resolved commit.
    world.seen.put(world.ident("lost"), error_fingerprint("", spec_digest(obj)))
    swept = world.sweep()
    assert swept.due() == {}
    assert any("no-such-branch" in p for p in swept.result.problems), swept.result.problems
    # The other apps of the repo still resolved.
    assert swept.result.shas[(world.env.origin.file_url, "main")] == world.head()
    later = world.sweep(clock=lambda: time.time() + HARD + 1).due()
    assert later["lost"].hard and later["lost"].sha is None


def test_a_failed_refresh_is_retried_on_a_new_commit_or_spec_only(world: World) -> None:
    # The refresh of `c` failed for good at its current commit (say, a bad manifest).
    head = world.head(world.repo_b)
    obj = world.env.apps.get("c")
    assert obj is not None
    world.seen.put(world.ident("c"), error_fingerprint(head, spec_digest(obj)))
    assert world.sweep().due() == {}
    new = world.repo_b.commit({"c/cm.yaml": configmap("c-cm", {"k": "fixed"})}, "fix")
    due = world.sweep().due()
    assert set(due) == {"c"}
    assert due["c"].sha == new and due["c"].reason == "new commit or spec since a failed refresh"
    # Stale, unchanged: a hard retry.
    world.seen.put(world.ident("c"), error_fingerprint(new, spec_digest(obj)),
                   at=time.time() - HARD - 1)
    due = world.sweep().due()
    assert due["c"].hard and due["c"].reason == "hard refresh interval"


def test_redis_down_makes_every_app_due(world: World) -> None:
    dead = _dead_redis()
    world.seen = SeenStore(dead)
    due = world.sweep().due()
    assert set(due) == {"a", "b", "c"}
    assert {d.reason for d in due.values()} == {"not refreshed yet"}
    dead.close()


def test_a_list_that_fails_leaves_its_apps_for_the_next_sweep(world: World,
                                                              kubesim: KubeSim) -> None:
    fault = kubesim.add_fault(path=r"^/api/v1/secrets$", method="GET", status=503)
    try:
        swept = world.sweep()
    finally:
        kubesim.faults.remove(fault)
    assert swept.result.lists == 1
    assert any("Secret" in p for p in swept.result.problems), swept.result.problems
    # The sweep goes on: `a`'s Secret is unseen this time, so `a` is refreshed (its live
    # digest differs); `b` and `c` need no Secret and are unaffected.
    assert set(swept.due()) == {"a"}
