"""Per-resource comparison of the predicted object with the live one, and the app's sync status.

Called by the engine (refresh, sync with ApplyOutOfSyncOnly, `gitops-tasks diff`). The engine gets
the predicted object from a server-side apply dry-run (force, field manager `gitops-tasks`), which
is exactly what the server would hold after our apply: defaults filled in, other managers' fields
kept, fields Git stopped setting gone. So a plain comparison after normalisation sees changed and
removed fields and live edits, and not server defaults nor fields only other managers set.

Layers, as gitops-engine: `normalize` (generic and per-kind), then the user's ignore rules, then
this module's comparison, which treats absent, null, {} and [] alike (Kubernetes omits empties) and
compares lists by position (the API server keeps list order, so a reorder in Git is a change).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..model.application import IgnoreDifference
from ..model.resources import ResourceKey
from . import text as _text
from .ignore import apply_ignore_rules, ignore_rules_for
from .normalize import normalize

Obj = dict[str, Any]


class SyncStatusCode(StrEnum):
    """An application's sync status; Unknown when comparing failed (the engine sets it)."""

    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    UNKNOWN = "Unknown"


class ResourceStatus(StrEnum):
    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    MISSING = "Missing"  # in Git, not in the cluster
    REQUIRES_PRUNING = "RequiresPruning"  # in the cluster and tracked by the app, not in Git


@dataclass(frozen=True)
class ResourceDiff:
    """The result for one resource. `live` and `desired` are normalised with the ignore rules
    applied, and NOT masked: only `text()` is fit to show a Secret."""

    key: ResourceKey
    status: ResourceStatus
    live: Obj | None
    desired: Obj | None
    # JSON pointers (RFC 6901) of the differing fields, in document order (keys sorted, list
    # items by index); a field present on one side only is reported at its own level.
    paths: tuple[str, ...] = ()

    def text(self, *, context: int = 3) -> str:
        """Unified YAML diff `--- live` / `+++ desired`, Secret values masked; "" when Synced."""
        if self.status is ResourceStatus.SYNCED:
            return ""
        return _text.unified(self.key, self.live, self.desired, context=context)


def compare(
    key: ResourceKey,
    predicted: Obj | None,
    live: Obj | None,
    rules: Sequence[IgnoreDifference] = (),
    *,
    tracked: bool = True,
) -> ResourceDiff:
    """Compare the dry-run result `predicted` with `live`.

    `rules` may be the app's whole ignoreDifferences list; those matching `key` are applied. A
    Missing resource needs no dry-run: `predicted` may be None (then `text()` is empty), or the
    desired manifest, for a diff that shows what would be created. `tracked` says the live
    object's tracking annotation names this app: an untracked object without a desired
    counterpart is none of this app's business.
    """
    matched = ignore_rules_for(key, rules)
    # Taken before normalize() drops it; one manager's fields are judged by LIVE ownership, on
    # both sides, so the comparison ignores them whoever wrote what.
    managed = _managed_fields(live)

    def prepare(obj: Obj) -> Obj:
        clean = normalize(obj)
        return apply_ignore_rules(clean, matched, managed_fields=managed) if matched else clean

    if live is None:
        desired = prepare(predicted) if predicted is not None else None
        return ResourceDiff(key, ResourceStatus.MISSING, None, desired)
    if predicted is None:
        if not tracked:
            raise ValueError(f"{key}: live object not tracked by this app and not desired")
        return ResourceDiff(key, ResourceStatus.REQUIRES_PRUNING, prepare(live), None)

    live_n, desired_n = _align(prepare(live), prepare(predicted))
    paths: list[str] = []
    _diff_paths(live_n, desired_n, "", paths)
    status = ResourceStatus.OUT_OF_SYNC if paths else ResourceStatus.SYNCED
    return ResourceDiff(key, status, live_n, desired_n, tuple(paths))


def app_sync_status(diffs: Iterable[ResourceDiff]) -> SyncStatusCode:
    """OutOfSync when any resource is not Synced (Missing and RequiresPruning included)."""
    if any(d.status is not ResourceStatus.SYNCED for d in diffs):
        return SyncStatusCode.OUT_OF_SYNC
    return SyncStatusCode.SYNCED


def _managed_fields(live: Obj | None) -> list[dict[str, Any]]:
    meta = (live or {}).get("metadata")
    value = meta.get("managedFields") if isinstance(meta, dict) else None
    return value if isinstance(value, list) else []


# ---------------------------------------------------------------------------- comparison


def _is_empty(value: Any) -> bool:
    return value is None or value == {} or value == []


def _hollow(value: Any) -> bool:
    """Whether `value` is empty once pruned, without building the pruned copy (stops at the first
    real value, so it is cheap for the common, non-empty case)."""
    if isinstance(value, dict):
        return all(_hollow(v) for v in value.values())
    return value is None or value == []


def _prune(value: Any) -> Any:
    """`value` without map entries that are empty (recursively); list items are kept, since
    dropping one would shift the positions the comparison relies on."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            pv = _prune(v)
            if not _is_empty(pv):
                out[k] = pv
        return out
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def _align(a: Any, b: Any) -> tuple[Any, Any]:
    """Copies of `a` and `b` where an empty value facing nothing (or another kind of empty) is
    dropped from both, so absent, null, {} and [] compare equal and do not clutter the text diff.
    An empty map or list present on both sides (`emptyDir: {}`) is kept: it carries meaning. A
    null never does (`creationTimestamp: null` in every pod template): it goes."""
    if isinstance(a, dict) and isinstance(b, dict):
        out_a: Obj = {}
        out_b: Obj = {}
        for k in [*a, *(k for k in b if k not in a)]:
            if k in a and k in b:
                va, vb = a[k], b[k]
                if _hollow(va) and _hollow(vb) and (va is None or not _json_equal(va, vb)):
                    continue
                out_a[k], out_b[k] = _align(va, vb)
            elif k in a:
                if not _is_empty(pa := _prune(a[k])):
                    out_a[k] = pa
            elif not _is_empty(pb := _prune(b[k])):
                out_b[k] = pb
        return out_a, out_b
    if isinstance(a, list) and isinstance(b, list):
        pairs = [_align(x, y) for x, y in zip(a, b, strict=False)]
        n = len(pairs)
        return ([p[0] for p in pairs] + [_prune(x) for x in a[n:]],
                [p[1] for p in pairs] + [_prune(y) for y in b[n:]])
    return a, b


def _diff_paths(a: Any, b: Any, path: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(a.keys() | b.keys()):
            sub = f"{path}/{_escape(k)}"
            # An empty value counts as absent: report it where an absent one would be reported.
            if k in a and k in b and not (_is_empty(a[k]) ^ _is_empty(b[k])):
                _diff_paths(a[k], b[k], sub, out)
            else:
                out.append(sub)
    elif isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            if i < len(a) and i < len(b):
                _diff_paths(a[i], b[i], f"{path}/{i}", out)
            else:
                out.append(f"{path}/{i}")
    elif not _json_equal(a, b):
        out.append(path)


def _escape(token: str) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: 1 == 1.0, but True != 1 (Python disagrees)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)
