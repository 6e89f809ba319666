"""`gitops-tasks health -f OBJECTS.yaml`: every object of a stream judged with the built-in
checks and the users' scripts (a directory, the setting, a ConfigMap file), as a table or JSON;
a file that is not objects is one error line with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gitops_tasks.cli import main

ROOT = Path(__file__).resolve().parents[2]
CUSTOM = ROOT / "tests/health/testdata/resource_customizations"
CERT = CUSTOM / "cert-manager.io/Certificate/testdata"

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "web", "namespace": "shop", "generation": 1},
              "spec": {"replicas": 2, "paused": True}}
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
             "data": {"k": "v"}}


def _stream(tmp_path: Path, *objs: object) -> Path:
    path = tmp_path / "objects.yaml"
    path.write_text(yaml.safe_dump_all(objs))
    return path


@pytest.fixture(autouse=True)
def _no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GITOPS_TASKS_"):
            monkeypatch.delenv(name)


def test_table_with_builtins_and_a_directory(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    cert = yaml.safe_load((CERT / "failed.yaml").read_text())
    objects = _stream(tmp_path, DEPLOYMENT, cert, CONFIGMAP)
    assert main(["health", "-f", str(objects), "--customizations", str(CUSTOM)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["KIND", "NAME", "STATUS", "MESSAGE"]
    assert lines[1].split()[:3] == ["Deployment", "shop/web", "Suspended"]
    assert lines[1].endswith("Deployment is paused")
    assert lines[2].split()[:3] == ["Certificate", "shop/web-tls", "Degraded"]
    assert "order is in \"errored\" state" in lines[2]
    assert lines[3].split() == ["ConfigMap", "settings", "-"]


def test_json_and_the_setting(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_TASKS_RESOURCE_CUSTOMIZATIONS_DIR", str(CUSTOM))
    cert = yaml.safe_load((CERT / "ready.yaml").read_text())
    assert main(["health", "-f", str(_stream(tmp_path, cert, CONFIGMAP)), "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"kind": "Certificate", "name": "shop/web-tls", "status": "Healthy",
         "message": "Certificate is up to date and has not expired"},
        {"kind": "ConfigMap", "name": "settings", "status": None, "message": ""},
    ]


def test_without_scripts_a_custom_resource_falls_back_to_conditions(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cert = yaml.safe_load((CERT / "issuing.yaml").read_text())
    assert main(["health", "-f", str(_stream(tmp_path, cert)), "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "Progressing"


def test_a_configmap_file_wins_over_directories(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    cm = tmp_path / "cm.yaml"
    cm.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gitops-tasks-cm"},
        "data": {"resource.customizations.health.cert-manager.io_Certificate":
                 'return {status = "Suspended", message = "from the ConfigMap"}',
                 "resource.customizations.health.bad_key_name": "return {}"}}))
    cert = yaml.safe_load((CERT / "ready.yaml").read_text())
    assert main(["health", "-f", str(_stream(tmp_path, cert)), "--configmap", str(cm),
                 "--customizations", str(CUSTOM), "-o", "json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)[0]["status"] == "Suspended"
    assert "warning:" in out.err and "bad_key_name" in out.err


def test_a_failing_script_is_unknown_not_an_error(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "scripts" / "Service").mkdir(parents=True)
    (tmp_path / "scripts" / "Service" / "health.lua").write_text("while true do end")
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}
    assert main(["health", "-f", str(_stream(tmp_path, svc)), "--customizations",
                 str(tmp_path / "scripts"), "-o", "json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["status"] == "Unknown" and "timed out" in row["message"]


@pytest.mark.parametrize(("content", "error"), [
    ("a: [b\n", "not valid YAML"),
    ("- just\n- a list\n", "document 1: expected a Kubernetes object, got list"),
    ("apiVersion: v1\nkind: Pod\n---\nmetadata: {name: x}\n",
     "document 2: an object needs apiVersion and kind"),
])
def test_a_malformed_file_is_one_line_and_exit_2(tmp_path: Path, content: str, error: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "objects.yaml"
    path.write_text(content)
    assert main(["health", "-f", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: ") and error in err


def test_a_missing_file_or_directory_is_exit_2(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health", "-f", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err
    objects = _stream(tmp_path, CONFIGMAP)
    assert main(["health", "-f", str(objects), "--customizations", str(tmp_path / "no")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_the_command_as_a_user_runs_it(tmp_path: Path) -> None:
    # A List, as `kubectl get -o yaml` writes it, on stdin; the worktree's code on PYTHONPATH.
    listed = {"apiVersion": "v1", "kind": "List",
              "items": [DEPLOYMENT, yaml.safe_load((CERT / "ready.yaml").read_text())]}
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_TASKS_")}
    done = subprocess.run(
        [sys.executable, "-m", "gitops_tasks.cli", "health", "-f", "-", "--customizations",
         str(CUSTOM)], input=yaml.safe_dump(listed), capture_output=True, text=True,
        env=env | {"PYTHONPATH": str(ROOT)}, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [line.split()[2] for line in done.stdout.splitlines()[1:]] == ["Suspended", "Healthy"]
