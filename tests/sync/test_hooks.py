"""Hook types and delete policies from annotations, ours, Argo CD's and Helm's."""

from __future__ import annotations

from typing import Any

import pytest

from gitops_tasks.model import keys
from gitops_tasks.sync import DeletePolicy, HookType, delete_policies, hook_name, hook_types
from gitops_tasks.sync.hooks import (
    HELM_HOOK,
    HELM_HOOK_DELETE_POLICY,
    is_skipped,
)

from .helpers import obj


def job(**annotations: str) -> dict[str, Any]:
    return obj("Job", "migrate", "ns", annotations=annotations)


def test_not_a_hook() -> None:
    assert hook_types(obj("Job", "j", "ns")) == ()
    assert hook_types(job(**{keys.HOOK: ""})) == ()
    assert delete_policies(obj("Job", "j", "ns")) == ()


@pytest.mark.parametrize("key", [keys.HOOK, keys.ARGO_HOOK])
def test_hook_types_from_either_annotation(key: str) -> None:
    assert hook_types(job(**{key: "PreSync"})) == (HookType.PRE_SYNC,)
    assert hook_types(job(**{key: "PreSync, PostSync,PreSync"})) == (
        HookType.PRE_SYNC, HookType.POST_SYNC)
    assert hook_types(job(**{key: "SyncFail"})) == (HookType.SYNC_FAIL,)
    assert hook_types(job(**{key: "Sync"})) == (HookType.SYNC,)
    assert hook_types(job(**{key: "presync"})) == (HookType.PRE_SYNC,)


def test_ours_wins_over_argo() -> None:
    both = job(**{keys.HOOK: "PostSync", keys.ARGO_HOOK: "PreSync"})
    assert hook_types(both) == (HookType.POST_SYNC,)


def test_skip() -> None:
    skip = hook_types(job(**{keys.ARGO_HOOK: "Skip"}))
    assert skip == (HookType.SKIP,)
    assert is_skipped(skip)
    # Skip next to a phase is ignored, as in Argo CD: the object runs as that hook.
    mixed = hook_types(job(**{keys.ARGO_HOOK: "PreSync,Skip"}))
    assert not is_skipped(mixed)
    assert HookType.PRE_SYNC in mixed


def test_unknown_hook_type_leaves_the_object_out() -> None:
    # e.g. Argo CD's PostDelete, which has no place in a sync.
    assert hook_types(job(**{keys.ARGO_HOOK: "PostDelete"})) == (HookType.SKIP,)


@pytest.mark.parametrize(("helm", "expected"), [
    ("pre-install", (HookType.PRE_SYNC,)),
    ("pre-upgrade", (HookType.PRE_SYNC,)),
    ("pre-install,pre-upgrade", (HookType.PRE_SYNC,)),
    ("post-install", (HookType.POST_SYNC,)),
    ("post-upgrade", (HookType.POST_SYNC,)),
    ("pre-install,post-upgrade", (HookType.PRE_SYNC, HookType.POST_SYNC)),
    ("test", (HookType.SKIP,)),
    ("pre-delete", (HookType.SKIP,)),
    ("post-rollback", (HookType.SKIP,)),
    ("crd-install", ()),
])
def test_helm_hooks_map_like_argo(helm: str, expected: tuple[HookType, ...]) -> None:
    assert hook_types(job(**{HELM_HOOK: helm})) == expected


def test_argo_hook_annotation_wins_over_helm() -> None:
    assert hook_types(job(**{HELM_HOOK: "pre-install", keys.ARGO_HOOK: "PostSync"})) == (
        HookType.POST_SYNC,)


def test_delete_policy_defaults_to_before_hook_creation() -> None:
    assert delete_policies(job(**{keys.HOOK: "PreSync"})) == (
        DeletePolicy.BEFORE_HOOK_CREATION,)
    assert delete_policies(job(**{HELM_HOOK: "pre-install"})) == (
        DeletePolicy.BEFORE_HOOK_CREATION,)


@pytest.mark.parametrize("key", [keys.HOOK_DELETE_POLICY, keys.ARGO_HOOK_DELETE_POLICY])
def test_delete_policies_from_either_annotation(key: str) -> None:
    hook = job(**{keys.HOOK: "PostSync", key: "HookSucceeded,HookFailed,Bogus"})
    assert delete_policies(hook) == (DeletePolicy.HOOK_SUCCEEDED, DeletePolicy.HOOK_FAILED)


def test_our_delete_policy_wins_and_helm_policies_merge() -> None:
    hook = job(**{keys.HOOK: "PostSync", keys.HOOK_DELETE_POLICY: "HookFailed",
                  keys.ARGO_HOOK_DELETE_POLICY: "HookSucceeded",
                  HELM_HOOK_DELETE_POLICY: "hook-succeeded,before-hook-creation"})
    assert delete_policies(hook) == (DeletePolicy.HOOK_FAILED, DeletePolicy.HOOK_SUCCEEDED,
                                     DeletePolicy.BEFORE_HOOK_CREATION)


def test_hook_name() -> None:
    named = job(**{keys.HOOK: "PreSync"})
    assert hook_name(named, "PreSync", "abc") == "migrate"
    generated = {"apiVersion": "batch/v1", "kind": "Job",
                 "metadata": {"generateName": "migrate-", "namespace": "ns"}}
    assert hook_name(generated, "PreSync") == "migrate-presync"
    assert hook_name(generated, "PostSync", "1a2b3c4-1700000000") == \
        "migrate-postsync-1a2b3c4-1700000000"
    assert hook_name({"metadata": {}}, "PreSync") == ""
