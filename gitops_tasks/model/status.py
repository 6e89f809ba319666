"""The Application status document, as written to the status subresource.

Shapes follow Argo CD's Application status (sync, health, resources, operationState, history,
conditions) so its users can read ours; built here from plain values so every writer produces
the same document. Called by the reconciler.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .resources import ResourceKey

# Condition types (Argo CD's names where it has one).
COMPARISON_ERROR = "ComparisonError"
SYNC_ERROR = "SyncError"
INVALID_SPEC = "InvalidSpecError"
SHARED_RESOURCE = "SharedResourceWarning"
DEPENDENCY_WAITING = "DependencyWaiting"
DEPENDENCY_CYCLE = "DependencyCycle"
PRUNE_REFUSED = "PruneRefused"
# A per-resource sync option that has no effect (unknown, or not supported).
SYNC_OPTION_WARNING = "SyncOptionWarning"

ERROR_CONDITIONS = frozenset({COMPARISON_ERROR, SYNC_ERROR, INVALID_SPEC, DEPENDENCY_CYCLE})

# Per-resource sync results.
APPLIED = "Applied"
UNCHANGED = "Unchanged"
PRUNED = "Pruned"
PRUNE_SKIPPED = "PruneSkipped"
FAILED = "Failed"
SKIPPED = "Skipped"
WOULD_APPLY = "WouldApply"
WOULD_PRUNE = "WouldPrune"
PENDING = "Pending"  # a hook waiting for the previous run's object to be deleted

# Operation phases (Argo CD's OperationPhase, plus Waiting: dependsOn not ready).
RUNNING = "Running"
TERMINATING = "Terminating"
SUCCEEDED = "Succeeded"
FAILED_PHASE = "Failed"
ERROR_PHASE = "Error"
WAITING = "Waiting"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def resource_ref(key: ResourceKey, version: str) -> dict[str, Any]:
    ref: dict[str, Any] = {"group": key.group, "version": version, "kind": key.kind,
                           "name": key.name}
    if key.namespace:
        ref["namespace"] = key.namespace
    return ref


def condition(ctype: str, message: str, previous: list[dict[str, Any]] | None = None
              ) -> dict[str, Any]:
    """A condition; keeps the previous lastTransitionTime when the same condition held before,
    so an unchanged status stays byte-for-byte unchanged (and is not rewritten)."""
    for old in previous or []:
        if old.get("type") == ctype and old.get("message") == message:
            return dict(old)
    return {"type": ctype, "message": message, "lastTransitionTime": now()}


def history_entry(next_id: int, revision: str, source: dict[str, Any], started: str,
                  finished: str, initiated_by: str = "") -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": next_id,
        "revision": revision,
        "deployStartedAt": started,
        "deployedAt": finished,
        "source": source,
    }
    if initiated_by:
        entry["initiatedBy"] = {"username": initiated_by}
    return entry


def append_history(history: list[dict[str, Any]], entry: dict[str, Any], limit: int
                   ) -> list[dict[str, Any]]:
    """Newest last, at most `limit` entries (revisionHistoryLimit)."""
    out = [*history, entry]
    if limit >= 0 and len(out) > max(limit, 1):
        out = out[-max(limit, 1):]
    return out


def next_history_id(history: list[dict[str, Any]]) -> int:
    return max((int(h.get("id", 0)) for h in history), default=-1) + 1


def without_volatile(status: dict[str, Any]) -> dict[str, Any]:
    """The status minus fields that change on every reconcile, to skip no-op writes."""
    return {k: v for k, v in status.items() if k not in ("reconciledAt", "observedAt")}
