"""compare(): statuses, the comparison strategy (empties, list positions, JSON types), and the
app's sync status."""

from __future__ import annotations

from typing import Any

import pytest

from gitops_tasks.diff import (
    ResourceDiff,
    ResourceStatus,
    SyncStatusCode,
    app_sync_status,
    compare,
)
from gitops_tasks.model.application import IgnoreDifference
from gitops_tasks.model.resources import ResourceKey

from .helpers import load

KEY = ResourceKey("", "ConfigMap", "shop", "c")


def cm(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "shop"}, **fields}


def test_missing_needs_no_predicted_object() -> None:
    diff = compare(KEY, cm(data={"a": "1"}), None)
    assert diff.status is ResourceStatus.MISSING
    assert diff.live is None and diff.desired == cm(data={"a": "1"})
    assert diff.paths == ()
    assert "+data:" in diff.text() and "+  a: '1'" in diff.text()


def test_missing_needs_no_object_at_all() -> None:
    diff = compare(KEY, None, None, [IgnoreDifference(kind="*", group="*",
                                                      jq_path_expressions=(".data",))])
    assert (diff.status, diff.live, diff.desired, diff.paths) == (
        ResourceStatus.MISSING, None, None, ())
    assert diff.text() == ""


def test_requires_pruning_when_tracked_and_no_longer_desired() -> None:
    live = load("deployment-no-change.yaml")["live"]
    diff = compare(ResourceKey.of(live), None, live)
    assert diff.status is ResourceStatus.REQUIRES_PRUNING
    assert diff.desired is None and diff.live is not None and "status" not in diff.live
    text = diff.text()
    assert text.startswith("--- live\n+++ desired\n")
    assert all(line.startswith(("-", "@", " ")) or not line for line in text.splitlines()[2:])


def test_untracked_live_object_without_desired_is_refused() -> None:
    with pytest.raises(ValueError, match="not tracked"):
        compare(KEY, None, cm(), tracked=False)


@pytest.mark.parametrize(("live", "predicted"), [
    (cm(), cm(data={})),
    (cm(data=None), cm()),
    (cm(data={}), cm(data=[])),
    (cm(metadata={"name": "c", "namespace": "shop", "labels": {}}), cm()),
    (cm(spec={"a": {"b": {}, "c": None}}), cm()),
    (cm(spec={"a": {"b": []}, "x": 1}), cm(spec={"x": 1, "a": None})),
    (cm(spec={"items": [{"k": 1, "e": {}}]}), cm(spec={"items": [{"k": 1}]})),
    (cm(spec={"n": 1}), cm(spec={"n": 1.0})),
])
def test_absent_null_and_empty_are_equivalent(live: dict[str, Any],
                                              predicted: dict[str, Any]) -> None:
    diff = compare(KEY, predicted, live)
    assert (diff.status, diff.paths) == (ResourceStatus.SYNCED, ())
    assert diff.text() == ""


def test_empties_present_on_both_sides_are_kept() -> None:
    both = cm(spec={"volumes": [{"name": "v", "emptyDir": {}}]})
    diff = compare(KEY, both, both)
    assert diff.desired is not None and diff.desired["spec"]["volumes"][0]["emptyDir"] == {}


def test_empty_against_content_is_a_difference() -> None:
    diff = compare(KEY, cm(data={"a": "1"}), cm(data={}))
    assert diff.paths == ("/data",)
    diff = compare(KEY, cm(data={"a": ""}), cm())
    assert diff.paths == ("/data",)


def test_lists_compare_by_position() -> None:
    live = cm(spec={"args": ["--a", "--b"]})
    assert compare(KEY, cm(spec={"args": ["--b", "--a"]}), live).paths == (
        "/spec/args/0", "/spec/args/1")
    assert compare(KEY, cm(spec={"args": ["--a", "--b", "--c"]}), live).paths == (
        "/spec/args/2",)
    assert compare(KEY, cm(spec={"args": ["--a"]}), live).paths == ("/spec/args/1",)


def test_json_types_matter() -> None:
    assert compare(KEY, cm(spec={"on": True}), cm(spec={"on": 1})).paths == ("/spec/on",)
    assert compare(KEY, cm(spec={"port": "80"}), cm(spec={"port": 80})).paths == ("/spec/port",)
    assert compare(KEY, cm(spec={"x": {"a": 1}}), cm(spec={"x": [1]})).paths == ("/spec/x",)


def test_paths_are_escaped_pointers_in_document_order() -> None:
    live = cm(metadata={"name": "c", "namespace": "shop",
                        "annotations": {"example.com/a~b": "1"}},
              spec={"items": [0] * 12, "b": 1, "a": 1})
    predicted = cm(metadata={"name": "c", "namespace": "shop",
                             "annotations": {"example.com/a~b": "2"}},
                   spec={"items": [0] * 2 + [1] + [0] * 7 + [1, 0], "b": 2, "a": 2})
    assert compare(KEY, predicted, live).paths == (
        "/metadata/annotations/example.com~1a~0b", "/spec/a", "/spec/b", "/spec/items/2",
        "/spec/items/10")


def test_rules_are_matched_against_the_key() -> None:
    live, predicted = cm(data={"a": "1"}), cm(data={"a": "2"})
    for_other = [IgnoreDifference(kind="Secret", json_pointers=("/data/a",))]
    for_this = [IgnoreDifference(kind="ConfigMap", name="c", json_pointers=("/data/a",))]
    assert compare(KEY, predicted, live, for_other).status is ResourceStatus.OUT_OF_SYNC
    assert compare(KEY, predicted, live, for_this).status is ResourceStatus.SYNCED


def test_managed_fields_rule_uses_live_ownership_on_both_sides() -> None:
    doc = load("deployment-hpa-took-replicas.yaml")
    rule = [IgnoreDifference(kind="Deployment", group="apps",
                             managed_fields_managers=("kube-controller-manager",))]
    diff = compare(ResourceKey.of(doc["live"]), doc["predicted"], doc["live"], rule)
    assert diff.status is ResourceStatus.SYNCED
    assert diff.live is not None and diff.desired is not None
    assert "replicas" not in diff.live["spec"] and "replicas" not in diff.desired["spec"]
    # Only that manager's fields went: ours and the server defaults are still compared.
    assert diff.desired["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    assert diff.desired["metadata"]["annotations"] == {
        "gitops-tasks.io/tracking-id": "shop:apps/Deployment:shop/web"}


def test_statuses_are_strings_for_the_application_status() -> None:
    assert str(ResourceStatus.REQUIRES_PRUNING) == "RequiresPruning"
    assert f"{SyncStatusCode.OUT_OF_SYNC}" == "OutOfSync"


def _diff(status: ResourceStatus) -> ResourceDiff:
    return ResourceDiff(KEY, status, None, None)


@pytest.mark.parametrize(("statuses", "expected"), [
    ([], SyncStatusCode.SYNCED),
    ([ResourceStatus.SYNCED, ResourceStatus.SYNCED], SyncStatusCode.SYNCED),
    ([ResourceStatus.SYNCED, ResourceStatus.OUT_OF_SYNC], SyncStatusCode.OUT_OF_SYNC),
    ([ResourceStatus.MISSING], SyncStatusCode.OUT_OF_SYNC),
    ([ResourceStatus.SYNCED, ResourceStatus.REQUIRES_PRUNING], SyncStatusCode.OUT_OF_SYNC),
])
def test_app_sync_status(statuses: list[ResourceStatus], expected: SyncStatusCode) -> None:
    assert app_sync_status(_diff(s) for s in statuses) is expected
