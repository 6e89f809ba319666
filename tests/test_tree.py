"""The resource tree's children (ReplicaSets, Pods, Jobs the controllers made) are judged with
the users' health scripts too, as the refresh judges the app's own objects."""

from __future__ import annotations

from gitops_tasks import tree
from gitops_tasks.health import Customizations
from gitops_tasks.health.customizations import HealthScript

DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment",
          "metadata": {"name": "web", "namespace": "shop", "uid": "d1"}}
RS = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
      "metadata": {"name": "web-1", "namespace": "shop", "uid": "r1",
                   "ownerReferences": [{"uid": "d1"}]},
      "spec": {"replicas": 1}, "status": {"availableReplicas": 1}}
POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "web-1-a", "namespace": "shop", "uid": "p1",
                    "ownerReferences": [{"uid": "r1"}]},
       "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
RESOURCES = [{"group": "apps", "kind": "Deployment", "namespace": "shop", "name": "web",
              "status": "Synced", "health": {"status": "Healthy"}}]
LIVE = {("apps", "Deployment", "shop", "web"): DEPLOY}


def _pod_health(nodes: list[dict[str, object]]) -> tuple[object, object]:
    rs = nodes[0]["children"][0]  # type: ignore[index]
    pod = rs["children"][0]
    return pod["health"], pod["message"]


def test_children_use_the_builtin_checks_without_scripts() -> None:
    assert _pod_health(tree.build(RESOURCES, LIVE, [RS, POD])) == ("Healthy", "")


def test_children_use_the_users_scripts() -> None:
    custom = Customizations.of([HealthScript(
        "", "Pod", 'return {status = "Degraded", message = "pods are judged by the user"}',
        "test")])
    assert _pod_health(tree.build(RESOURCES, LIVE, [RS, POD], custom)) == (
        "Degraded", "pods are judged by the user")
