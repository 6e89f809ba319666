"""`gitops-tasks health -f OBJECTS.yaml`: the health of every object of a YAML stream, with the
checks the controller would use (built-ins, then the users' Lua scripts), as Argo CD's
`argocd admin settings resource-overrides health` does. For trying a `health.lua` against saved
objects (`kubectl get -o yaml`) before putting it in the `gitops-tasks-cm` ConfigMap.

Called by `gitops_tasks.cli`. No cluster and no Redis: the scripts come from `--configmap FILE`
(a `gitops-tasks-cm` manifest), `--customizations DIR` and GITOPS_TASKS_RESOURCE_CUSTOMIZATIONS_DIR,
first match wins in that order.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from . import views
from .errors import GitOpsError
from .health import Customizations, resource_health
from .health.customizations import HealthScript, load_directory, parse_configmap

COLUMNS = ("kind", "name", "status", "message")


def _read(path: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise GitOpsError(f"cannot read {path}: {detail}") from exc


def load_objects(path: str) -> list[dict[str, Any]]:
    """The objects of a YAML stream (empty documents skipped; a `kind: List` is unwrapped, as
    `kubectl get -o yaml` writes several objects). GitOpsError naming the file and document
    for anything that is not an object with apiVersion and kind."""
    text = _read(path)
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise GitOpsError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    objects: list[dict[str, Any]] = []
    for number, doc in enumerate(docs, start=1):
        if doc is None:
            continue
        items = doc.get("items") if isinstance(doc, dict) and doc.get("kind") == "List" else [doc]
        if not isinstance(items, list):
            raise GitOpsError(f"{path}: document {number}: a List whose items is not a list")
        for item in items:
            if not isinstance(item, dict):
                raise GitOpsError(f"{path}: document {number}: expected a Kubernetes object, "
                                  f"got {type(item).__name__}")
            if not isinstance(item.get("apiVersion"), str) or not isinstance(item.get("kind"),
                                                                             str):
                raise GitOpsError(f"{path}: document {number}: an object needs apiVersion and "
                                  "kind")
            objects.append(item)
    return objects


def _configmap_scripts(path: str) -> tuple[list[HealthScript], list[str]]:
    docs = [d for d in load_raw(path) if isinstance(d, dict) and d.get("kind") == "ConfigMap"]
    if len(docs) != 1:
        raise GitOpsError(f"{path}: expected one ConfigMap, found {len(docs)}")
    data = docs[0].get("data") or {}
    if not isinstance(data, Mapping):
        raise GitOpsError(f"{path}: the ConfigMap's data is not a map")
    return parse_configmap(data, f"ConfigMap file {path}")


def load_raw(path: str) -> list[Any]:
    try:
        return list(yaml.safe_load_all(_read(path)))
    except yaml.YAMLError as exc:
        raise GitOpsError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None


def customizations(configmap: str | None, directories: list[Path]) -> Customizations:
    """The scripts to judge with; problems with single keys or files go to stderr as
    warnings (they do not stop the others), a directory that is not one is an error."""
    layers: list[list[HealthScript]] = []
    problems: list[str] = []
    if configmap:
        scripts, found = _configmap_scripts(configmap)
        layers.append(scripts)
        problems += found
    for directory in directories:
        if not directory.is_dir():
            raise GitOpsError(f"{directory}: not a directory of health.lua scripts")
        scripts, found = load_directory(directory)
        layers.append(scripts)
        problems += found
    for problem in problems:
        sys.stderr.write(f"warning: {problem}\n")
    return Customizations.of(*layers)


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    name = str(meta.get("name") or meta.get("generateName") or "")
    namespace = str(meta.get("namespace") or "")
    return f"{namespace}/{name}" if namespace else name


def assess(objects: list[dict[str, Any]], custom: Customizations) -> list[dict[str, Any]]:
    """One `{kind, name, status, message}` per object; status None when the kind has no
    health notion (a ConfigMap without a script)."""
    rows = []
    for obj in objects:
        health = resource_health(obj, custom)
        rows.append({"kind": str(obj.get("kind")), "name": _name(obj),
                     "status": health.status.value if health else None,
                     "message": health.message if health else ""})
    return rows


def run(path: str, *, configmap: str | None, directories: list[Path], output: str) -> int:
    objects = load_objects(path)
    rows = assess(objects, customizations(configmap, directories))
    if output == "table":
        # One line per object: multi-line condition messages are folded.
        text = views.table([{**r, "status": r["status"] or "-",
                             "message": " ".join(r["message"].split())} for r in rows], COLUMNS)
    else:
        text = views.dump(rows, output)
    sys.stdout.write(text + "\n")
    return 0
