"""Sync: the plan (phases, waves, kind order, hooks, options) and, on top of it, the engine.

The modules re-exported here are pure: `build_plan` turns rendered manifests, the live
inventory and the diff result into ordered tasks, and the engine executes them.
"""

from .hooks import DeletePolicy, HookType, delete_policies, hook_name, hook_types, is_skipped
from .kinds import CUSTOM_RANK, KIND_ORDER, kind_rank
from .options import AppSyncOptions, ObjectSyncOptions, app_options, object_options
from .plan import (
    Action,
    Phase,
    Plan,
    PlanError,
    PlanInput,
    SyncTask,
    build_plan,
    wave_of,
)

__all__ = [
    "CUSTOM_RANK",
    "KIND_ORDER",
    "Action",
    "AppSyncOptions",
    "DeletePolicy",
    "HookType",
    "ObjectSyncOptions",
    "Phase",
    "Plan",
    "PlanError",
    "PlanInput",
    "SyncTask",
    "app_options",
    "build_plan",
    "delete_policies",
    "hook_name",
    "hook_types",
    "is_skipped",
    "kind_rank",
    "object_options",
    "wave_of",
]
