"""normalize(): generic clean-up and per-kind fixes, on objects as the API server returns them."""

from __future__ import annotations

import base64
import copy

from gitops_tasks.diff import normalize
from gitops_tasks.diff.normalize import LAST_APPLIED_ANNOTATION

from .helpers import load


def test_drops_metadata_churn_status_and_last_applied() -> None:
    live = load("deployment-metadata-churn.yaml")["live"]
    out = normalize(live)
    assert "status" not in out
    assert set(out["metadata"]) == {"annotations", "labels", "name", "namespace"}
    assert LAST_APPLIED_ANNOTATION not in out["metadata"]["annotations"]
    assert out["metadata"]["annotations"]["gitops-tasks.io/tracking-id"]
    assert out["spec"] == live["spec"]


def test_returns_a_new_object() -> None:
    live = load("deployment-no-change.yaml")["live"]
    before = copy.deepcopy(live)
    out = normalize(live)
    out["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    assert live == before


def test_empty_labels_and_annotations_are_dropped() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "c", "labels": {}, "annotations": {
               LAST_APPLIED_ANNOTATION: "{}"}}}
    assert normalize(obj)["metadata"] == {"name": "c"}


def test_secret_string_data_is_merged_into_data_as_the_server_does() -> None:
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
           "data": {"a": base64.b64encode(b"old").decode(), "b": "Yg=="},
           "stringData": {"a": "new", "c": "sé"}}
    out = normalize(obj)
    assert "stringData" not in out
    assert {k: base64.b64decode(v).decode() for k, v in out["data"].items()} == {
        "a": "new", "b": "b", "c": "sé"}


def test_secret_string_data_without_data() -> None:
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
           "stringData": {"k": "v"}}
    assert normalize(obj)["data"] == {"k": "dg=="}


def test_string_data_of_a_custom_kind_named_secret_is_left_alone() -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Secret", "metadata": {"name": "s"},
           "stringData": {"k": "v"}}
    assert normalize(obj)["stringData"] == {"k": "v"}
