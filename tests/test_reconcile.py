"""The scenarios that make GitOps worth having, end to end: real git, kubesim over HTTP, Redis.

Each test gets its own repository, control namespace and destination namespaces, so tests run
in parallel against the session's kubesim.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops_tasks.cluster import Cluster, Destinations
from gitops_tasks.diff import DryRunCache
from gitops_tasks.manifests import ManifestSource
from gitops_tasks.model import (
    Application,
    Backoff,
    Retry,
    SyncPolicy,
    keys,
    parse_application,
)
from gitops_tasks.model import status as st
from gitops_tasks.reconcile import AppStore, Reconciler
from gitops_tasks.render.cache import RenderCache
from gitops_tasks.settings import GitSettings, ReconcileSettings, TaskSettings
from gitops_tasks.source import GitMirrors
from kubesim.server import KubeSim
from tests.source.gitservers import Origin

from .kubesim.http import call

ROOT = Path(__file__).resolve().parents[1]


def deployment(name: str, image: str = "nginx:1.27", labels: dict[str, str] | None = None,
               replicas: int | None = 2, **annotations: str) -> str:
    doc: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name, **(labels or {})}},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "main", "image": image}]}}},
    }
    if replicas is not None:
        doc["spec"]["replicas"] = replicas
    if annotations:
        doc["metadata"]["annotations"] = {k.replace("__", "/").replace("_", "-"): v
                                          for k, v in annotations.items()}
    return yaml.safe_dump(doc)


def configmap(name: str, data: dict[str, str] | None = None,
              annotations: dict[str, str] | None = None) -> str:
    meta: dict[str, Any] = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                           "data": data or {"k": "v"}})


class Env:
    """One test's world: a repo, a control namespace, a reconciler."""

    def __init__(self, kubesim: KubeSim, api_client: Any, redis_client: Any, tmp: Path) -> None:
        self.kubesim = kubesim
        self.id = uuid.uuid4().hex[:8]
        self.control = f"ctl-{self.id}"
        self.dest = f"dst-{self.id}"
        for ns in (self.control, self.dest):
            call(kubesim.url, "POST", "/api/v1/namespaces",
                 {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        self.origin = Origin(tmp / "served", tmp / "work", "repo")
        self.cluster = Cluster(api_client, name="in-cluster")
        self.apps = AppStore(self.cluster, self.control)
        self.reconciler = Reconciler(
            ManifestSource(GitMirrors(GitSettings(cache_dir=tmp / "cache")),
                           RenderCache(redis_client)),
            Destinations(api_client, control_namespace=self.control),
            apps=self.apps,
            dry_run_cache=DryRunCache(redis_client),
            hook_timeout=30,
            # Fast polls between steps; a transient error retries the step after ~50 ms.
            tasks=TaskSettings(sync_poll_interval=0.05, retry_backoff=0.05, max_retries=2),
            reconcile=ReconcileSettings(self_heal_backoff=0.0),
        )

    def commit(self, files: dict[str, str | None], message: str = "change") -> str:
        for path, content in files.items():
            if content is None:
                (self.origin.work / path).unlink()
        return self.origin.commit({p: c for p, c in files.items() if c is not None}, message)

    def app(self, name: str, path: str, *, automated: dict[str, Any] | None = None,
            depends_on: list[str] | None = None, sync_options: list[str] | None = None,
            **spec: Any) -> Application:
        obj: dict[str, Any] = {
            "apiVersion": keys.API_VERSION, "kind": "Application",
            "metadata": {"name": name, "namespace": self.control},
            "spec": {"source": {"repoURL": self.origin.file_url, "path": path,
                                "targetRevision": "main"},
                     "destination": {"server": "https://kubernetes.default.svc",
                                     "namespace": self.dest},
                     **spec},
        }
        policy: dict[str, Any] = {}
        if automated is not None:
            policy["automated"] = automated
        if sync_options:
            policy["syncOptions"] = sync_options
        if policy:
            obj["spec"]["syncPolicy"] = policy
        if depends_on:
            obj["spec"]["dependsOn"] = depends_on
        r = call(self.kubesim.url, "POST",
                 f"/apis/gitops-tasks.io/v1alpha1/namespaces/{self.control}/applications", obj)
        assert r.status == 201, r.body
        return parse_application(r.body)

    def status(self, name: str) -> dict[str, Any]:
        obj = self.apps.get(name)
        assert obj is not None
        return dict(obj.get("status") or {})

    def live(self, kind_path: str, name: str, ns: str | None = None) -> dict[str, Any] | None:
        ns = ns or self.dest
        r = call(self.kubesim.url, "GET", kind_path.format(ns=ns) + f"/{name}")
        return r.body if r.status == 200 else None

    def wait(self, predicate: Callable[[], bool], timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError("condition not reached in time")


DEPLOY = "/apis/apps/v1/namespaces/{ns}/deployments"
CM = "/api/v1/namespaces/{ns}/configmaps"




WIDGET_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.%(g)s}
spec:
  group: %(g)s
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""


def test_first_sync_of_a_multi_kind_app_in_order(env: Env) -> None:
    group = f"w{env.id}.example.com"
    ns2 = f"extra-{env.id}"
    env.commit({
        "app/ns.yaml": yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": ns2}}),
        "app/crd.yaml": WIDGET_CRD % {"g": group},
        "app/widget.yaml": yaml.safe_dump({"apiVersion": f"{group}/v1", "kind": "Widget",
                                           "metadata": {"name": "w1"}, "spec": {"size": 3}}),
        "app/cm.yaml": configmap("settings"),
        "app/secret.yaml": yaml.safe_dump({"apiVersion": "v1", "kind": "Secret",
                                           "metadata": {"name": "creds"},
                                           "stringData": {"password": "hunter2"}}),
        "app/svc.yaml": yaml.safe_dump({"apiVersion": "v1", "kind": "Service",
                                        "metadata": {"name": "web"},
                                        "spec": {"selector": {"app": "web"},
                                                 "ports": [{"port": 80}]}}),
        "app/deploy.yaml": deployment("web"),
    })
    app = env.app("multi", "app")
    cmp, due = env.reconciler.refresh(app)
    assert cmp is not None and cmp.sync_status == "OutOfSync" and not due
    outcome = env.reconciler.sync(app)
    assert outcome.succeeded, outcome.message
    order = [r.key.kind for r in outcome.results]
    assert order.index("Namespace") < order.index("CustomResourceDefinition") < order.index(
        "Widget")
    assert order.index("ConfigMap") < order.index("Service") < order.index("Deployment")
    assert all(r.result == st.APPLIED for r in outcome.results)
    assert env.live(CM, "settings") is not None
    widget = call(env.kubesim.url, "GET",
                  f"/apis/{group}/v1/namespaces/{env.dest}/widgets/w1").body
    assert widget["spec"] == {"size": 3}
    assert widget["metadata"]["annotations"][keys.TRACKING_ANNOTATION] == (
        f"multi:{group}/Widget:{env.dest}/w1")
    env.wait(lambda: (env.reconciler.refresh(app)[0] or pytest.fail()).health.status.value
             == "Healthy")
    status = env.status("multi")
    assert status["sync"]["status"] == "Synced"
    assert status["health"]["status"] == "Healthy"
    assert status["sync"]["revision"] == env.origin.git("rev-parse", "HEAD")
    assert len(status["history"]) == 1
    assert status["operationState"]["phase"] == "Succeeded"
    kinds = {r["kind"] for r in status["resources"]}
    assert {"Namespace", "CustomResourceDefinition", "Widget", "Deployment"} <= kinds
    # Nothing changed: a refresh performs no dry-run and writes nothing.
    rv = env.apps.get("multi")["metadata"]["resourceVersion"]  # type: ignore[index]
    cmp2, _ = env.reconciler.refresh(app)
    assert cmp2 is not None and cmp2.dry_runs == 0 and cmp2.sync_status == "Synced"
    assert env.apps.get("multi")["metadata"]["resourceVersion"] == rv  # type: ignore[index]
    call(env.kubesim.url, "DELETE",
         f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}")


def test_skip_dry_run_on_missing_resource_waits_for_a_crd_another_app_installs(
        env: Env) -> None:
    group = f"s{env.id}.example.com"
    widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1"},
              "spec": {"size": 1}}
    env.commit({"crds/crd.yaml": WIDGET_CRD % {"g": group},
                "strict/widget.yaml": yaml.safe_dump(widget),
                "lenient/cm.yaml": configmap("lenient-cm"),
                "lenient/widget.yaml": yaml.safe_dump(widget)})
    strict = env.app("strict", "strict")
    lenient = env.app("lenient", "lenient",
                      sync_options=["SkipDryRunOnMissingResource=true"])
    cmp, _ = env.reconciler.refresh(strict)
    assert cmp is not None and cmp.sync_status == "Unknown"
    assert any("Widget" in message for _, message in cmp.conditions)
    # With the option the unknown kind is no comparison error: it is Missing, to be applied.
    cmp, _ = env.reconciler.refresh(lenient)
    assert cmp is not None and cmp.sync_status == "OutOfSync" and not cmp.conditions
    key = next(k for k in cmp.diffs if k.kind == "Widget")
    assert key.namespace == env.dest and cmp.diffs[key].status.value == "Missing"
    outcome = env.reconciler.sync(lenient)
    assert not outcome.succeeded
    failed = next(r for r in outcome.results if r.key.kind == "Widget")
    assert "Widget" in failed.message, failed.message
    assert env.live(CM, "lenient-cm") is not None
    assert env.reconciler.sync(env.app("crds", "crds")).succeeded
    assert env.reconciler.sync(lenient).succeeded
    live = call(env.kubesim.url, "GET", f"/apis/{group}/v1/namespaces/{env.dest}/widgets/w1")
    assert live.status == 200 and live.body["spec"] == {"size": 1}
    call(env.kubesim.url, "DELETE",
         f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}")


def test_a_per_resource_option_without_effect_is_a_warning_condition(env: Env) -> None:
    cm = yaml.safe_load(configmap("csa"))
    cm["metadata"]["annotations"] = {"argocd.argoproj.io/sync-options": "ServerSideApply=false"}
    env.commit({"csa/cm.yaml": yaml.safe_dump(cm)})
    app = env.app("csa", "csa")
    assert env.reconciler.sync(app).succeeded
    conditions = {c["type"]: c["message"] for c in env.status("csa")["conditions"]}
    assert "ServerSideApply=false is not supported" in conditions[st.SYNC_OPTION_WARNING]
    assert "ConfigMap" in conditions[st.SYNC_OPTION_WARNING]


def test_image_change_and_removed_field(env: Env) -> None:
    env.commit({"app/deploy.yaml": deployment("web", labels={"tier": "front"})})
    app = env.app("web", "app")
    assert env.reconciler.sync(app).succeeded
    assert env.live(DEPLOY, "web")["metadata"]["labels"]["tier"] == "front"  # type: ignore[index]
    env.commit({"app/deploy.yaml": deployment("web", image="nginx:1.28")})
    cmp, _ = env.reconciler.refresh(app)
    assert cmp is not None
    diff = next(d for k, d in cmp.diffs.items() if k.kind == "Deployment")
    assert diff.status.value == "OutOfSync"
    assert "/spec/template/spec/containers/0/image" in diff.paths
    assert "/metadata/labels/tier" in diff.paths
    assert "nginx:1.28" in diff.text()
    outcome = env.reconciler.sync(app)
    assert outcome.succeeded and outcome.results[0].result == st.APPLIED
    live = env.live(DEPLOY, "web")
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert "tier" not in live["metadata"]["labels"]


def test_deleted_file_is_pruned_or_reported(env: Env) -> None:
    env.commit({"a/cm.yaml": configmap("keep"), "a/old.yaml": configmap("old"),
                "b/cm.yaml": configmap("keep-b"), "b/old.yaml": configmap("old-b")})
    pruning = env.app("pruning", "a", automated={"prune": True})
    reporting = env.app("reporting", "b")
    assert env.reconciler.sync(pruning).succeeded
    assert env.reconciler.sync(reporting).succeeded
    env.commit({"a/old.yaml": None, "b/old.yaml": None})
    outcome = env.reconciler.sync(pruning)
    assert outcome.succeeded
    assert any(r.key.name == "old" and r.result == st.PRUNED for r in outcome.results)
    assert env.live(CM, "old") is None
    cmp, _ = env.reconciler.refresh(reporting)
    assert cmp is not None and cmp.sync_status == "OutOfSync"
    entry = next(r for r in env.status("reporting")["resources"] if r["name"] == "old-b")
    assert entry["requiresPruning"] is True
    outcome = env.reconciler.sync(reporting)
    assert any(r.key.name == "old-b" and r.result == st.PRUNE_SKIPPED for r in outcome.results)
    assert env.live(CM, "old-b") is not None


def test_a_recreated_application_finds_and_prunes_what_left_git(env: Env) -> None:
    """The Application was deleted (without cascade) and created again: its status, and the
    inventory in it, are gone; its objects are found by the tracking label instead."""
    env.commit({"a/cm.yaml": configmap("keep"), "a/old.yaml": configmap("old")})
    app = env.app("again", "a", automated={"prune": True})
    assert env.reconciler.sync(app).succeeded
    call(env.kubesim.url, "DELETE",
         f"/apis/gitops-tasks.io/v1alpha1/namespaces/{env.control}/applications/again")
    env.commit({"a/old.yaml": None})
    app = env.app("again", "a", automated={"prune": True})
    cmp, _ = env.reconciler.refresh(app)
    assert cmp is not None and cmp.discovered and cmp.sync_status == "OutOfSync"
    entry = next(r for r in env.status("again")["resources"] if r["name"] == "old")
    assert entry["requiresPruning"] is True
    outcome = env.reconciler.sync(app)
    assert any(r.key.name == "old" and r.result == st.PRUNED for r in outcome.results)
    assert env.live(CM, "old") is None and env.live(CM, "keep") is not None
    # The status written since records the inventory: no scan again.
    cmp, _ = env.reconciler.refresh(app)
    assert cmp is not None and not cmp.discovered and cmp.sync_status == "Synced"


def test_kubectl_edit_drift_is_detected_and_self_healed(env: Env) -> None:
    env.commit({"heal/deploy.yaml": deployment("healme"),
                "report/deploy.yaml": deployment("reportme")})
    healing = env.app("healing", "heal", automated={"selfHeal": True})
    reporting = env.app("reporting", "report", automated={})
    for app in (healing, reporting):
        assert env.reconciler.sync(app).succeeded
        env.reconciler.refresh(app)
    for name in ("healme", "reportme"):
        r = call(env.kubesim.url, "PATCH", DEPLOY.format(ns=env.dest) + f"/{name}",
                 {"spec": {"template": {"spec": {"containers": [
                     {"name": "main", "image": "evil:1"}]}}}},
                 content_type="application/strategic-merge-patch+json",
                 fieldManager="kubectl-edit")
        assert r.status == 200
    cmp, due = env.reconciler.refresh(reporting)
    assert cmp is not None and cmp.sync_status == "OutOfSync" and due is False
    cmp, due = env.reconciler.refresh(healing)
    assert cmp is not None and cmp.sync_status == "OutOfSync" and due is True
    assert env.reconciler.sync(healing).succeeded
    healed = env.live(DEPLOY, "healme")
    assert healed["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"  # type: ignore[index]
    drifted = env.live(DEPLOY, "reportme")
    assert drifted["spec"]["template"]["spec"]["containers"][0]["image"] == "evil:1"  # type: ignore[index]


def test_hpa_owned_replicas_is_not_drift(env: Env) -> None:
    env.commit({"app/deploy.yaml": deployment("scaled", replicas=None)})
    app = env.app("scaled", "app")
    assert env.reconciler.sync(app).succeeded
    r = call(env.kubesim.url, "PATCH", DEPLOY.format(ns=env.dest) + "/scaled/scale",
             {"spec": {"replicas": 5}}, content_type="application/merge-patch+json",
             fieldManager="horizontal-pod-autoscaler")
    assert r.status == 200
    cmp, _ = env.reconciler.refresh(app)
    assert cmp is not None and cmp.sync_status == "Synced"
    assert env.reconciler.sync(app).succeeded
    assert env.live(DEPLOY, "scaled")["spec"]["replicas"] == 5  # type: ignore[index]


def test_two_apps_claiming_one_configmap_do_not_fight(env: Env) -> None:
    env.commit({"one/cm.yaml": configmap("shared", {"owner": "one"}),
                "two/cm.yaml": configmap("shared", {"owner": "two"}),
                "two/own.yaml": configmap("two-own")})
    one = env.app("one", "one")
    two = env.app("two", "two")
    assert env.reconciler.sync(one).succeeded
    rv = env.live(CM, "shared")["metadata"]["resourceVersion"]  # type: ignore[index]
    for _ in range(2):
        outcome = env.reconciler.sync(two)
        assert any(r.key.name == "shared" and r.result == st.SKIPPED for r in outcome.results)
        assert env.reconciler.sync(one).succeeded
    live = env.live(CM, "shared")
    assert live is not None and live["data"] == {"owner": "one"}
    assert live["metadata"]["resourceVersion"] == rv
    assert env.live(CM, "two-own") is not None
    conditions = env.status("two")["conditions"]
    assert any(c["type"] == st.SHARED_RESOURCE and "one" in c["message"] for c in conditions)


def test_fail_on_shared_resource_fails_the_sync_and_applies_nothing(env: Env) -> None:
    env.commit({"one/cm.yaml": configmap("taken", {"owner": "one"}),
                "two/cm.yaml": configmap("taken", {"owner": "two"}),
                "two/own.yaml": configmap("strict-own")})
    one = env.app("one", "one")
    strict = env.app("strict", "two", sync_options=["FailOnSharedResource=true"])
    assert env.reconciler.sync(one).succeeded
    outcome = env.reconciler.sync(strict)
    assert outcome.phase == st.FAILED_PHASE, outcome.message
    assert "FailOnSharedResource" in outcome.message and "application one" in outcome.message
    assert env.live(CM, "strict-own") is None
    assert env.live(CM, "taken")["data"] == {"owner": "one"}  # type: ignore[index]


def test_empty_render_prunes_nothing_without_allow_empty(env: Env) -> None:
    env.commit({"app/cm.yaml": configmap("precious"), "app/README.md": "docs\n"})
    app = env.app("careful", "app", automated={"prune": True})
    assert env.reconciler.sync(app).succeeded
    env.commit({"app/cm.yaml": None})
    outcome = env.reconciler.sync(app)
    assert env.live(CM, "precious") is not None
    conditions = env.status("careful")["conditions"]
    assert any(c["type"] == st.PRUNE_REFUSED for c in conditions)
    # The resource says why it stayed: not "prune is not enabled", which it is.
    (skipped,) = [r for r in outcome.results if r.key.name == "precious"]
    assert "allowEmpty is false" in skipped.message, skipped.message


def test_dependency_chain_syncs_in_order(env: Env) -> None:
    env.commit({"db/deploy.yaml": deployment("db"), "api/deploy.yaml": deployment("api")})
    db = env.app("db", "db")
    api = env.app("api", "api", depends_on=["db"])
    waiting = env.reconciler.sync(api)
    assert waiting.phase == st.WAITING and "db" in waiting.message
    assert env.live(DEPLOY, "api") is None
    assert any(c["type"] == st.DEPENDENCY_WAITING for c in env.status("api")["conditions"])
    assert env.reconciler.sync(db).succeeded
    env.wait(lambda: env.reconciler.refresh(db)[0].health.status.value == "Healthy")  # type: ignore[union-attr]
    assert env.reconciler.sync(api).succeeded
    assert env.live(DEPLOY, "api") is not None


def test_dependency_cycle_is_reported(env: Env) -> None:
    env.commit({"x/cm.yaml": configmap("x")})
    a = env.app("a", "x", depends_on=["b"])
    env.app("b", "x", depends_on=["a"])
    outcome = env.reconciler.sync(a)
    assert outcome.phase == st.ERROR_PHASE and "a -> b -> a" in outcome.message
    assert any(c["type"] == st.DEPENDENCY_CYCLE for c in env.status("a")["conditions"])


def test_rollback_to_a_previous_revision(env: Env) -> None:
    first = env.commit({"app/cm.yaml": configmap("cfg", {"v": "1"})})
    app = env.app("roll", "app")
    assert env.reconciler.sync(app).succeeded
    env.commit({"app/cm.yaml": configmap("cfg", {"v": "2"})})
    assert env.reconciler.sync(app).succeeded
    assert env.live(CM, "cfg")["data"] == {"v": "2"}  # type: ignore[index]
    history = env.status("roll")["history"]
    assert [h["id"] for h in history] == [0, 1] and history[0]["revision"] == first
    outcome = env.reconciler.rollback(app, 0)
    assert outcome.succeeded and outcome.revision == first
    assert env.live(CM, "cfg")["data"] == {"v": "1"}  # type: ignore[index]
    assert env.status("roll")["sync"]["revision"] == first
    auto = env.app("roll-auto", "app", automated={})
    env.reconciler.sync(auto)
    from gitops_tasks.errors import PermanentError

    with pytest.raises(PermanentError, match="automated"):
        env.reconciler.rollback(auto, 0)


def test_malformed_manifest_fails_only_its_app(env: Env) -> None:
    env.commit({"bad/broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: [oops\n",
                "good/cm.yaml": configmap("fine")})
    bad = env.app("bad", "bad")
    good = env.app("good", "good")
    outcome = env.reconciler.sync(bad)
    assert not outcome.succeeded and "broken.yaml" in outcome.message
    conditions = env.status("bad")["conditions"]
    assert any("broken.yaml" in c["message"] for c in conditions)
    assert env.reconciler.sync(good).succeeded
    assert env.live(CM, "fine") is not None


def test_invalid_object_fails_that_resource_with_the_server_message(env: Env) -> None:
    env.commit({"app/cm.yaml": configmap("ok"),
                "app/bad.yaml": yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                                                "metadata": {"name": "Bad_Name"}})})
    outcome = env.reconciler.sync(env.app("invalid", "app"))
    assert not outcome.succeeded
    failed = [r for r in outcome.results if r.result == st.FAILED]
    assert failed and "Bad_Name" in failed[0].message


def test_hooks_and_waves_run_in_order(env: Env) -> None:
    def job(name: str, hook: str, policy: str = "HookSucceeded") -> str:
        return yaml.safe_dump({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "annotations": {keys.ARGO_HOOK: hook,
                                                       keys.ARGO_HOOK_DELETE_POLICY: policy}},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "m", "image": "busybox"}]}}}})

    env.commit({
        "app/pre.yaml": job("migrate", "PreSync"),
        "app/post.yaml": job("smoke", "PostSync", "BeforeHookCreation"),
        "app/early.yaml": configmap("early", annotations={keys.SYNC_WAVE: "-1"}),
        "app/late.yaml": configmap("late", annotations={keys.ARGO_SYNC_WAVE: "5"}),
        "app/deploy.yaml": deployment("web"),
    })
    app = env.app("hooks", "app")
    outcome = env.reconciler.sync(app)
    assert outcome.succeeded, outcome.message
    names = [r.key.name for r in outcome.results]
    assert names == ["migrate", "early", "web", "late", "smoke"]
    assert outcome.results[0].message == "hook completed"
    # HookSucceeded deleted the PreSync Job; BeforeHookCreation kept the PostSync one.
    assert env.live("/apis/batch/v1/namespaces/{ns}/jobs", "migrate") is None
    assert env.live("/apis/batch/v1/namespaces/{ns}/jobs", "smoke") is not None
    # The log proves the order of the writes, too: the PreSync Job is created (POST) first,
    # then the resources are applied (PATCH) wave by wave, then the PostSync Job is created.
    writes = [r for r in env.kubesim.request_log if r.method in ("PATCH", "POST")
              and f"/namespaces/{env.dest}/" in r.path and "dryRun" not in r.query]
    sequence: list[str] = []
    for r in writes:
        name = r.path.rsplit("/", 1)[1] if r.method == "PATCH" else "POST " + r.path
        if name not in sequence:
            sequence.append(name)
    jobs = f"POST /apis/batch/v1/namespaces/{env.dest}/jobs"
    assert sequence == [jobs, "early", "web", "late"]
    posts = [r for r in writes if r.method == "POST"]
    assert len(posts) == 2
    assert posts[1].start > min(r.start for r in writes if r.path.endswith("/late"))
    # A second sync recreates the PostSync hook (BeforeHookCreation).
    assert env.reconciler.sync(app).succeeded


def test_failing_hook_fails_the_sync(env: Env) -> None:
    env.commit({"app/pre.yaml": yaml.safe_dump({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "boom", "annotations": {keys.HOOK: "PreSync"}},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "m", "image": "busybox:kubesim-fail"}]}}}}),
        "app/cm.yaml": configmap("after")})
    outcome = env.reconciler.sync(env.app("failhook", "app"))
    assert not outcome.succeeded
    assert outcome.results[0].result == st.FAILED and "hook failed" in outcome.results[0].message
    assert env.live(CM, "after") is None


def test_dry_run_sync_changes_nothing(env: Env) -> None:
    env.commit({"app/cm.yaml": configmap("dry")})
    outcome = env.reconciler.sync(env.app("dry", "app"), dry_run=True)
    assert outcome.succeeded and outcome.results[0].result == st.WOULD_APPLY
    assert env.live(CM, "dry") is None


def test_create_namespace_option(env: Env) -> None:
    env.commit({"app/cm.yaml": configmap("in-new-ns")})
    app_obj = env.app("mkns", "app", sync_options=["CreateNamespace=true"])
    fresh = f"fresh-{env.id}"
    app = dataclasses.replace(app_obj, destination=dataclasses.replace(
        app_obj.destination, namespace=fresh))
    outcome = env.reconciler.sync(app)
    assert outcome.succeeded, outcome.message
    assert outcome.results[0].key.kind == "Namespace"
    assert env.live(CM, "in-new-ns", ns=fresh) is not None


def test_transient_api_errors_are_retried_with_backoff(env: Env) -> None:
    env.commit({"app/cm.yaml": configmap("flaky")})
    obj_path = f"/namespaces/{env.dest}/configmaps/flaky$"
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    env.reconciler.sleep = sleep
    app = env.app("flaky", "app")
    # A 500: the step runs again after a jittered backoff (GITOPS_TASKS_RETRY_BACKOFF, 50 ms
    # here) and the operation succeeds; it is not a failed attempt.
    env.kubesim.call(lambda: env.kubesim.add_fault(path=obj_path, method="PATCH", status=500,
                                                   count=1))
    outcome = env.reconciler.sync(app)
    assert outcome.succeeded, outcome.message
    assert len(slept) == 1 and 0.05 <= slept[0] <= 0.075
    assert env.live(CM, "flaky") is not None
    # A server that keeps failing: after max_retries (2) more steps the operation fails, with
    # the server's message.
    env.kubesim.call(lambda: env.kubesim.add_fault(path=obj_path, method="PATCH", status=503,
                                                   count=10))
    env.commit({"app/cm.yaml": configmap("flaky", {"k": "v2"})})
    failed = env.reconciler.sync(app)
    env.kubesim.call(env.kubesim.clear_faults)
    assert not failed.succeeded and "injected fault" in failed.message
    assert "gave up after 3 transient errors" in failed.message
    assert env.status("flaky")["operationState"]["phase"] == st.FAILED_PHASE
    # A resource the server refuses (a permanent error) fails the attempt; the app's retry
    # policy runs it again with its backoff as the countdown: 50 ms, then 100 ms.
    retrying = dataclasses.replace(app, sync_policy=SyncPolicy(retry=Retry(
        limit=3, backoff=Backoff(duration_seconds=0.05, factor=2, max_duration_seconds=1))))
    env.kubesim.call(lambda: env.kubesim.add_fault(path=obj_path, method="PATCH", status=422,
                                                   count=2))
    slept.clear()
    outcome = env.reconciler.sync(retrying)
    assert outcome.succeeded, outcome.message
    assert slept == [0.05, 0.1]
    assert env.status("flaky")["operationState"]["retryCount"] == 2


def test_dry_run_with_a_new_crd_and_its_objects(env: Env) -> None:
    group = f"d{env.id}.example.com"
    env.commit({"app/crd.yaml": WIDGET_CRD % {"g": group},
                "app/widget.yaml": yaml.safe_dump({"apiVersion": f"{group}/v1",
                                                   "kind": "Widget",
                                                   "metadata": {"name": "w"}})})
    outcome = env.reconciler.sync(env.app("drycrd", "app"), dry_run=True)
    assert outcome.succeeded, outcome.message
    assert [(r.key.kind, r.result) for r in outcome.results] == [
        ("CustomResourceDefinition", st.WOULD_APPLY), ("Widget", st.WOULD_APPLY)]
    assert call(env.kubesim.url, "GET", "/apis/apiextensions.k8s.io/v1/"
                f"customresourcedefinitions/widgets.{group}").status == 404


def test_status_is_replaced_not_merged(env: Env) -> None:
    env.commit({"app/deploy.yaml": deployment("msg")})
    app = env.app("msg", "app")
    assert env.reconciler.sync(app).succeeded
    env.wait(lambda: (env.reconciler.refresh(app)[0] or pytest.fail()).health.status.value
             == "Healthy")
    status = env.status("msg")
    assert "message" not in status["health"]
    assert all("message" not in r.get("health", {}) for r in status["resources"])


def test_app_of_apps(env: Env) -> None:
    child = {
        "apiVersion": keys.API_VERSION, "kind": "Application",
        "metadata": {"name": "child", "namespace": env.control},
        "spec": {"source": {"repoURL": env.origin.file_url, "path": "child"},
                 "destination": {"server": "https://kubernetes.default.svc",
                                 "namespace": env.dest}},
    }
    env.commit({"apps/child.yaml": yaml.safe_dump(child),
                "child/cm.yaml": configmap("from-child")})
    parent = env.app("parent", "apps")
    parent = dataclasses.replace(parent, destination=dataclasses.replace(
        parent.destination, namespace=env.control))
    outcome = env.reconciler.sync(parent)
    assert outcome.succeeded, outcome.message
    child_obj = env.apps.get("child")
    assert child_obj is not None
    # The child is an ordinary Application now: sync it, and the parent sees its health.
    assert env.reconciler.sync(parse_application(child_obj)).succeeded
    assert env.live(CM, "from-child") is not None
    cmp, _ = env.reconciler.refresh(parent)
    assert cmp is not None
    child_health = next(h for k, h in cmp.healths.items() if k.name == "child")
    assert child_health is not None and child_health.status.value == "Healthy"


STRICT_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.%(g)s}
spec:
  group: %(g)s
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
"""


def test_unknown_field_fails_unless_validation_is_off(env: Env) -> None:
    group = f"g{env.id}.example.com"
    call(env.kubesim.url, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
         yaml.safe_load(STRICT_CRD % {"g": group}))
    typo = {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "g"},
            "spec": {"size": 1, "szie": 2}}
    env.commit({"strict/g.yaml": yaml.safe_dump(typo)})
    outcome = env.reconciler.sync(env.app("strict", "strict"))
    assert not outcome.succeeded
    assert 'unknown field "spec.szie"' in outcome.message
    relaxed = {**typo, "metadata": {"name": "g", "annotations": {
        keys.SYNC_OPTIONS: "Validate=false"}}}
    env.commit({"strict/g.yaml": yaml.safe_dump(relaxed)})
    assert env.reconciler.sync(env.app("relaxed", "strict")).succeeded
    live = call(env.kubesim.url, "GET", f"/apis/{group}/v1/namespaces/{env.dest}/gadgets/g").body
    assert live["spec"] == {"size": 1}
    call(env.kubesim.url, "DELETE",
         f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.{group}")


def test_generate_name_hooks(env: Env) -> None:
    hook = {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"generateName": "check-", "annotations": {keys.HOOK: "PostSync"}},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "m", "image": "busybox"}]}}}}
    env.commit({"app/a.yaml": yaml.safe_dump(hook),
                "app/b.yaml": yaml.safe_dump({**hook, "metadata": {**hook["metadata"],
                                                                   "generateName": "other-"}}),
                "app/cm.yaml": configmap("with-hooks")})
    outcome = env.reconciler.sync(env.app("genname", "app"))
    assert outcome.succeeded, outcome.message
    hook_results = [r for r in outcome.results if r.hook]
    assert len(hook_results) == 2
    assert {r.key.name.split("-")[0] for r in hook_results} == {"check", "other"}


def test_child_app_with_unknown_health_does_not_degrade_parent(env: Env) -> None:
    child = {
        "apiVersion": keys.API_VERSION, "kind": "Application",
        "metadata": {"name": "kid", "namespace": env.control},
        "spec": {"source": {"repoURL": env.origin.file_url, "path": "kid"},
                 "destination": {"server": "https://kubernetes.default.svc",
                                 "namespace": env.dest}},
    }
    env.commit({"parent/kid.yaml": yaml.safe_dump(child), "kid/cm.yaml": configmap("k")})
    parent = env.app("parent", "parent")
    parent = dataclasses.replace(parent, destination=dataclasses.replace(
        parent.destination, namespace=env.control))
    assert env.reconciler.sync(parent).succeeded
    r = call(env.kubesim.url, "PATCH", f"/apis/gitops-tasks.io/v1alpha1/namespaces/"
             f"{env.control}/applications/kid/status",
             {"status": {"health": {"status": "Unknown"}}},
             content_type="application/merge-patch+json")
    assert r.status == 200
    cmp, _ = env.reconciler.refresh(parent)
    assert cmp is not None
    kid = next(h for k, h in cmp.healths.items() if k.name == "kid")
    assert kid is not None and kid.status.value == "Unknown"
    assert cmp.health.status.value == "Healthy"
