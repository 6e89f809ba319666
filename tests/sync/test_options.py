"""Sync options: the per-object annotation (ours and Argo CD's) and the app's syncOptions."""

from __future__ import annotations

import pytest

from gitops_tasks.model import SyncPolicy, keys
from gitops_tasks.sync import AppSyncOptions, ObjectSyncOptions, app_options, object_options
from gitops_tasks.sync.options import object_option_warnings

from .helpers import obj


def annotated(**annotations: str) -> dict[str, object]:
    return obj("ConfigMap", "c", "ns", annotations=annotations)


def test_no_annotation_gives_the_defaults() -> None:
    assert object_options(obj("ConfigMap", "c", "ns")) == ObjectSyncOptions()
    assert ObjectSyncOptions() == ObjectSyncOptions(
        prune=True, delete=True, replace=False, server_side_apply=True, force=False,
        skip_dry_run_on_missing_resource=False, validate=True, prune_last=False)


@pytest.mark.parametrize("key", [keys.SYNC_OPTIONS, keys.ARGO_SYNC_OPTIONS])
def test_every_object_option_from_either_annotation(key: str) -> None:
    value = ("Prune=false,Delete=false,Replace=true,ServerSideApply=false,Force=true,"
             "SkipDryRunOnMissingResource=true,Validate=false,PruneLast=true")
    assert object_options(annotated(**{key: value})) == ObjectSyncOptions(
        prune=False, delete=False, replace=True, server_side_apply=False, force=True,
        skip_dry_run_on_missing_resource=True, validate=False, prune_last=True)


def test_ours_wins_over_argo_per_option_and_both_apply() -> None:
    options = object_options(annotated(**{
        keys.ARGO_SYNC_OPTIONS: "Prune=false,Replace=true",
        keys.SYNC_OPTIONS: "Prune=true",
    }))
    assert options.prune is True  # ours overrides Argo CD's for the same option
    assert options.replace is True  # Argo CD's still applies where ours is silent


def test_lenient_parsing_ignores_what_it_does_not_understand() -> None:
    options = object_options(annotated(**{
        keys.SYNC_OPTIONS: " prune = FALSE ,Unknown=true,,Replace,Validate=nope,=x,Force=True"}))
    assert options == ObjectSyncOptions(prune=False, force=True)


def test_confirm_means_do_not_delete() -> None:
    options = object_options(annotated(**{keys.ARGO_SYNC_OPTIONS: "Prune=confirm,Delete=confirm"}))
    assert (options.prune, options.delete) == (False, False)


def test_annotation_overrides_app_defaults() -> None:
    defaults = app_options([("Replace", "true"), ("ServerSideApply", "false"),
                            ("PruneLast", "true")]).object_defaults()
    assert object_options(obj("ConfigMap", "c"), defaults) == ObjectSyncOptions(
        replace=True, server_side_apply=False, prune_last=True)
    options = object_options(annotated(**{keys.SYNC_OPTIONS: "Replace=false"}), defaults)
    assert (options.replace, options.server_side_apply) == (False, False)


def test_non_string_or_missing_annotations_are_ignored() -> None:
    assert object_options({"metadata": {"annotations": None}}) == ObjectSyncOptions()
    assert object_options({"metadata": {"annotations": {keys.SYNC_OPTIONS: 3}}}) == \
        ObjectSyncOptions()
    assert object_options({}) == ObjectSyncOptions()


def test_app_options_defaults() -> None:
    options = app_options([])
    assert options == AppSyncOptions()
    assert options.server_side_apply is True
    assert options.prune_propagation_policy == "foreground"
    assert not (options.create_namespace or options.prune_last or options.apply_out_of_sync_only)


def test_every_app_option() -> None:
    options = app_options([
        ("CreateNamespace", "true"), ("PruneLast", "true"), ("ApplyOutOfSyncOnly", "true"),
        ("Replace", "true"), ("ServerSideApply", "false"), ("PrunePropagationPolicy", "orphan"),
        ("RespectIgnoreDifferences", "true"), ("FailOnSharedResource", "true"),
        ("Validate", "false"), ("SkipDryRunOnMissingResource", "true"),
    ])
    assert options == AppSyncOptions(
        create_namespace=True, prune_last=True, apply_out_of_sync_only=True, replace=True,
        server_side_apply=False, prune_propagation_policy="orphan",
        respect_ignore_differences=True, fail_on_shared_resource=True, validate=False,
        skip_dry_run_on_missing_resource=True)


@pytest.mark.parametrize(("value", "expected"), [
    ("foreground", "foreground"), ("background", "background"), ("orphan", "orphan"),
    ("Background", "background"), ("sideways", "foreground"),
])
def test_prune_propagation_policy(value: str, expected: str) -> None:
    assert app_options([("PrunePropagationPolicy", value)]).prune_propagation_policy == expected


def test_app_options_later_wins_and_unknown_are_reported() -> None:
    options = app_options([("CreateNamespace", "true"), ("CreateNamespace", "false"),
                           ("Frobnicate", "true"), ("PruneLast", "maybe"),
                           ("PrunePropagationPolicy", "sideways")])
    assert options.create_namespace is False
    assert options.prune_last is False
    assert options.ignored == ("Frobnicate=true", "PruneLast=maybe",
                               "PrunePropagationPolicy=sideways")


def test_app_options_from_a_sync_policy() -> None:
    policy = SyncPolicy(sync_options=(("CreateNamespace", "true"),
                                      ("PrunePropagationPolicy", "background")))
    options = app_options(policy.sync_options)
    assert options.create_namespace is True
    assert options.prune_propagation_policy == "background"


def test_object_options_without_effect_are_said() -> None:
    obj = {"metadata": {"annotations": {
        "argocd.argoproj.io/sync-options":
            "ServerSideApply=false,Prunee=false,Validate=nope,Prune=confirm,Replace=true"}}}
    warnings = object_option_warnings(obj)
    assert warnings == [
        "argocd.argoproj.io/sync-options: ServerSideApply=false is not supported; applied "
        "server side (client-side apply is not implemented)",
        "argocd.argoproj.io/sync-options: unknown option Prunee=false, ignored",
        "argocd.argoproj.io/sync-options: Validate must be true or false, not 'nope'; ignored",
    ]
    assert object_option_warnings({"metadata": {"annotations": {
        "gitops-tasks.io/sync-options": "ServerSideApply=true,Force=true"}}}) == []
