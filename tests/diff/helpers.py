"""Fixture loading for the diff tests: YAML cases under testdata/, rules parsed as the
Application parser parses them (so the tests exercise the same IgnoreDifference values)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gitops_tasks.model import keys
from gitops_tasks.model.application import IgnoreDifference, parse_application

TESTDATA = Path(__file__).parent / "testdata"


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((TESTDATA / name).read_text())
    assert isinstance(doc, dict)
    return doc


def case_files() -> list[str]:
    return sorted(p.name for p in TESTDATA.glob("*.yaml"))


def rules(raw: list[dict[str, Any]]) -> tuple[IgnoreDifference, ...]:
    app = parse_application({
        "apiVersion": keys.API_VERSION,
        "kind": keys.KIND,
        "metadata": {"name": "shop"},
        "spec": {
            "source": {"repoURL": "https://git.example.com/shop.git"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
            "ignoreDifferences": raw,
        },
    })
    return app.ignore_differences
