"""Where users' health scripts come from: Argo CD's ConfigMap key formats and directory layout
(pure parsing), and which script a kind gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_tasks.health import Customizations, Health, HealthStatus, resource_health
from gitops_tasks.health.customizations import HealthScript, load_directory, parse_configmap

CM = "ConfigMap gitops-tasks/gitops-tasks-cm"
HEALTHY = 'return {status = "Healthy", message = "%s"}'


def test_split_keys_name_group_and_kind() -> None:
    scripts, problems = parse_configmap({
        "resource.customizations.health.cert-manager.io_Certificate": HEALTHY % "cert",
        "resource.customizations.health.Service": HEALTHY % "core",
        "resource.customizations.ignoreDifferences.apps_Deployment": "jsonPointers: [/x]",
        "timeout.reconciliation": "180s",
    }, CM)
    assert problems == []
    assert [(s.group, s.kind, s.script) for s in scripts] == [
        ("", "Service", HEALTHY % "core"),
        ("cert-manager.io", "Certificate", HEALTHY % "cert"),
    ]
    assert scripts[1].source == (
        f"{CM} key resource.customizations.health.cert-manager.io_Certificate")


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("resource.customizations.health.a_b_C", HEALTHY, "expected resource.customizations.health"),
    ("resource.customizations.health._Pod", HEALTHY, "expected"),
    ("resource.customizations.health.", HEALTHY, "expected"),
    ("resource.customizations.health.apps_Deployment", "  ", "empty script"),
    ("resource.customizations.health.x.io_Y.useOpenLibs", "true", "not supported"),
])
def test_malformed_keys_are_reported_not_fatal(key: str, value: str, problem: str) -> None:
    scripts, problems = parse_configmap({key: value, "resource.customizations.health.Pod":
                                         HEALTHY % "pod"}, CM)
    assert [s.kind for s in scripts] == ["Pod"]
    assert len(problems) == 1 and key in problems[0] and problem in problems[0], problems


def test_legacy_key_with_wildcards() -> None:
    legacy = (
        '"*.aws.crossplane.io/*":\n  health.lua: |\n    return {status = "Healthy"}\n'
        "apps/Deployment:\n  ignoreDifferences: |\n    jsonPointers: [/spec/replicas]\n"
        "ConfigMap:\n  health.lua: return {}\n"
    )
    scripts, problems = parse_configmap({"resource.customizations": legacy}, CM)
    assert problems == []
    custom = Customizations.of(scripts)
    found = custom.script_for("ec2.aws.crossplane.io", "Instance")
    assert found is not None and found.wildcard
    assert custom.script_for("gcp.crossplane.io", "Instance") is None
    assert custom.script_for("", "ConfigMap") is not None
    assert custom.script_for("apps", "Deployment") is None  # no health.lua there


def test_legacy_key_that_is_not_yaml_is_a_problem() -> None:
    scripts, problems = parse_configmap({"resource.customizations": "a: [b"}, CM)
    assert scripts == [] and "not YAML" in problems[0]


def test_exact_beats_wildcard_and_earlier_layer_beats_later() -> None:
    def script(group: str, kind: str, label: str) -> HealthScript:
        return HealthScript(group, kind, HEALTHY % label, label)

    custom = Customizations.of(
        [script("*.example.com", "*", "cm-wild"), script("a.example.com", "Widget", "cm-exact")],
        [script("b.example.com", "Widget", "dir-exact"), script("*", "*", "dir-any")],
    )
    assert custom.script_for("a.example.com", "Widget").source == "cm-exact"  # type: ignore[union-attr]
    assert custom.script_for("b.example.com", "Widget").source == "cm-wild"  # type: ignore[union-attr]
    assert custom.script_for("other.io", "Thing").source == "dir-any"  # type: ignore[union-attr]
    assert len(custom) == 4


def test_directory_layout(tmp_path: Path) -> None:
    for rel in ("cert-manager.io/Certificate", "Service", "_.crossplane.io/_"):
        (tmp_path / rel).mkdir(parents=True)
        (tmp_path / rel / "health.lua").write_text(HEALTHY % rel)
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c" / "health.lua").write_text(HEALTHY % "deep")
    (tmp_path / "cert-manager.io" / "Certificate" / "testdata").mkdir()
    scripts, problems = load_directory(tmp_path)
    assert len(problems) == 1 and "a/b/c/health.lua" in problems[0]
    custom = Customizations.of(scripts)
    assert custom.script_for("", "Service") is not None
    assert custom.script_for("cert-manager.io", "Certificate") is not None
    wild = custom.script_for("pkg.crossplane.io", "Provider")
    assert wild is not None and (wild.group, wild.kind) == ("*.crossplane.io", "*")
    assert load_directory(tmp_path / "missing")[1][0].endswith("not a directory")


def test_a_script_replaces_the_builtin_check() -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"paused": True}}
    assert resource_health(deployment) == Health(HealthStatus.SUSPENDED, "Deployment is paused")
    scripts, _ = parse_configmap(
        {"resource.customizations.health.apps_Deployment": HEALTHY % "mine"}, CM)
    custom = Customizations.of(scripts)
    assert resource_health(deployment, custom) == Health(HealthStatus.HEALTHY, "mine")
    # Other kinds keep their built-in check; deletion still wins over any script.
    pod = {"apiVersion": "v1", "kind": "Pod", "status": {"phase": "Succeeded"}}
    assert resource_health(pod, custom) == Health(HealthStatus.HEALTHY)
    deleting = {**deployment, "metadata": {"deletionTimestamp": "2024-05-03T12:00:00Z"}}
    assert resource_health(deleting, custom) == Health(HealthStatus.PROGRESSING,
                                                       "Pending deletion")


def test_a_script_can_give_a_kind_no_health() -> None:
    scripts, _ = parse_configmap({"resource.customizations.health.batch_Job": "return {}"}, CM)
    job = {"apiVersion": "batch/v1", "kind": "Job", "status": {}}
    assert resource_health(job, Customizations.of(scripts)) is None
