"""The table of YAML cases in testdata/: live and predicted (server-side dry-run) objects as the API
server returns them, each with the expected status and differing paths, without and with rules."""

from __future__ import annotations

from typing import Any

import pytest

from gitops_tasks.diff import ResourceStatus, compare
from gitops_tasks.model.resources import ResourceKey

from .helpers import case_files, load, rules


def _variants() -> list[Any]:
    out = []
    for name in case_files():
        doc = load(name)
        out.append(pytest.param(name, [], doc["expect"], id=f"{name}:no rules"))
        for variant in doc.get("withRules", []):
            out.append(pytest.param(name, variant["ignoreDifferences"], variant["expect"],
                                    id=f"{name}:{variant['name']}"))
    return out


@pytest.mark.parametrize(("name", "raw_rules", "expect"), _variants())
def test_case(name: str, raw_rules: list[dict[str, Any]], expect: dict[str, Any]) -> None:
    doc = load(name)
    key = ResourceKey.of(doc["live"])
    diff = compare(key, doc["predicted"], doc["live"], rules(raw_rules))
    assert (diff.status.value, list(diff.paths)) == (expect["status"], expect["paths"])
    if diff.status is ResourceStatus.SYNCED:
        assert diff.text() == ""
    else:
        assert diff.text().startswith("--- live\n+++ desired\n")


def test_every_case_file_says_what_it_shows() -> None:
    for name in case_files():
        doc = load(name)
        assert doc["description"] and doc["live"] and doc["predicted"], name
        assert "managedFields" in doc["live"]["metadata"], name


def test_inputs_are_not_modified() -> None:
    doc = load("deployment-hpa-took-replicas.yaml")
    before = load("deployment-hpa-took-replicas.yaml")
    compare(ResourceKey.of(doc["live"]), doc["predicted"], doc["live"],
            rules([{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"],
                    "managedFieldsManagers": ["kube-controller-manager"]}]))
    assert doc == before


def test_normalised_sides_carry_no_churn() -> None:
    doc = load("deployment-metadata-churn.yaml")
    diff = compare(ResourceKey.of(doc["live"]), doc["predicted"], doc["live"])
    assert diff.live is not None and diff.desired is not None
    for side in (diff.live, diff.desired):
        assert "status" not in side
        assert set(side["metadata"]) == {"annotations", "labels", "name", "namespace"}
        assert "kubectl.kubernetes.io/last-applied-configuration" not in side["metadata"][
            "annotations"]
    # Server defaults stay: they are part of what the object is, on both sides.
    assert diff.live["spec"]["strategy"]["type"] == "RollingUpdate"
