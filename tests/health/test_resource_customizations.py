"""Users' health scripts in Argo CD's resource_customizations layout, each with the
`health_test.yaml` Argo CD's own scripts carry (`tests: [{healthStatus: {status, message},
inputPath}]`): one test walks the directory, loads it as GITOPS_TASKS_RESOURCE_CUSTOMIZATIONS_DIR
would be loaded, and checks every case, status and message exactly (Argo CD's test does too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops_tasks.health import Customizations, Health, HealthStatus, resource_health
from gitops_tasks.health.customizations import load_directory

ROOT = Path(__file__).parent / "testdata" / "resource_customizations"


def _cases() -> list[tuple[Path, dict[str, Any]]]:
    cases = []
    for spec in sorted(ROOT.rglob("health_test.yaml")):
        for case in yaml.safe_load(spec.read_text())["tests"]:
            cases.append((spec.parent, case))
    return cases


CASES = _cases()


def test_the_directory_has_cases_for_every_script() -> None:
    scripts = {p.parent for p in ROOT.rglob("health.lua")}
    assert scripts == {d for d, _ in CASES}
    assert len(scripts) >= 3


@pytest.mark.parametrize(
    ("folder", "case"), CASES,
    ids=[f"{d.relative_to(ROOT)}:{c['inputPath']}" for d, c in CASES])
def test_health_script(folder: Path, case: dict[str, Any]) -> None:
    scripts, problems = load_directory(ROOT)
    assert problems == []
    custom = Customizations.of(scripts)
    obj = yaml.safe_load((folder / case["inputPath"]).read_text())
    group, kind = folder.relative_to(ROOT).parts
    assert (obj["apiVersion"].rpartition("/")[0], obj["kind"]) == (group, kind)
    expected = case["healthStatus"]
    assert resource_health(obj, custom) == Health(HealthStatus(expected["status"]),
                                                  expected.get("message", ""))
