"""The sync plan: phases, waves, kind order, hooks, prune, options and dependency fixes."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from gitops_tasks.model import keys
from gitops_tasks.model.resources import ResourceKey
from gitops_tasks.sync import (
    Action,
    AppSyncOptions,
    DeletePolicy,
    HookType,
    Phase,
    app_options,
    wave_of,
)
from gitops_tasks.sync.hooks import HELM_HOOK, HELM_HOOK_WEIGHT

from .helpers import crd, key, lines, load, names, obj, plan


def wave(n: int | str, key_: str = keys.SYNC_WAVE) -> dict[str, str]:
    return {key_: str(n)}


# ------------------------------------------------------------------------------ kinds and names

def test_first_sync_of_a_multi_kind_app_is_in_dependency_order() -> None:
    p = plan(load("multi-kind.yaml"))
    assert names(p) == [
        "Namespace/shop",
        "CustomResourceDefinition/widgets.example.com",
        "ServiceAccount/web",
        "Secret/web-secret",
        "ConfigMap/web-config",
        "ClusterRole/web-widgets",
        "ClusterRoleBinding/web-widgets",
        "Role/web",
        "RoleBinding/web",
        "Service/web",
        "Deployment/web",
        "Widget/blue",
    ]
    assert {t.action for t in p.tasks} == {Action.APPLY}
    assert {(t.phase, t.wave) for t in p.tasks} == {(Phase.SYNC, 0)}
    assert p.errors == () and p.skipped_prunes == ()


def test_order_does_not_depend_on_input_order() -> None:
    targets = load("multi-kind.yaml")
    expected = plan(targets).tasks
    for seed in range(5):
        shuffled = list(targets)
        random.Random(seed).shuffle(shuffled)
        assert plan(shuffled).tasks == expected


def test_same_kind_by_namespace_then_name() -> None:
    p = plan([obj("ConfigMap", "b", "ns2"), obj("ConfigMap", "b", "ns1"),
              obj("ConfigMap", "a", "ns2"), obj("ConfigMap", "a", "ns1")])
    assert lines(p) == ["Sync[0] apply ConfigMap ns1/a", "Sync[0] apply ConfigMap ns1/b",
                        "Sync[0] apply ConfigMap ns2/a", "Sync[0] apply ConfigMap ns2/b"]


def test_live_object_is_attached_to_its_task() -> None:
    cm = obj("ConfigMap", "c", "ns", data={"a": "1"})
    live = obj("ConfigMap", "c", "ns", data={"a": "0"})
    (task,) = plan([cm], [live]).tasks
    assert task.target == cm and task.live == live
    (task,) = plan([cm]).tasks
    assert task.live is None


# ------------------------------------------------------------------------------ waves

def test_waves_come_before_kinds_and_negative_waves_first() -> None:
    p = plan([
        obj("Deployment", "app", "ns"),
        obj("ConfigMap", "late", "ns", annotations=wave(5)),
        obj("Deployment", "db", "ns", annotations=wave(-2)),
        obj("Service", "db", "ns", annotations=wave(-2)),
        obj("Secret", "early", "ns", annotations=wave(-1)),
    ])
    assert lines(p) == [
        "Sync[-2] apply Service ns/db",
        "Sync[-2] apply Deployment ns/db",
        "Sync[-1] apply Secret ns/early",
        "Sync[0] apply Deployment ns/app",
        "Sync[5] apply ConfigMap ns/late",
    ]
    assert [(phase, w, [t.key.name for t in tasks]) for phase, w, tasks in p.waves()] == [
        (Phase.SYNC, -2, ["db", "db"]),
        (Phase.SYNC, -1, ["early"]),
        (Phase.SYNC, 0, ["app"]),
        (Phase.SYNC, 5, ["late"]),
    ]


def test_argo_wave_annotation_is_honoured_and_ours_wins() -> None:
    assert wave_of(obj("ConfigMap", "c", annotations=wave(3, keys.ARGO_SYNC_WAVE))) == 3
    both = {keys.SYNC_WAVE: "-4", keys.ARGO_SYNC_WAVE: "7"}
    assert wave_of(obj("ConfigMap", "c", annotations=both)) == -4
    assert wave_of(obj("ConfigMap", "c")) == 0
    assert wave_of(obj("ConfigMap", "c", annotations={keys.SYNC_WAVE: " +2 "})) == 2


def test_helm_hook_weight_is_the_last_fallback() -> None:
    assert wave_of(obj("Job", "j", annotations={HELM_HOOK_WEIGHT: "-5"})) == -5
    assert wave_of(obj("Job", "j", annotations={HELM_HOOK_WEIGHT: "-5",
                                               keys.ARGO_SYNC_WAVE: "1"})) == 1


@pytest.mark.parametrize("bad", ["one", "1.5", "", "1_000", "true"])
def test_invalid_wave_raises_naming_the_object(bad: str) -> None:
    with pytest.raises(ValueError) as err:
        wave_of(obj("Deployment", "web", "shop", annotations={keys.SYNC_WAVE: bad}))
    assert "Deployment.apps shop/web" in str(err.value)
    assert keys.SYNC_WAVE in str(err.value)


def test_our_invalid_wave_is_an_error_even_when_argo_s_is_valid() -> None:
    with pytest.raises(ValueError, match=re.escape(keys.SYNC_WAVE)):
        wave_of(obj("ConfigMap", "c", annotations={keys.SYNC_WAVE: "x",
                                                   keys.ARGO_SYNC_WAVE: "1"}))


def test_invalid_wave_fails_that_object_only_and_it_is_not_pruned() -> None:
    bad = obj("ConfigMap", "bad", "ns", annotations=wave("soon"))
    good = obj("ConfigMap", "good", "ns")
    p = plan([bad, good], [bad, good], prune=True)
    assert names(p) == ["ConfigMap/good"]
    (error,) = p.errors
    assert error.key == key(bad)
    assert "ConfigMap ns/bad" in error.message and "'soon'" in error.message


def test_invalid_wave_on_a_live_object_to_prune_is_an_error_not_a_prune() -> None:
    stale = obj("ConfigMap", "stale", "ns", annotations=wave("x"))
    p = plan([], [stale], prune=True)
    assert p.tasks == ()
    assert [e.key for e in p.errors] == [key(stale)]


def test_duplicate_target_is_an_error() -> None:
    p = plan([obj("ConfigMap", "c", "ns", data={"a": "1"}),
              obj("ConfigMap", "c", "ns", data={"a": "2"})])
    assert len(p.tasks) == 1 and p.tasks[0].target is not None
    assert p.tasks[0].target["data"] == {"a": "1"}
    assert "more than once" in p.errors[0].message


# ------------------------------------------------------------------------------ hooks

def hook(kind: str, name: str, types: str, wave_: int = 0,
         extra: dict[str, str] | None = None) -> dict[str, Any]:
    return obj(kind, name, "ns", annotations={keys.HOOK: types, keys.SYNC_WAVE: str(wave_),
                                              **(extra or {})})


def test_hooks_run_in_their_phases_around_the_sync() -> None:
    p = plan([
        obj("Deployment", "web", "ns", annotations=wave(-10)),
        hook("Job", "notify", "PostSync", wave_=-5),
        hook("Job", "migrate", "PreSync", wave_=3),
        hook("Job", "cleanup", "SyncFail"),
        hook("Pod", "smoke", "Sync", wave_=-10),
        obj("ConfigMap", "cfg", "ns"),
    ])
    assert lines(p) == [
        "PreSync[3] hook Job ns/migrate",
        "Sync[-10] hook Pod ns/smoke",
        "Sync[-10] apply Deployment ns/web",
        "Sync[0] apply ConfigMap ns/cfg",
        "PostSync[-5] hook Job ns/notify",
        "SyncFail[0] hook Job ns/cleanup",
    ]
    assert [(phase, w) for phase, w, _ in p.waves()] == [
        (Phase.PRE_SYNC, 3), (Phase.SYNC, -10), (Phase.SYNC, 0), (Phase.POST_SYNC, -5),
        (Phase.SYNC_FAIL, 0)]


def test_hook_tasks_carry_types_and_default_delete_policy() -> None:
    p = plan([hook("Job", "migrate", "PreSync")])
    (task,) = p.tasks
    assert task.action is Action.HOOK
    assert task.hook_types == (HookType.PRE_SYNC,)
    assert task.delete_policies == (DeletePolicy.BEFORE_HOOK_CREATION,)
    p = plan([hook("Job", "migrate", "PreSync",
                   extra={keys.ARGO_HOOK_DELETE_POLICY: "HookSucceeded"})])
    assert p.tasks[0].delete_policies == (DeletePolicy.HOOK_SUCCEEDED,)
    # Ordinary objects have neither.
    (task,) = plan([obj("ConfigMap", "c", "ns")]).tasks
    assert (task.hook_types, task.delete_policies) == ((), ())


def test_a_hook_in_two_phases_gives_two_tasks() -> None:
    p = plan([hook("Job", "check", "PostSync,PreSync"), obj("ConfigMap", "c", "ns")])
    assert lines(p) == ["PreSync[0] hook Job ns/check", "Sync[0] apply ConfigMap ns/c",
                        "PostSync[0] hook Job ns/check"]


def test_generate_name_hooks_get_a_name_per_phase_and_operation() -> None:
    generated = {"apiVersion": "batch/v1", "kind": "Job",
                 "metadata": {"generateName": "migrate-", "namespace": "ns",
                              "annotations": {keys.ARGO_HOOK: "PreSync,PostSync"}}}
    p = plan([generated], operation="abc1234-1700000000")
    assert [t.key.name for t in p.tasks] == ["migrate-presync-abc1234-1700000000",
                                             "migrate-postsync-abc1234-1700000000"]
    assert [t.target["metadata"]["name"] for t in p.tasks if t.target] == [
        t.key.name for t in p.tasks]
    assert "name" not in generated["metadata"]  # the input is not modified
    # The same input gives the same names: the next step finds the hook it created.
    live = dict(p.tasks[0].target or {})
    again = plan([generated], [live], operation="abc1234-1700000000")
    assert again.tasks[0].live == live


def test_two_hooks_with_the_same_generate_name_are_duplicates() -> None:
    def generated(image: str) -> dict[str, Any]:
        return {"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"generateName": "m-", "namespace": "ns",
                             "annotations": {keys.HOOK: "PreSync"}},
                "spec": {"image": image}}
    p = plan([generated("a"), generated("b")])
    assert len(p.tasks) == 1 and len(p.errors) == 1


def test_helm_hooks_are_mapped() -> None:
    def helm(name: str, value: str, weight: str = "0") -> dict[str, Any]:
        return obj("Job", name, "ns", annotations={HELM_HOOK: value, HELM_HOOK_WEIGHT: weight})
    p = plan([
        helm("pre", "pre-install,pre-upgrade", weight="-1"),
        helm("post", "post-upgrade"),
        helm("test", "test"),
        obj("CustomResourceDefinition", "crds.example.com",
            annotations={HELM_HOOK: "crd-install"},
            spec={"group": "example.com", "names": {"kind": "Crd"}}),
    ])
    assert lines(p) == [
        "PreSync[-1] hook Job ns/pre",
        "Sync[0] apply CustomResourceDefinition crds.example.com",
        "PostSync[0] hook Job ns/post",
    ]


def test_skip_is_left_out_entirely_and_never_pruned() -> None:
    skipped = obj("ConfigMap", "manual", "ns", annotations={keys.ARGO_HOOK: "Skip"})
    p = plan([skipped, obj("ConfigMap", "c", "ns")], [skipped], prune=True)
    assert names(p) == ["ConfigMap/c"]
    # Still Skip live after it left Git: not pruned either (it is a hook, not ours to delete).
    p = plan([], [skipped], prune=True)
    assert p.tasks == () and p.skipped_prunes == ()


def test_live_hooks_are_not_pruned() -> None:
    old_hook = hook("Job", "migrate", "PreSync")
    p = plan([obj("ConfigMap", "c", "ns")], [old_hook], prune=True)
    assert names(p) == ["ConfigMap/c"]
    assert p.skipped_prunes == ()


def test_hook_live_object_is_attached() -> None:
    job = hook("Job", "migrate", "PreSync")
    (task,) = plan([job], [job]).tasks
    assert task.live == job


def test_apply_out_of_sync_only_does_not_hold_back_hooks() -> None:
    job = hook("Job", "migrate", "PreSync")
    (task,) = plan([job], [job], options=AppSyncOptions(apply_out_of_sync_only=True)).tasks
    assert task.action is Action.HOOK


# ------------------------------------------------------------------------------ prune

def test_prunes_follow_the_applies_of_their_wave_in_reverse_kind_order() -> None:
    stale = [
        obj("ConfigMap", "old-config", "ns"),
        obj("Deployment", "old", "ns"),
        obj("ServiceAccount", "old", "ns"),
        obj("Service", "old", "ns"),
        obj("Widget", "old", "ns", api_version="example.com/v1"),
        obj("Namespace", "old-ns"),
    ]
    p = plan([obj("ConfigMap", "new-config", "ns"), obj("Deployment", "new", "ns")], stale,
             prune=True)
    assert lines(p) == [
        "Sync[0] apply ConfigMap ns/new-config",
        "Sync[0] apply Deployment ns/new",
        "Sync[0] prune Widget ns/old",
        "Sync[0] prune Deployment ns/old",
        "Sync[0] prune Service ns/old",
        "Sync[0] prune ConfigMap ns/old-config",
        "Sync[0] prune ServiceAccount ns/old",
        "Sync[0] prune Namespace old-ns",
    ]
    prune = p.tasks[-1]
    assert prune.target is None and prune.live == stale[-1] and prune.is_prune


def test_prunes_are_in_the_wave_of_the_live_object() -> None:
    p = plan([obj("ConfigMap", "a", "ns", annotations=wave(1))],
             [obj("ConfigMap", "gone", "ns", annotations=wave(2, keys.ARGO_SYNC_WAVE)),
              obj("ConfigMap", "gone-early", "ns", annotations=wave(-1))], prune=True)
    assert lines(p) == ["Sync[-1] prune ConfigMap ns/gone-early",
                        "Sync[1] apply ConfigMap ns/a",
                        "Sync[2] prune ConfigMap ns/gone"]


def test_prune_last_app_option_puts_prunes_after_every_sync_wave() -> None:
    p = plan([obj("ConfigMap", "a", "ns", annotations=wave(3)),
              hook("Job", "after", "PostSync", wave_=-1)],
             [obj("ConfigMap", "gone", "ns", annotations=wave(-3)),
              obj("Deployment", "gone", "ns")],
             prune=True, options=app_options([("PruneLast", "true")]))
    assert lines(p) == [
        "Sync[3] apply ConfigMap ns/a",
        "Sync[4] prune Deployment ns/gone",
        "Sync[4] prune ConfigMap ns/gone",
        "PostSync[-1] hook Job ns/after",
    ]


def test_prune_last_counts_from_wave_zero_like_argo() -> None:
    p = plan([obj("ConfigMap", "a", "ns", annotations=wave(-5))],
             [obj("ConfigMap", "gone", "ns", annotations=wave(-9))],
             prune=True, options=app_options([("PruneLast", "true")]))
    assert lines(p) == ["Sync[-5] apply ConfigMap ns/a", "Sync[1] prune ConfigMap ns/gone"]


def test_prune_last_per_object() -> None:
    last = obj("ConfigMap", "last", "ns",
               annotations={keys.ARGO_SYNC_OPTIONS: "PruneLast=true", keys.SYNC_WAVE: "-1"})
    p = plan([obj("ConfigMap", "a", "ns", annotations=wave(2))],
             [last, obj("ConfigMap", "normal", "ns")], prune=True)
    assert lines(p) == ["Sync[0] prune ConfigMap ns/normal", "Sync[2] apply ConfigMap ns/a",
                        "Sync[3] prune ConfigMap ns/last"]
    assert p.tasks[-1].options.prune_last


@pytest.mark.parametrize(("annotation", "reason"), [
    ({keys.SYNC_OPTIONS: "Prune=false"}, "Prune=false"),
    ({keys.ARGO_SYNC_OPTIONS: "Prune=false"}, "Prune=false"),
    ({keys.ARGO_SYNC_OPTIONS: "Delete=false"}, "Delete=false"),
    ({keys.SYNC_OPTIONS: "Delete=false,Replace=true"}, "Delete=false"),
])
def test_objects_that_opt_out_are_skipped(annotation: dict[str, str], reason: str) -> None:
    keep = obj("ConfigMap", "keep", "ns", annotations=annotation)
    p = plan([], [keep, obj("ConfigMap", "go", "ns")], prune=True)
    assert lines(p) == ["Sync[0] prune ConfigMap ns/go"]
    assert p.skipped_prunes == (key(keep),)
    assert reason in p.skip_reasons[key(keep)]


def test_prune_disabled_skips_every_prune() -> None:
    stale = [obj("ConfigMap", "a", "ns"), obj("Deployment", "b", "ns")]
    p = plan([obj("ConfigMap", "c", "ns")], stale, prune=False)
    assert names(p) == ["ConfigMap/c"]
    assert set(p.skipped_prunes) == {key(o) for o in stale}
    assert all("not enabled" in r for r in p.skip_reasons.values())


def test_target_key_matches_live_key_so_nothing_rendered_is_pruned() -> None:
    targets = load("multi-kind.yaml")
    p = plan(targets, targets, prune=True)
    assert not any(t.is_prune for t in p.tasks)


# ------------------------------------------------------------------------------ options

def test_apply_out_of_sync_only() -> None:
    synced = obj("ConfigMap", "synced", "ns")
    drifted = obj("ConfigMap", "drifted", "ns")
    missing = obj("ConfigMap", "missing", "ns")
    options = AppSyncOptions(apply_out_of_sync_only=True)
    p = plan([synced, drifted, missing], [synced, drifted], out_of_sync=[key(drifted)],
             options=options)
    assert lines(p) == ["Sync[0] apply ConfigMap ns/drifted", "Sync[0] apply ConfigMap ns/missing",
                        "Sync[0] none ConfigMap ns/synced"]
    # Without the option everything is applied (server-side apply is idempotent).
    p = plan([synced, drifted, missing], [synced, drifted], out_of_sync=[key(drifted)])
    assert {t.action for t in p.tasks} == {Action.APPLY}


def test_tasks_carry_effective_options() -> None:
    options = app_options([("Replace", "true"), ("ServerSideApply", "false")])
    p = plan([obj("ConfigMap", "a", "ns"),
              obj("ConfigMap", "b", "ns", annotations={keys.SYNC_OPTIONS: "Replace=false"})],
             options=options)
    a, b = p.tasks
    assert (a.options.replace, a.options.server_side_apply) == (True, False)
    assert (b.options.replace, b.options.server_side_apply) == (False, False)


# ------------------------------------------------------------------------------ dependencies

def test_crd_moves_to_the_wave_of_its_custom_resource() -> None:
    widgets = crd("example.com", "Widget", "widgets", **{keys.SYNC_WAVE: "5"})
    widget = obj("Widget", "blue", "ns", api_version="example.com/v1", annotations=wave(-2))
    other = obj("Gadget", "g", "ns", api_version="example.com/v1", annotations=wave(-3))
    p = plan([obj("ConfigMap", "c", "ns", annotations=wave(-2)), widgets, widget, other])
    assert lines(p) == [
        "Sync[-3] apply Gadget ns/g",  # its CRD is not in the plan: nothing to fix
        "Sync[-2] apply CustomResourceDefinition widgets.example.com",
        "Sync[-2] apply ConfigMap ns/c",
        "Sync[-2] apply Widget ns/blue",
    ]
    cr = p.tasks[-1]
    assert cr.depends_on == (key(widgets),)
    assert p.tasks[0].depends_on == ()


def test_crd_in_a_lower_wave_stays_put() -> None:
    widgets = crd("example.com", "Widget", "widgets", **{keys.SYNC_WAVE: "-1"})
    widget = obj("Widget", "blue", "ns", api_version="example.com/v1", annotations=wave(4))
    p = plan([widget, widgets])
    assert lines(p) == ["Sync[-1] apply CustomResourceDefinition widgets.example.com",
                        "Sync[4] apply Widget ns/blue"]
    assert p.tasks[1].depends_on == (key(widgets),)


def test_crd_moves_into_the_phase_of_a_hook_that_needs_it() -> None:
    widgets = crd("example.com", "Widget", "widgets")
    check = obj("Widget", "check", "ns", api_version="example.com/v1",
                annotations={keys.HOOK: "PreSync", keys.SYNC_WAVE: "1"})
    p = plan([widgets, check, obj("Widget", "blue", "ns", api_version="example.com/v1")])
    assert lines(p) == ["PreSync[1] apply CustomResourceDefinition widgets.example.com",
                        "PreSync[1] hook Widget ns/check",
                        "Sync[0] apply Widget ns/blue"]


def test_namespace_moves_to_the_first_object_in_it() -> None:
    p = plan([obj("Namespace", "shop", annotations=wave(10)),
              obj("ConfigMap", "c", "shop", annotations=wave(2)),
              obj("Deployment", "d", "shop", annotations=wave(-1)),
              obj("ConfigMap", "elsewhere", "other", annotations=wave(-4))])
    assert lines(p) == ["Sync[-4] apply ConfigMap other/elsewhere",
                        "Sync[-1] apply Namespace shop",
                        "Sync[-1] apply Deployment shop/d",
                        "Sync[2] apply ConfigMap shop/c"]
    assert p.tasks[2].depends_on == (ResourceKey("", "Namespace", "", "shop"),)


def test_custom_resource_needs_both_its_namespace_and_its_crd() -> None:
    ns = obj("Namespace", "shop", annotations=wave(3))
    widgets = crd("example.com", "Widget", "widgets", **{keys.SYNC_WAVE: "3"})
    widget = obj("Widget", "blue", "shop", api_version="example.com/v1", annotations=wave(0))
    p = plan([widget, widgets, ns])
    assert names(p) == ["Namespace/shop", "CustomResourceDefinition/widgets.example.com",
                        "Widget/blue"]
    assert {t.wave for t in p.tasks} == {0}
    assert set(p.tasks[-1].depends_on) == {key(ns), key(widgets)}


def test_dependencies_that_are_in_sync_are_not_moved() -> None:
    ns = obj("Namespace", "shop", annotations=wave(3))
    cm = obj("ConfigMap", "c", "shop")
    p = plan([ns, cm], [ns], options=AppSyncOptions(apply_out_of_sync_only=True))
    assert lines(p) == ["Sync[0] apply ConfigMap shop/c", "Sync[3] none Namespace shop"]
    assert p.tasks[0].depends_on == ()


def test_prunes_do_not_pull_dependencies() -> None:
    p = plan([obj("Namespace", "shop", annotations=wave(2))],
             [obj("ConfigMap", "gone", "shop", annotations=wave(-1))], prune=True)
    assert lines(p) == ["Sync[-1] prune ConfigMap shop/gone", "Sync[2] apply Namespace shop"]


# ------------------------------------------------------------------------------ plan data

def test_plan_is_plain_data_and_pure() -> None:
    targets = load("multi-kind.yaml")
    before = [dict(t) for t in targets]
    first, second = plan(targets), plan(targets)
    assert first == second
    assert targets == before
    assert str(first.tasks[0]) == "Sync[0] apply Namespace shop"
    assert sum(len(tasks) for _, _, tasks in first.waves()) == len(first.tasks)
