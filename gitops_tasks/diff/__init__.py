"""Diff: is the cluster what Git says it should be, resource by resource.

Called by the engine (refresh and sync) and the `gitops-tasks diff` command. Pure logic apart from
the Redis-backed dry-run cache; the dry-run itself is the cluster layer's job.

Layers, each in its own module: `normalize` (generic and per-kind clean-up), `ignore` (the user's
ignoreDifferences, with `managedfields` decoding field ownership), `compare` (per-resource status
and differing paths), `text` (unified YAML diff, Secrets masked), `cache` (dry-run results).
"""

from .cache import DryRunCache, manifest_hash
from .compare import ResourceDiff, ResourceStatus, SyncStatusCode, app_sync_status, compare
from .ignore import InvalidIgnoreRule, apply_ignore_rules, ignore_rules_for, validate_rules
from .normalize import normalize

__all__ = [
    "DryRunCache",
    "InvalidIgnoreRule",
    "ResourceDiff",
    "ResourceStatus",
    "SyncStatusCode",
    "app_sync_status",
    "apply_ignore_rules",
    "compare",
    "ignore_rules_for",
    "manifest_hash",
    "normalize",
    "validate_rules",
]
