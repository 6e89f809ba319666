"""Builders for sync-plan tests: manifests as plain dicts, plans as readable lines."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from gitops_tasks.model.resources import ResourceKey
from gitops_tasks.sync import AppSyncOptions, Plan, PlanInput, build_plan

TESTDATA = Path(__file__).parent / "testdata"

API_VERSIONS = {
    "Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
    "Job": "batch/v1", "CronJob": "batch/v1",
    "Role": "rbac.authorization.k8s.io/v1", "RoleBinding": "rbac.authorization.k8s.io/v1",
    "ClusterRole": "rbac.authorization.k8s.io/v1",
    "ClusterRoleBinding": "rbac.authorization.k8s.io/v1",
    "CustomResourceDefinition": "apiextensions.k8s.io/v1",
    "Ingress": "networking.k8s.io/v1",
}


def obj(kind: str, name: str, namespace: str = "", *, api_version: str | None = None,
        annotations: Mapping[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": api_version or API_VERSIONS.get(kind, "v1"), "kind": kind,
            "metadata": meta, **fields}


def crd(group: str, kind: str, plural: str, **annotations: str) -> dict[str, Any]:
    return obj("CustomResourceDefinition", f"{plural}.{group}",
               annotations={k.replace("_", "-"): v for k, v in annotations.items()},
               spec={"group": group, "scope": "Namespaced",
                     "names": {"kind": kind, "plural": plural}})


def load(name: str) -> list[dict[str, Any]]:
    text = (TESTDATA / name).read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc]


def key(o: Mapping[str, Any]) -> ResourceKey:
    return ResourceKey.of(dict(o))


def live_of(objs: Iterable[Mapping[str, Any]]) -> dict[ResourceKey, dict[str, Any]]:
    return {key(o): dict(o) for o in objs}


def plan(targets: Iterable[dict[str, Any]], live: Iterable[dict[str, Any]] = (), *,
         prune: bool = True, out_of_sync: Iterable[ResourceKey] = (),
         options: AppSyncOptions | None = None, operation: str = "") -> Plan:
    return build_plan(PlanInput(
        targets=list(targets), live=live_of(live), out_of_sync=frozenset(out_of_sync),
        prune=prune, options=options or AppSyncOptions(), operation=operation))


def lines(p: Plan) -> list[str]:
    """One "Phase[wave] action Kind ns/name" line per task, in plan order."""
    return [f"{t.phase.value}[{t.wave}] {t.action.value} {t.key.kind} "
            f"{t.key.namespace + '/' if t.key.namespace else ''}{t.key.name}" for t in p.tasks]


def names(p: Plan) -> list[str]:
    """"Kind/name" per task, in plan order, for tests about order only."""
    return [f"{t.key.kind}/{t.key.name}" for t in p.tasks]
