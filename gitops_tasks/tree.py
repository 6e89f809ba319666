"""An app's resources as a tree, with the objects the cluster's controllers made for them
(a Deployment's ReplicaSets and their Pods, a CronJob's Jobs...), as the panel shows them.

Pure: `build` takes the app's recorded resources and the live objects read by the caller
(`appops.resource_tree`), and links children to parents by ownerReferences uid, which is how
the controllers that made them record it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .health import NONE, Customizations, resource_health

# (group, kind) of a parent -> (apiVersion, kind) of what its controller creates.
CHILDREN: Mapping[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("apps", "Deployment"): (("apps/v1", "ReplicaSet"),),
    ("apps", "ReplicaSet"): (("v1", "Pod"),),
    ("apps", "StatefulSet"): (("v1", "Pod"),),
    ("apps", "DaemonSet"): (("v1", "Pod"),),
    ("batch", "Job"): (("v1", "Pod"),),
    ("batch", "CronJob"): (("batch/v1", "Job"),),
}
# A Deployment's history holds old ReplicaSets scaled to zero: shown, but not beyond these.
MAX_CHILDREN = 50


def child_kinds(group: str, kind: str) -> tuple[tuple[str, str], ...]:
    return CHILDREN.get((group, kind), ())


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _owners(obj: Mapping[str, Any]) -> list[str]:
    refs = _meta(obj).get("ownerReferences")
    return [str(r.get("uid")) for r in refs or [] if isinstance(r, Mapping) and r.get("uid")]


def _node(obj: Mapping[str, Any], by_owner: Mapping[str, list[Mapping[str, Any]]],
          depth: int, customizations: Customizations) -> dict[str, Any]:
    meta = _meta(obj)
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    health = resource_health(dict(obj), customizations)
    node: dict[str, Any] = {
        "group": group, "kind": str(obj.get("kind", "")),
        "namespace": str(meta.get("namespace") or ""), "name": str(meta.get("name", "")),
        "health": health.status.value if health else "",
        "message": health.message if health else "",
        "children": [],
    }
    if depth < 3:
        kids = sorted(by_owner.get(str(meta.get("uid", "")), []),
                      key=lambda o: str(_meta(o).get("name", "")))
        node["children"] = [_node(k, by_owner, depth + 1, customizations)
                            for k in kids[:MAX_CHILDREN]]
        node["more"] = max(0, len(kids) - MAX_CHILDREN)
    return node


def build(resources: Sequence[Mapping[str, Any]], live: Mapping[tuple[str, str, str, str],
          Mapping[str, Any]], others: Iterable[Mapping[str, Any]],
          customizations: Customizations = NONE) -> list[dict[str, Any]]:
    """One node per recorded resource (status.resources entries: its sync status, health and
    message as recorded), with the children found among `others` (live objects of the child
    kinds) under the live parents of `live` ((group, kind, namespace, name) -> object). The
    children's health is assessed here, with the users' health scripts `customizations`, as
    the refresh assesses the app's own objects."""
    by_owner: dict[str, list[Mapping[str, Any]]] = {}
    for obj in others:
        for uid in _owners(obj):
            by_owner.setdefault(uid, []).append(obj)
    out = []
    for r in resources:
        health = r.get("health") if isinstance(r.get("health"), Mapping) else {}
        key = (str(r.get("group", "")), str(r.get("kind", "")), str(r.get("namespace", "")),
               str(r.get("name", "")))
        node: dict[str, Any] = {
            "group": key[0], "kind": key[1], "namespace": key[2], "name": key[3],
            "status": str(r.get("status", "")),
            "health": str((health or {}).get("status", "")),
            "message": str((health or {}).get("message", "")),
            "requiresPruning": bool(r.get("requiresPruning")),
            "children": [],
        }
        parent = live.get(key)
        if parent is not None:
            node["children"] = _node(parent, by_owner, 0, customizations)["children"]
        out.append(node)
    return out
