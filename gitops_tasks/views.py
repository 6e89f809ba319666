"""What the `gitops-tasks app` commands print, from stored Applications. Pure: the objects in,
text out, so every view is tested without a cluster."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import yaml

OUTPUTS = ("table", "json", "yaml")
# Per-resource results that need nothing more (model.status's result names).
_DONE = frozenset({"Applied", "Unchanged", "Pruned", "PruneSkipped", "Skipped", "WouldApply",
                   "WouldPrune"})


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _short(sha: str) -> str:
    return sha[:12] if len(sha) == 40 else sha


def app_row(obj: dict[str, Any]) -> dict[str, str]:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    source = _d(spec.get("source"))
    state = _d(status.get("operationState"))
    history = status.get("history") if isinstance(status.get("history"), list) else []
    last = _d(history[-1]) if history else {}
    return {
        "name": str(meta.get("name", "")),
        "repo": str(source.get("repoURL", "")),
        "path": str(source.get("path") or source.get("chart") or "."),
        "target": str(source.get("targetRevision") or "HEAD"),
        "revision": _short(str(_d(status.get("sync")).get("revision") or "")),
        "sync": str(_d(status.get("sync")).get("status") or "Unknown"),
        "health": str(_d(status.get("health")).get("status") or "Unknown"),
        "operation": str(state.get("phase") or ""),
        "last_sync": str(last.get("deployedAt") or state.get("finishedAt") or ""),
        # For the panel (and -o json): what the table leaves out.
        "project": str(spec.get("project") or "default"),
        "dest_namespace": str(_d(spec.get("destination")).get("namespace") or ""),
        "revision_sha": str(_d(status.get("sync")).get("revision") or ""),
        "operation_message": str(state.get("message") or ""),
        "health_message": str(_d(status.get("health")).get("message") or ""),
    }


def table(rows: Sequence[dict[str, str]], columns: Sequence[str]) -> str:
    widths = {c: max([len(c)] + [len(r.get(c, "")) for r in rows]) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(r.get(c, "").ljust(widths[c]) for c in columns).rstrip()
              for r in rows]
    return "\n".join(lines)


LIST_COLUMNS = ("name", "repo", "path", "target", "revision", "sync", "health", "operation",
                "last_sync")


def app_list(objs: Sequence[dict[str, Any]]) -> str:
    return table([app_row(o) for o in objs], LIST_COLUMNS)


def operation_summary(state: dict[str, Any]) -> str:
    """`Running: wave 1 of Sync, 3/5 resources (hooks: 1 running) - applied ...`"""
    phase = str(state.get("phase") or "")
    results = [_d(r) for r in _d(state.get("syncResult")).get("resources") or []]
    done = sum(1 for r in results if r.get("status") in _DONE
               or r.get("hookPhase") == "Succeeded")
    hooks = [r for r in results if r.get("hookType")]
    running_hooks = sum(1 for r in hooks if r.get("hookPhase") in ("Running", "Pending"))
    wave = _d(state.get("currentWave"))
    parts = [phase or "?"]
    if wave:
        parts.append(f"wave {wave.get('wave')} of {wave.get('phase')}")
    parts.append(f"{done}/{len(results)} resources done")
    if hooks:
        parts.append(f"hooks: {len(hooks)} ({running_hooks} running)")
    message = str(state.get("message") or "")
    return ", ".join(parts) + (f" - {message}" if message else "")


def app_detail(obj: dict[str, Any]) -> str:
    row = app_row(obj)
    status = _d(obj.get("status"))
    dest = _d(_d(obj.get("spec")).get("destination"))
    lines = [f"Name:        {row['name']}",
             f"Source:      {row['repo']} {row['path']} @ {row['target']}",
             f"Destination: {dest.get('server') or dest.get('name') or ''} "
             f"namespace {dest.get('namespace') or '-'}",
             f"Sync:        {row['sync']} at {row['revision'] or '-'}",
             f"Health:      {row['health']}"]
    message = str(_d(status.get("health")).get("message") or "")
    if message:
        lines.append(f"             {message}")
    state = _d(status.get("operationState"))
    if state:
        op = _d(state.get("operation"))
        who = _d(op.get("initiatedBy"))
        lines.append(f"Operation:   {op.get('id', '')} by "
                     f"{'automated' if who.get('automated') else who.get('username', '?')}: "
                     f"{operation_summary(state)}")
    pending = _d(obj.get("operation"))
    if pending:
        lines.append(f"Requested:   sync {_d(pending.get('sync')).get('revision') or ''} "
                     f"(id {pending.get('id', '-')}), waiting for a worker")
    conditions = [_d(c) for c in status.get("conditions") or []]
    if conditions:
        lines.append("Conditions:")
        lines += [f"  {c.get('type')}: {c.get('message')}" for c in conditions]
    resources = [_d(r) for r in status.get("resources") or []]
    if resources:
        lines.append("")
        lines.append(table([{
            "kind": str(r.get("kind", "")), "namespace": str(r.get("namespace", "")),
            "name": str(r.get("name", "")), "status": str(r.get("status", "")),
            "health": str(_d(r.get("health")).get("status", ""))} for r in resources],
            ("kind", "namespace", "name", "status", "health")))
    return "\n".join(lines)


def history(obj: dict[str, Any]) -> str:
    entries = [_d(h) for h in _d(obj.get("status")).get("history") or []]
    return table([{"id": str(h.get("id", "")), "revision": str(h.get("revision", "")),
                   "deployed_at": str(h.get("deployedAt", "")),
                   "initiated_by": str(_d(h.get("initiatedBy")).get("username")
                                       or ("automated" if _d(h.get("initiatedBy"))
                                           .get("automated") else ""))}
                  for h in entries], ("id", "revision", "deployed_at", "initiated_by"))


def dump(value: Any, output: str) -> str:
    if output == "json":
        return json.dumps(value, indent=2, sort_keys=True)
    return yaml.safe_dump(value, sort_keys=False).rstrip()


def colour_diff(text: str) -> str:
    """A unified diff with ANSI colours (for a terminal): removals red, additions green."""
    out = []
    for line in text.splitlines():
        if line.startswith(("---", "+++")):
            out.append(f"\033[1m{line}\033[0m")
        elif line.startswith("-"):
            out.append(f"\033[31m{line}\033[0m")
        elif line.startswith("+"):
            out.append(f"\033[32m{line}\033[0m")
        elif line.startswith("@@"):
            out.append(f"\033[36m{line}\033[0m")
        else:
            out.append(line)
    return "\n".join(out)
