"""deploy/ and compose.yaml: they build, apply to a cluster (kubesim, with real kubectl) and
become Available, and name only commands, settings and files that exist."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops_tasks.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = str(Path(sys.executable).parent / "kubectl")
SETTINGS = (ROOT / "gitops_tasks" / "settings.py").read_text()


def build(path: str) -> list[dict[str, Any]]:
    out = subprocess.run([KUBECTL, "kustomize", str(ROOT / path)], capture_output=True,
                         text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def commands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)  # type: ignore[arg-type]


def known_setting(name: str) -> bool:
    if not name.startswith("GITOPS_TASKS_"):
        return True
    short = name.removeprefix("GITOPS_TASKS_")
    return f'"{short}"' in SETTINGS


@pytest.mark.parametrize("path", ["deploy", "deploy/namespaced"])
def test_every_pod_is_locked_down_probed_and_bounded(path: str) -> None:
    objs = build(path)
    deployments = [o for o in objs if o["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {"redis", "worker", "beat",
                                                            "webhook", "flower"}
    for d in deployments:
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, d["metadata"]["name"]
        for c in pod["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
            if d["metadata"]["name"] != "beat":  # beat serves no port: its process is its life
                assert c.get("livenessProbe") and c.get("readinessProbe"), c["name"]
            if c["image"].startswith("ghcr.io/gitops-tasks/"):
                assert c["args"][0] in commands(), c["args"]
                for ref in c.get("envFrom", []):
                    assert "configMapRef" in ref or "secretRef" in ref
    config = next(o for o in objs if o["kind"] == "ConfigMap")
    for name in config["data"]:
        assert known_setting(name), name
    kinds = {o["kind"] for o in objs}
    assert {"CustomResourceDefinition", "Namespace", "ServiceAccount",
            "HorizontalPodAutoscaler", "Service", "Secret"} <= kinds
    if path == "deploy":
        assert "ClusterRoleBinding" in kinds
    else:
        role = next(o for o in objs if o["kind"] == "Role")
        assert role["metadata"]["namespace"] == "gitops-tasks"


def test_deploy_applies_to_a_cluster_and_its_workloads_become_available(
        sim: Any, tmp_path: Path) -> None:
    """Real kubectl applies the built manifests to kubesim (which simulates rollouts)."""
    from tests.e2e.stack import Stack

    installer = Stack.__new__(Stack)
    installer.sim, installer.tmp = sim, tmp_path
    manifests = subprocess.run([KUBECTL, "kustomize", str(ROOT / "deploy")],
                               capture_output=True, text=True, check=True).stdout
    applied = installer.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
                                stdin=manifests)
    assert "deployment.apps/worker serverside-applied" in applied.stdout, applied.stdout
    deadline = time.monotonic() + 30
    while True:
        out = installer.kubectl("get", "deployments", "-n", "gitops-tasks", "-o", "yaml").stdout
        items = yaml.safe_load(out)["items"]
        ready = {d["metadata"]["name"] for d in items
                 if d.get("status", {}).get("availableReplicas") == d["spec"]["replicas"]}
        if ready == {"redis", "worker", "beat", "webhook", "flower"}:
            break
        assert time.monotonic() < deadline, ready
        time.sleep(0.2)
    hpa = installer.kubectl("get", "hpa", "worker", "-n", "gitops-tasks").stdout
    assert "worker" in hpa


def dockerfile_args() -> set[str]:
    return set(re.findall(r"^ARG (\w+)", (ROOT / "Dockerfile").read_text(), re.M))


def test_compose_names_only_what_exists() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"redis", "worker", "beat", "webhook", "flower"}
    for name, service in services.items():
        for dep in service.get("depends_on", {}):
            assert dep in services, (name, dep)
        if name == "redis":
            continue
        assert service["command"][0] in commands(), service["command"]
        assert (ROOT / service["build"]["context"] / "Dockerfile").is_file()
        assert set(service["build"].get("args", {})) <= dockerfile_args()
        for var in service["environment"]:
            assert known_setting(var) or var == "KUBECONFIG", var
        assert service.get("healthcheck") or name == "beat", name
    dockerfile = (ROOT / "Dockerfile").read_text()
    for copied in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M):
        for item in copied.split():
            assert (ROOT / item).exists(), item
