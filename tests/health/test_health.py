"""Tests for gitops_tasks.health: a table of YAML fixtures, plus the ordering and aggregation.

Fixture convention (testdata/*.yaml): two YAML documents. The first says what to expect:

    expected: Degraded           # a HealthStatus value, or null for "no health notion"
    message: exceeded its        # optional: a substring the health message must contain

The second is the live object, written as the API server returns it (`kubectl get -o yaml`
without managedFields): server defaults filled in, zero integers and false booleans omitted.
File names are `<kind>-<expected>-<case>.yaml`.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops_tasks.health import (
    CHECKS,
    Health,
    HealthStatus,
    app_health,
    resource_health,
)

TESTDATA = Path(__file__).parent / "testdata"
FIXTURES = sorted(TESTDATA.glob("*.yaml"))

H = HealthStatus


def load(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    docs = list(yaml.safe_load_all(path.read_text()))
    assert len(docs) == 2, f"{path.name}: expected 2 YAML documents, got {len(docs)}"
    expect, obj = docs
    assert isinstance(expect, dict) and set(expect) <= {"expected", "message"}, path.name
    assert "expected" in expect, f"{path.name}: the first document needs `expected:`"
    return expect, obj


def group_kind(obj: dict[str, Any]) -> tuple[str, str]:
    return str(obj["apiVersion"]).rpartition("/")[0], str(obj["kind"])


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_fixture(path: Path) -> None:
    expect, obj = load(path)
    health = resource_health(obj)
    if expect["expected"] is None:
        assert health is None
        return
    assert health is not None
    assert health.status == HealthStatus(expect["expected"]), health.message
    assert str(expect.get("message", "")) in health.message


def test_fixture_names_state_the_expectation() -> None:
    # Keeps the table readable: `ls testdata` shows which states each kind is tested in.
    for path in FIXTURES:
        expect, _ = load(path)
        state = "none" if expect["expected"] is None else str(expect["expected"]).lower()
        assert f"-{state}" in path.stem, f"{path.name} should mention {state!r} in its name"


# The states each registered kind's fixtures must cover: every state the kind can be in. A
# StatefulSet, DaemonSet, Service, Ingress or APIService has no failure signal of its own, and a
# CronJob is Progressing only before it has any status (a run in flight stays Healthy); see the
# check modules.
_HP = {H.HEALTHY, H.PROGRESSING}
_REQUIRED: dict[str, set[HealthStatus]] = {
    "Deployment": _HP | {H.DEGRADED, H.SUSPENDED},
    "StatefulSet": _HP,
    "DaemonSet": _HP,
    "ReplicaSet": _HP | {H.DEGRADED},
    "Pod": _HP | {H.DEGRADED},
    "Service": _HP,
    "Ingress": _HP,
    "PersistentVolumeClaim": _HP | {H.DEGRADED},
    "Job": _HP | {H.DEGRADED, H.SUSPENDED},
    "CronJob": _HP | {H.DEGRADED, H.SUSPENDED},
    "HorizontalPodAutoscaler": _HP | {H.DEGRADED},
    "CustomResourceDefinition": _HP | {H.DEGRADED},
    "APIService": _HP,
    "Application": set(HealthStatus),
    "Workflow": set(HealthStatus) - {H.SUSPENDED, H.MISSING},
}


def test_every_registered_kind_has_fixtures_for_its_states() -> None:
    assert set(_REQUIRED) == {kind for _, kind in CHECKS}
    by_group_kind: dict[tuple[str, str], set[HealthStatus]] = defaultdict(set)
    by_kind: dict[str, set[HealthStatus]] = defaultdict(set)
    for path in FIXTURES:
        expect, obj = load(path)
        if expect["expected"] is not None:
            by_group_kind[group_kind(obj)].add(HealthStatus(expect["expected"]))
            by_kind[group_kind(obj)[1]].add(HealthStatus(expect["expected"]))
    # Retired groups (extensions/v1beta1) share their check with the current group's.
    for group, kind in CHECKS:
        if group != "extensions":
            assert (group, kind) in by_group_kind, f"no fixture for {kind} in group {group!r}"
    for kind, required in _REQUIRED.items():
        missing = required - by_kind[kind]
        assert not missing, f"{kind}: no fixture for {sorted(s.value for s in missing)}"


# ---------------------------------------------------------------------------- ordering


def test_order_is_argo_cds() -> None:
    assert sorted(HealthStatus, key=lambda s: s.rank) == [
        H.HEALTHY,
        H.SUSPENDED,
        H.PROGRESSING,
        H.MISSING,
        H.DEGRADED,
        H.UNKNOWN,
    ]
    assert [s.rank for s in HealthStatus] == list(range(6))


@pytest.mark.parametrize(
    ("better", "worse"),
    [
        (H.HEALTHY, H.SUSPENDED),
        (H.SUSPENDED, H.PROGRESSING),
        (H.PROGRESSING, H.MISSING),
        (H.MISSING, H.DEGRADED),
        (H.DEGRADED, H.UNKNOWN),
        (H.HEALTHY, H.UNKNOWN),
    ],
)
def test_comparisons(better: HealthStatus, worse: HealthStatus) -> None:
    assert better < worse and better <= worse
    assert worse > better and worse >= better
    assert worse.is_worse_than(better)
    assert not better.is_worse_than(worse)
    assert not better.is_worse_than(better)
    assert max(better, worse) is worse
    assert min(better, worse) is better


def test_comparison_with_other_types_is_refused() -> None:
    with pytest.raises(TypeError):
        _ = H.HEALTHY < "Degraded"
    other: object = "Healthy"
    assert other != H.HEALTHY  # an enum member, not a str subclass


def test_values_are_the_wire_strings() -> None:
    assert [s.value for s in HealthStatus] == [
        "Healthy",
        "Suspended",
        "Progressing",
        "Missing",
        "Degraded",
        "Unknown",
    ]


# ---------------------------------------------------------------------------- app_health


def test_app_health_of_nothing_is_healthy() -> None:
    assert app_health([]) == Health(H.HEALTHY)
    assert app_health([None, None]) == Health(H.HEALTHY)


def test_app_health_is_the_worst_with_its_message() -> None:
    healths = [
        Health(H.HEALTHY),
        None,
        Health(H.PROGRESSING, "Waiting for rollout to finish"),
        Health(H.DEGRADED, 'Deployment "web" exceeded its progress deadline'),
        Health(H.MISSING, "Resource does not exist"),
        Health(H.SUSPENDED, "CronJob is suspended"),
    ]
    assert app_health(healths) == healths[3]
    assert app_health(iter(healths)) == healths[3]  # any iterable, consumed once


def test_app_health_ties_keep_the_first() -> None:
    first, second = Health(H.PROGRESSING, "first"), Health(H.PROGRESSING, "second")
    assert app_health([Health(H.HEALTHY, "ok"), first, second]).message == "first"


def test_app_health_unknown_beats_everything() -> None:
    healths = [Health(s) for s in HealthStatus]
    assert app_health(reversed(healths)).status is H.UNKNOWN


def test_app_health_of_only_suspended_is_suspended() -> None:
    assert app_health([Health(H.HEALTHY), Health(H.SUSPENDED, "paused")]).status is H.SUSPENDED


# ---------------------------------------------------------------------------- resource_health


def test_absent_object_is_missing() -> None:
    health = resource_health(None)
    assert health is not None and health.status is H.MISSING


@pytest.mark.parametrize(
    ("obj", "detail"),
    [
        (
            {"apiVersion": "apps/v1", "kind": "Deployment", "status": "bogus"},
            "status: expected an object, got str 'bogus'",
        ),
        (
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "status": {"observedGeneration": 1, "readyReplicas": "3"},
            },
            "status.readyReplicas: expected an integer, got str '3'",
        ),
        (
            {"apiVersion": "v1", "kind": "Pod", "status": {"containerStatuses": {"a": 1}}},
            "status.containerStatuses: expected a list",
        ),
        (
            {"apiVersion": "batch/v1", "kind": "Job", "status": {"conditions": ["Complete"]}},
            "expected a list of objects",
        ),
        (
            {
                "apiVersion": "example.com/v1",
                "kind": "Widget",
                "status": {"conditions": [{"type": "Ready", "status": True}]},
            },
            "malformed condition",
        ),
        (
            {
                "apiVersion": "autoscaling/v1",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {
                    "annotations": {"autoscaling.alpha.kubernetes.io/conditions": "[{not json"}
                },
            },
            "annotation is not JSON",
        ),
        (
            {"apiVersion": "batch/v1", "kind": "CronJob", "status": {"lastScheduleTime": "now"}},
            "status.lastScheduleTime: expected an RFC 3339 time",
        ),
        ({"apiVersion": "v1", "kind": "Pod", "metadata": "pod-1"}, "metadata: expected an object"),
        ({"apiVersion": 1, "kind": "Pod"}, "apiVersion: expected a string"),
    ],
)
def test_garbage_is_unknown_with_the_reason(obj: dict[str, Any], detail: str) -> None:
    health = resource_health(obj)
    assert health is not None
    assert health.status is H.UNKNOWN
    assert health.message.startswith("health check failed: ")
    assert detail in health.message


class _Exploding(dict[str, Any]):
    """An object whose every read fails, as a stand-in for a bug inside a check."""

    def get(self, key: str, default: Any = None) -> Any:
        raise RuntimeError()


def test_any_exception_is_unknown_never_raised() -> None:
    health = resource_health(_Exploding(apiVersion="apps/v1", kind="Deployment"))
    assert health == Health(H.UNKNOWN, "health check failed: RuntimeError")


def test_deletion_wins_over_any_status() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "deletionTimestamp": "2024-05-03T12:00:00Z"},
        "status": {"phase": "Failed"},
    }
    assert resource_health(obj) == Health(H.PROGRESSING, "Pending deletion")


def test_kind_is_matched_with_its_group() -> None:
    # A custom resource that happens to be called Deployment is not an apps Deployment: without
    # standard conditions it has no health, with them the fallback reads them.
    bare = {"apiVersion": "example.com/v1", "kind": "Deployment", "spec": {"paused": True}}
    assert resource_health(bare) is None
    ready = {
        **bare,
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Deployed"}]},
    }
    assert resource_health(ready) == Health(H.HEALTHY, "Deployed")


def test_every_check_accepts_an_empty_object() -> None:
    # A freshly created object before any controller wrote status: no check may crash on it.
    for group, kind in CHECKS:
        api_version = f"{group}/v1" if group else "v1"
        health = resource_health({"apiVersion": api_version, "kind": kind, "metadata": {}})
        assert health is not None
        assert health.status is not H.UNKNOWN, (kind, health)
