"""Stamp rendered objects with the app's tracking annotation and label.

Called by `render()` on every object it returns, and meant to be called again by the sync layer
once it knows each object's scope (see `stamp`). The keys come from `gitops_tasks.model.keys`.

Namespace in the tracking id: render does not know whether a kind is namespaced (that needs API
discovery), so it uses exactly what Git says: `metadata.namespace`, or "" when absent. It does
not fill in the destination namespace, because doing so for a cluster-scoped kind (a ClusterRole)
would produce an id that never matches the live object. The sync layer, which has discovery,
sets `metadata.namespace` of namespaced objects to the destination namespace and calls `stamp`
again, which then records the final id.
"""

from __future__ import annotations

from typing import Any

from ..errors import RenderError
from ..model import keys


def group_of(api_version: str) -> str:
    """"apps/v1" -> "apps"; "v1" (the core group) -> ""."""
    group, sep, _ = api_version.rpartition("/")
    return group if sep else ""


def stamp(obj: dict[str, Any], app_name: str, namespace: str | None = None) -> dict[str, Any]:
    """Set the tracking annotation and app label on `obj` in place, and return it.

    `namespace` overrides `metadata.namespace` for the id (for callers that know the scope);
    by default the object's own namespace or "" is used. Existing labels and annotations are
    kept; ours overwrite any copied from another app, which is what makes an object ours.
    """
    meta = obj.setdefault("metadata", {})
    ns = namespace if namespace is not None else (meta.get("namespace") or "")
    name = meta.get("name") or meta.get("generateName") or ""
    annotations = _mapping(meta, "annotations", obj)
    labels = _mapping(meta, "labels", obj)
    annotations[keys.TRACKING_ANNOTATION] = keys.tracking_id(
        app_name, group_of(str(obj.get("apiVersion", ""))), str(obj.get("kind", "")), ns, name)
    labels[keys.APP_LABEL] = keys.app_label_value(app_name)
    return obj


def owner_of(obj: dict[str, Any]) -> str:
    """The app a live object's tracking annotation names ("" when none or malformed)."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(keys.TRACKING_ANNOTATION)
    parsed = keys.parse_tracking_id(value) if isinstance(value, str) else None
    return parsed[0] if parsed else ""


def _mapping(meta: dict[str, Any], field: str, obj: dict[str, Any]) -> dict[str, Any]:
    value = meta.get(field)
    if value is None:
        value = meta[field] = {}
    if not isinstance(value, dict):
        raise RenderError(f"{obj.get('kind')} {meta.get('name')}: metadata.{field} must be a "
                          f"mapping, not {type(value).__name__}")
    return value
