"""Generic and per-kind clean-up of an object before it is compared.

Called by `compare.py` on both sides (the predicted object from the server-side dry-run apply and
the live object), before the user's ignore rules. Both sides come from the API server, so server
defaults are already on both; what is left to remove is what changes on every write (metadata
churn), what the controllers own (status), and what client tools add.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from typing import Any

from ..model import keys

# Set by the server on every write (or by the controllers and the deletion machinery): never a
# difference between Git and the cluster. managedFields is read by the ignore layer BEFORE this
# runs (compare.py takes it from the live object first).
_METADATA_CHURN = (
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)

# Written by client-side `kubectl apply`; it holds a copy of a past manifest (Secrets included),
# so it is both noise and a leak. Not ours: kept here rather than in model/keys.py, which lists
# the keys gitops-tasks itself reads or writes.
LAST_APPLIED_ANNOTATION = keys.LAST_APPLIED_ANNOTATION

Obj = dict[str, Any]


def normalize(obj: Obj) -> Obj:
    """A cleaned copy of `obj`: generic clean-up, then the fix for its kind (if any)."""
    out = copy.deepcopy(obj)
    out.pop("status", None)  # owned by controllers; Git never sets it
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for name in _METADATA_CHURN:
            meta.pop(name, None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(LAST_APPLIED_ANNOTATION, None)
        # Kubernetes omits empty maps; a manifest may spell them out.
        for name in ("annotations", "labels"):
            if name in meta and not meta[name]:
                del meta[name]
    fix = _KIND_FIXES.get((_group(out), str(out.get("kind", ""))))
    if fix is not None:
        fix(out)
    return out


def _group(obj: Obj) -> str:
    return str(obj.get("apiVersion", "")).rpartition("/")[0]


def _secret(obj: Obj) -> None:
    """stringData is write-only: the server merges it into data (base64) and never returns it, so
    a manifest passed as predicted (e.g. for a Missing resource) must be shown the same way."""
    string_data = obj.pop("stringData", None)
    if not isinstance(string_data, dict) or not string_data:
        return
    data = obj.get("data")
    if not isinstance(data, dict):
        data = obj["data"] = {}
    for key, value in string_data.items():
        # stringData wins over data for the same key, as on the server.
        data[key] = base64.b64encode(str(value).encode()).decode()


# (group, kind) -> in-place fix, applied after the generic clean-up.
_KIND_FIXES: dict[tuple[str, str], Callable[[Obj], None]] = {
    ("", "Secret"): _secret,
}
