"""Sync options: per object (annotation) and per application (`spec.syncPolicy.syncOptions`).

Called by `plan.build_plan`, which stores each object's effective options on its task, and by
the sync engine, which reads the app-level ones (CreateNamespace, PrunePropagationPolicy,
FailOnSharedResource, ...). Pure parsing, no I/O.

Parsing here is lenient on purpose, as Argo CD's is: an unknown option or a value that is not
understood is ignored (the default stays), because one typo in an annotation must not stop a
whole application from syncing. `object_option_warnings` says what had no effect, which the
sync records as a SyncOptionWarning condition. The app-level list is strict one layer up:
`parse_application` refuses an unknown option or value in `spec.syncPolicy.syncOptions`
before it gets here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from ..model import keys

PROPAGATION_POLICIES: Final = ("foreground", "background", "orphan")

# Object option name (lower-cased) -> ObjectSyncOptions field. Names are matched without regard
# to case: Argo CD compares exact strings, but "prune=false" meaning anything other than
# "Prune=false" would only surprise.
_OBJECT_FIELDS: Final = {
    "prune": "prune",
    "delete": "delete",
    "replace": "replace",
    "serversideapply": "server_side_apply",
    "force": "force",
    "skipdryrunonmissingresource": "skip_dry_run_on_missing_resource",
    "validate": "validate",
    "prunelast": "prune_last",
}

_APP_BOOLEANS: Final = {
    "createnamespace": "create_namespace",
    "prunelast": "prune_last",
    "applyoutofsynconly": "apply_out_of_sync_only",
    "replace": "replace",
    "serversideapply": "server_side_apply",
    "respectignoredifferences": "respect_ignore_differences",
    "failonsharedresource": "fail_on_shared_resource",
    "validate": "validate",
    "skipdryrunonmissingresource": "skip_dry_run_on_missing_resource",
}


@dataclass(frozen=True)
class ObjectSyncOptions:
    """How one object is synced: the app-level defaults overridden by the object's annotation.

    `prune`/`delete` False means "never delete this object" (Prune=false / Delete=false);
    Argo CD's `Prune=confirm` / `Delete=confirm` also give False, because gitops-tasks has no
    confirmation step and not deleting is the safe reading.
    """

    prune: bool = True
    delete: bool = True
    replace: bool = False
    server_side_apply: bool = True
    force: bool = False
    skip_dry_run_on_missing_resource: bool = False
    validate: bool = True
    prune_last: bool = False


@dataclass(frozen=True)
class AppSyncOptions:
    """Application-wide sync options, parsed once per sync by `app_options`."""

    create_namespace: bool = False
    prune_last: bool = False
    apply_out_of_sync_only: bool = False
    replace: bool = False
    server_side_apply: bool = True
    prune_propagation_policy: str = "foreground"
    respect_ignore_differences: bool = False
    fail_on_shared_resource: bool = False
    validate: bool = True
    skip_dry_run_on_missing_resource: bool = False
    # "Name=value" entries that were not understood and therefore had no effect.
    ignored: tuple[str, ...] = ()

    def object_defaults(self) -> ObjectSyncOptions:
        """The per-object options every object starts from before its annotation applies."""
        return ObjectSyncOptions(
            replace=self.replace,
            server_side_apply=self.server_side_apply,
            skip_dry_run_on_missing_resource=self.skip_dry_run_on_missing_resource,
            validate=self.validate,
            prune_last=self.prune_last,
        )


def parse_bool(value: str) -> bool | None:
    """"true"/"false" in any case; anything else is None (not understood)."""
    lowered = value.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return None


def annotation_entries(obj: Mapping[str, Any], key: str) -> list[tuple[str, str]]:
    """("Name", "value") pairs from a comma-separated "Name=value,..." annotation.

    Entries without "=" or with an empty name are dropped: there is no option they could set.
    """
    raw = annotations_of(obj).get(key)
    if not isinstance(raw, str):
        return []
    out = []
    for item in raw.split(","):
        name, sep, value = item.partition("=")
        if sep and name.strip():
            out.append((name.strip(), value.strip()))
    return out


def object_options(
    obj: Mapping[str, Any], defaults: ObjectSyncOptions | None = None
) -> ObjectSyncOptions:
    """The effective options of one object.

    Argo CD's annotation (`argocd.argoproj.io/sync-options`) is read first and ours
    (`gitops-tasks.io/sync-options`) second, so when both set the same option ours wins, as for
    sync waves; options set by only one of them all apply.
    """
    changes: dict[str, bool] = {}
    entries = [*annotation_entries(obj, keys.ARGO_SYNC_OPTIONS),
               *annotation_entries(obj, keys.SYNC_OPTIONS)]
    for name, value in entries:
        field = _OBJECT_FIELDS.get(name.lower())
        if field is None:
            continue
        if field in ("prune", "delete") and value.lower() == "confirm":
            changes[field] = False
            continue
        parsed = parse_bool(value)
        if parsed is not None:
            changes[field] = parsed
    base = defaults if defaults is not None else ObjectSyncOptions()
    return replace(base, **changes) if changes else base


def object_option_warnings(obj: Mapping[str, Any]) -> list[str]:
    """What in an object's sync-options annotations has no effect, said so the user sees it:
    names not understood, values not understood, and ServerSideApply=false (every object is
    applied server side; client-side apply is not implemented)."""
    out = []
    for key in (keys.ARGO_SYNC_OPTIONS, keys.SYNC_OPTIONS):
        for name, value in annotation_entries(obj, key):
            field = _OBJECT_FIELDS.get(name.lower())
            if field is None:
                out.append(f"{key}: unknown option {name}={value}, ignored")
            elif field in ("prune", "delete") and value.lower() == "confirm":
                continue
            elif parse_bool(value) is None:
                out.append(f"{key}: {name} must be true or false, not {value!r}; ignored")
            elif field == "server_side_apply" and parse_bool(value) is False:
                out.append(f"{key}: ServerSideApply=false is not supported; applied server "
                           "side (client-side apply is not implemented)")
    return out


def app_options(sync_options: Iterable[tuple[str, str]]) -> AppSyncOptions:
    """`AppSyncOptions` from `SyncPolicy.sync_options` pairs; a later entry overrides an earlier
    one. Unknown names and values not understood are listed in `ignored`."""
    changes: dict[str, Any] = {}
    ignored: list[str] = []
    for name, value in sync_options:
        lowered = name.strip().lower()
        if lowered == "prunepropagationpolicy":
            policy = value.strip().lower()
            if policy in PROPAGATION_POLICIES:
                changes["prune_propagation_policy"] = policy
                continue
        elif lowered in _APP_BOOLEANS:
            parsed = parse_bool(value)
            if parsed is not None:
                changes[_APP_BOOLEANS[lowered]] = parsed
                continue
        ignored.append(f"{name}={value}")
    return AppSyncOptions(**changes, ignored=tuple(ignored))


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """`metadata.annotations`, or an empty mapping when absent or not a mapping."""
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return {}
    annotations = meta.get("annotations")
    return annotations if isinstance(annotations, Mapping) else {}
