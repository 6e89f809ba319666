"""dependsOn: an app waits until the Applications it names are Synced and Healthy.

Called by the reconciler before a sync; a cycle is a permanent error, never a loop.
"""

from __future__ import annotations

from .appstore import AppStore
from .errors import PermanentError
from .health import HealthStatus
from .model import Application, parse_application


def dependencies_ready(app: Application, apps: AppStore | None) -> tuple[bool, str]:
    """(ready, message). Unready dependencies or a dependency cycle block the sync."""
    if not app.depends_on:
        return True, ""
    if apps is None:
        return False, "dependsOn needs Applications in the control namespace"
    cycle = _find_cycle(app, apps)
    if cycle:
        raise PermanentError("dependency cycle: " + " -> ".join(cycle), app=app.name)
    waiting = []
    for dep in app.depends_on:
        obj = apps.get(dep)
        if obj is None:
            waiting.append(f"{dep} (not found)")
            continue
        parse_application(obj)  # an invalid dependency is reported as such
        health = ((obj.get("status") or {}).get("health") or {}).get("status", "Unknown")
        sync = ((obj.get("status") or {}).get("sync") or {}).get("status", "Unknown")
        if health != HealthStatus.HEALTHY.value or sync != "Synced":
            waiting.append(f"{dep} ({sync}, {health})")
    if waiting:
        return False, "waiting for dependencies: " + ", ".join(waiting)
    return True, ""


def _find_cycle(app: Application, apps: AppStore) -> list[str]:
    graph: dict[str, list[str]] = {app.name: list(app.depends_on)}
    stack = list(app.depends_on)
    while stack:
        name = stack.pop()
        if name in graph:
            continue
        obj = apps.get(name) or {}
        deps = list(((obj.get("spec") or {}).get("dependsOn")) or [])
        graph[name] = deps
        stack.extend(deps)
    path: list[str] = []
    visiting: set[str] = set()

    def visit(node: str) -> list[str]:
        if node in visiting:
            return [*path[path.index(node):], node]
        visiting.add(node)
        path.append(node)
        for nxt in graph.get(node, []):
            found = visit(nxt)
            if found:
                return found
        path.pop()
        visiting.discard(node)
        return []

    return visit(app.name)
